"""Shopper-journey cost on the generator, this tree against an earlier git revision, side by side in one run.

Usage::

    .venv/bin/python bench/journey_ab.py --baseline bf1a7ff            # 2 rounds, 6 s per rate
    .venv/bin/python bench/journey_ab.py --baseline HEAD~5 --rounds 3 --seconds 8

Each tree runs ``bench/generator.py``'s ``shopper_cost`` (the embedded
storefront on CPU 0; open-model shopper visits of that tree's locustfile on
CPU 1 at 15 and 45 visits/s) — the same profile, the same storefront, the same
checks; failures count as requests like any other. The figure is
*requests per generator CPU-second* at 45 visits/s (the marginal one between
the two rates, where start-up costs cancel, is printed too but swings more). Trees alternate per round; the ratio is current /
baseline of the per-tree medians. The baseline is checked out into a temporary
git worktree and removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab import alternate, baseline_worktree  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
MAX_ROUNDS = 5
MAX_SECONDS = 10

_DRIVER = """
import json, sys, tempfile
from pathlib import Path
sys.path.insert(0, "bench")
from generator import shopper_cost
seconds = float(sys.argv[1])
with tempfile.TemporaryDirectory() as tmp:
    lo, _ = shopper_cost(Path(tmp), seconds=seconds, rate=15)
with tempfile.TemporaryDirectory() as tmp:
    hi, visits = shopper_cost(Path(tmp), seconds=seconds, rate=45)
print(json.dumps({"lo": [lo.requests, lo.cpu_s], "hi": [hi.requests, hi.cpu_s], "visits": visits}))
"""


def measure(tree: Path, seconds: float) -> tuple[float, float, float]:
    """(requests per generator CPU-second at 45 visits/s, the marginal one between 15 and 45, requests per visit)."""
    proc = subprocess.run(
        [PY, "-c", _DRIVER, str(seconds)],
        cwd=tree,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("PEAKLOAD_")}, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: shopper_cost failed: {proc.stderr[-1500:]}")
    d = json.loads(proc.stdout.strip().splitlines()[-1])
    (lo_n, lo_cpu), (hi_n, hi_cpu) = d["lo"], d["hi"]
    return hi_n / hi_cpu, (hi_n - lo_n) / (hi_cpu - lo_cpu), hi_n / d["visits"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare with (e.g. a commit before a change)")
    parser.add_argument("--rounds", type=int, default=2, help=f"rounds (max {MAX_ROUNDS})")
    parser.add_argument("--seconds", type=int, default=6, help=f"measured seconds per rate (max {MAX_SECONDS})")
    a = parser.parse_args(argv)
    rounds, seconds = min(max(a.rounds, 1), MAX_ROUNDS), min(max(a.seconds, 2), MAX_SECONDS)
    figures: dict[str, list[float]] = {"current": [], "baseline": []}
    marginal: dict[str, list[float]] = {"current": [], "baseline": []}
    with baseline_worktree(a.baseline) as base:
        for r, name, tree in alternate(rounds, current=REPO, baseline=base):
            rate, extra, visit = measure(tree, seconds)
            figures[name].append(rate)
            marginal[name].append(extra)
            print(
                f"round {r + 1}: {name:<8} {rate:7.0f} requests per generator CPU-second at 45 visits/s "
                f"(marginal {extra:.0f}; {visit:.1f} requests per visit)"
            )
    cur, old = statistics.median(figures["current"]), statistics.median(figures["baseline"])
    mc, mb = statistics.median(marginal["current"]), statistics.median(marginal["baseline"])
    print(
        f"shopper journey, requests per generator CPU-second at 45 visits/s: current {cur:.0f}, baseline {a.baseline} {old:.0f}; "
        f"ratio {cur / old:.2f} (marginal {mc:.0f} vs {mb:.0f}, noisier)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
