"""Report build time for a synthetic 1-hour, 20-request-name run, beside the time to just read its snapshots.

Usage: ``.venv/bin/python bench/report.py [--seconds 3600] [--names 20] [--interval 2]``

Goal: the full report (summary.json, junit.xml, summary.md, report.html) in ≤ 5 s on
a 2-core machine. Both figures are measured in the same process, one after
the other, best of 3, so the ratio is robust to a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peakload.core import parse_threshold  # noqa: E402
from reports.build import write_reports  # noqa: E402
from reports.synthetic import write_synthetic_run  # noqa: E402


def read_raw(path: Path) -> int:
    n = 0
    with open(path / "snapshots.jsonl", "rb") as fh:
        for line in fh:
            n += len(json.loads(line).get("requests", ()))
    return n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3600)
    ap.add_argument("--names", type=int, default=20)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--rps-per-name", type=float, default=5.0)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="peakload-bench-"))
    try:
        run = tmp / "run"
        write_synthetic_run(run, names=a.names, seconds=a.seconds, interval=a.interval, rps_per_name=a.rps_per_name)
        size = (run / "snapshots.jsonl").stat().st_size
        thresholds = [parse_threshold("all", "p95 < 100ms"), parse_threshold("all", "error_ratio < 1%")]
        raw, rep = [], []
        for _ in range(3):
            t = time.perf_counter()
            rows = read_raw(run)
            raw.append(time.perf_counter() - t)
            t = time.perf_counter()
            write_reports(run, thresholds)
            rep.append(time.perf_counter() - t)
        r, b = min(raw), min(rep)
        print(
            f"synthetic run: {a.seconds / 3600:g} h, {a.names} request names, {a.interval:g} s intervals, "
            f"{rows} histogram rows, {size / 1e6:.1f} MB of snapshots"
        )
        print(f"read raw snapshots (json only): {r:6.2f} s")
        print(f"build all reports:              {b:6.2f} s   (goal ≤ 5 s: {'met' if b <= 5 else 'NOT met'})")
        print(f"ratio report / raw read:        {b / r:6.1f}x")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
