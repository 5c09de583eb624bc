"""Measurement truth, side by side: analytic truth vs peakload's open model vs plain Locust's closed model.

Usage::

    .venv/bin/python bench/calibration.py                  # 200/s for 20 s, 1 s stall every 10 s
    .venv/bin/python bench/calibration.py --workers 2      # the open model with 2 Locust workers

Targets: the calibration target (``python -m storefront calibrate``), every
response held for a 1 s stall every 10 s, service time uniform 100..500 ms
(slow answers) and 5..15 ms (fast answers, the set-up of FEASIBILITY.md).
For each target, one after the other:

* truth — the exact percentiles of intended-start latency for open arrivals
  (:func:`storefront.calibration.truth_percentiles`),
* peakload — ``peakload run`` of a constant-rate open-model profile
  (intended-start latency as reported in summary.json, service time beside it),
* plain Locust — ``FastHttpUser`` paced with ``constant_throughput`` to the same
  200 requests/s (the closed model; its own percentiles, from its CSV): 100
  users x 2/s on the slow target (enough users for its service time), 20 users
  x 10/s on the fast one.

Also prints the achieved rate and the share of requests that arrived while the
target was stalled, both counted by the target itself (an open workload keeps
arriving during a stall: 10 % of requests; a closed one stops sending).
Exit 0 when peakload is within the tested tolerances of the truth (docs/open-model.md):
3 % at p50/p95/p99 on the slow target, 4 % at p95/p99 on the fast one (where a few ms
of client overhead weigh on a 10 ms p50 and held answers are read one by one), and
within 2 % of the rate; 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.openmodel.harness import (  # noqa: E402
    Scenario,
    calibration_target,
    run_closed,
    run_open,
    server_rate,
    stalled_share,
    write_profile,
)


def _row(name: str, pct: dict[float, float], rate: float, share: float, truth: dict[float, float] | None) -> str:
    cells = []
    for p in (50, 95, 99):
        err = "" if truth is None else f" ({(pct[p] - truth[p]) / truth[p] * 100:+5.1f}%)"
        cells.append(f"p{p} {pct[p]:7.1f} ms{err}")
    return f"{name:<44} " + "  ".join(cells) + f"  | {rate:6.1f}/s, stalled share {share * 100:4.1f}%"


def _compare(sc: Scenario, *, closed_users: int, workers: int, tmp: Path, check: tuple[int, ...], tolerance: float) -> bool:
    truth = {p: v * 1000 for p, v in sc.truth().items()}
    per_user = sc.rate / closed_users
    print(
        f"\ntarget: {sc.service_ms[0]:g}..{sc.service_ms[1]:g} ms service, {sc.stall:g} s stall every {sc.period:g} s; "
        f"load {sc.rate:g}/s for {sc.seconds:g} s"
    )
    tmp.mkdir(parents=True, exist_ok=True)
    profile = write_profile(tmp / "open.yaml", rate=sc.rate, seconds=sc.seconds, pool=sc.pool)
    with calibration_target(workdir=tmp / "t-open", scenario=sc) as target:
        run = run_open(target=target.url, profile=profile, results=tmp / "results", workers=workers)
        open_stats = target.stats()
    with calibration_target(workdir=tmp / "t-closed", scenario=sc) as target:
        closed = run_closed(target=target.url, users=closed_users, rate_per_user=per_user, seconds=sc.seconds, out=tmp / "closed")
        closed_stats = target.stats()
    service = run.service_percentiles_ms()
    arrivals = run.summary["arrivals"]
    print(
        f"{'truth (intended-start, analytic)':<44} "
        + "  ".join(f"p{p} {truth[p]:7.1f} ms         " for p in (50, 95, 99))
        + f"  | {sc.rate:6.1f}/s, stalled share {sc.stall / sc.period * 100:4.1f}%"
    )
    label = f"peakload open model, intended-start ({workers or 1} proc)"
    print(_row(label, run.percentiles_ms, server_rate(open_stats), stalled_share(open_stats), truth))
    print(_row("peakload open model, service time", service, server_rate(open_stats), stalled_share(open_stats), truth))
    print(
        _row(
            f"Locust closed, {closed_users} x constant_throughput({per_user:g})",
            closed.percentiles_ms,
            server_rate(closed_stats),
            stalled_share(closed_stats),
            truth,
        )
    )
    print(
        f"peakload arrivals: {arrivals.get('scheduled')} scheduled, {arrivals.get('dropped')} dropped; "
        f"requests client {run.summary['requests']['GET /']['requests']} == target {open_stats['requests']['GET /']}; "
        f"latency basis: {run.summary['latency_basis']}"
    )
    ok = all(abs(run.percentiles_ms[p] - truth[p]) <= tolerance * truth[p] for p in check)
    return ok and abs(server_rate(open_stats) - sc.rate) <= 0.02 * sc.rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=0, help="Locust worker processes for the open-model runs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="peakload-calib-") as tmpdir:
        ok = _compare(Scenario(), closed_users=100, workers=args.workers, tmp=Path(tmpdir) / "slow", check=(50, 95, 99), tolerance=0.03)
        ok &= _compare(
            Scenario(service_ms=(5.0, 15.0)),
            closed_users=20,
            workers=args.workers,
            tmp=Path(tmpdir) / "fast",
            check=(95, 99),
            tolerance=0.04,
        )
    print("\npeakload within 3 % (slow) / 4 % (fast) of the truth and 2 % of the rate" if ok else "\npeakload NOT within 3 % / 4 % / 2 %")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
