"""How fast `peakload profile fit` reads a log, and whether its memory stays flat as the log grows.

Writes synthetic storefront logs of 1, 2 and 4 million lines (the same
session model each, only longer: tests/scenarios/synthlog.py), then on one
pinned core, side by side in one run:

- ``parse``: the log reader alone (peakload.core.accesslog), lines/s;
- ``fit``: the whole ``peakload profile fit`` command, lines/s and peak RSS
  (ru_maxrss of the child process) for each size.

Prints the fit's share of the reader's speed and the RSS ratio 4M / 1M
lines (≈ 1.0: memory does not grow with the log). The fit holds the visits
open within the idle gap (about 0.5 KB each) and at most 50,000 carts of visitors who may come back, so the logs here (27 to 108
minutes of a shop at 40 visits/s) run with ``--idle-gap 2m``: with the 30 min
default, memory grows until the log is longer than the gap, then stays.
Goal: ≥ 200,000 lines/s for the fit on one core.

Usage: ``.venv/bin/python bench/fit.py [--sizes 500000,1000000,2000000] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.scenarios.synthlog import Truth, write_log  # noqa: E402

CORE = 0


def _log(folder: Path, lines: int) -> Path:
    path = folder / f"access-{lines}.log"
    if path.exists():
        return path
    # ~15.4 lines per session at these settings: a steady 40 sessions/s, long enough for `lines`
    seconds = lines / 15.4 / 40
    truth = Truth(stages=[(seconds * 0.4, 30.0), (seconds * 0.2, 70.0), (seconds * 0.4, 30.0)], views=(3, 8), think=(0.2, 1.0))
    write_log(path, truth, seed=lines)
    return path


def _child(code: str, *args: str) -> tuple[dict, float, int]:
    """Run ``code`` in a fresh interpreter pinned to one core; (its JSON, wall seconds, peak RSS KiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    began = time.perf_counter()
    proc = subprocess.run(
        ["taskset", "-c", str(CORE), sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"bench child failed: {proc.stderr[-2000:]}")
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return json.loads(proc.stdout.strip().splitlines()[-1] or "{}"), wall, max(rss, before)


PARSE = """
import json, sys, time
from pathlib import Path
from peakload.core.accesslog import AccessLog
t = time.perf_counter(); n = 0
for _ in AccessLog([Path(sys.argv[1])]).records(): n += 1
print(json.dumps({"lines": n, "seconds": time.perf_counter() - t}))
"""

FIT = """
import json, resource, sys, time
from peakload.cli import main
t = time.perf_counter()
code = main(["profile", "fit", sys.argv[1], "--out", sys.argv[2], "--entry", "home", "--catalogue", "10000", "--idle-gap", "2m", "--quiet"])
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"code": code, "seconds": time.perf_counter() - t, "rss_kib": rss}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,2000000,4000000")
    ap.add_argument("--keep", help="keep the logs in this folder (reused next time)")
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    folder = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="peakload-fit-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        log = _log(folder, size)
        lines = sum(1 for _ in open(log, "rb"))
        parse, _, _ = _child(PARSE, str(log))
        fit, _, _ = _child(FIT, str(log), str(folder / f"fitted-{size}.yaml"))
        report = json.loads((folder / f"fitted-{size}.fit.json").read_text())
        rows.append(
            {
                "lines": lines,
                "parse_lps": lines / parse["seconds"],
                "fit_lps": lines / fit["seconds"],
                "fit_s": fit["seconds"],
                "rss_mib": fit["rss_kib"] / 1024,
                "sessions": report["sessions"]["fitted"],
            }
        )
        print(
            f"{lines:>10,} lines  parse {rows[-1]['parse_lps']:>9,.0f} lines/s   fit {rows[-1]['fit_lps']:>9,.0f} lines/s "
            f"({fit['seconds']:.1f} s, {rows[-1]['sessions']:,} sessions)   peak RSS {rows[-1]['rss_mib']:.0f} MiB",
            flush=True,
        )
    first, last = rows[0], rows[-1]
    print(f"fit / parse speed: {last['fit_lps'] / last['parse_lps']:.2f}x   (one core, pinned: taskset -c {CORE})")
    print(f"peak RSS {last['lines']:,} / {first['lines']:,} lines: {last['rss_mib'] / first['rss_mib']:.2f}x  (1.0 = flat)")
    goal = 200_000
    print(
        f"fit at {last['lines']:,} lines: {last['fit_lps']:,.0f} lines/s; goal {goal:,}: {'met' if last['fit_lps'] >= goal else 'NOT met'}"
    )
    if not a.keep:
        for p in folder.iterdir():
            p.unlink()
        os.rmdir(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
