"""Micro-benchmark (pytest-benchmark): building all reports for a 10-minute, 10-name run.

Run with ``pytest tests/reports/test_bench_report.py --benchmark-enable``; in the
normal suite it runs once as a correctness check (no time is asserted).
"""

from __future__ import annotations

from pathlib import Path

from peakload.core import parse_threshold
from reports.build import write_reports
from reports.synthetic import write_synthetic_run


def test_report_build(benchmark, tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=10, seconds=600, rps_per_name=5)
    report = benchmark(write_reports, run, [parse_threshold("all", "error_ratio < 1%")])
    assert report.summary.intervals == 300 and report.summary.total.requests == 300 * 10 * 10
