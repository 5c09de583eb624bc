"""Write every report file for a results folder.

Usage::

    summary = write_reports(Path("results/RUN"), thresholds, baseline=None, tolerances=CompareSpec())

Files are written atomically (temp file + rename), so a crash never leaves a
half-written report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peakload.core import CompareSpec, Threshold
from peakload.core.inputs import write_atomic
from peakload.core.summary import Summary
from reports.compare import CompareRow, Samples, compare, samples_of, verdict_of
from reports.gate import evaluate
from reports.html import render_html
from reports.junit import render_junit
from reports.markdown import render_markdown
from reports.results import RunData, load_results
from reports.summary import build_summary

__all__ = ["write_reports", "Report"]


class Report:
    def __init__(self, summary: Summary, data: RunData, compare_rows: list[CompareRow] | None) -> None:
        self.summary = summary
        self.data = data
        self.compare_rows = compare_rows

    @property
    def exit_code(self) -> int:
        return self.summary.exit_code


def write_reports(
    path: Path,
    thresholds: list[Threshold],
    *,
    baseline: dict[str, Any] | None = None,
    baseline_id: str = "",
    tolerances: CompareSpec | None = None,
    baseline_path: Path | None = None,
) -> Report:
    """``baseline_path``: the baseline's results folder, whose histograms the percentile tests draw from
    (default: ``baseline_id`` when that names a folder; without one, percentiles are inconclusive)."""
    data = load_results(path)
    results = evaluate(thresholds, data)
    summary = build_summary(data, results)
    current = summary.to_json()
    rows = None
    if baseline is not None:
        rows = compare(
            current,
            baseline,
            tolerances or CompareSpec(),
            current_samples=samples_of(data),
            baseline_samples=_samples_at(baseline_path or (Path(baseline_id) if baseline_id else None)),
        )
    if rows is not None:
        code, rule, reason = verdict_of(current, baseline, rows)
        summary = summary.model_copy(
            update={
                "baseline": {
                    "run_id": baseline_id or baseline.get("run_id"),
                    "regressions": sum(r.regression for r in rows),
                    "inconclusive": sum(r.verdict == "inconclusive" for r in rows),
                    "exit_code": code,
                    "decided_by": rule,
                    "reason": reason,
                    "rows": [r.to_dict() for r in rows],
                }
            }
        )
    write_atomic(path / "summary.json", json.dumps(summary.to_json(), indent=2, sort_keys=False) + "\n")
    write_atomic(path / "junit.xml", render_junit(summary))
    write_atomic(path / "summary.md", render_markdown(summary, rows))
    write_atomic(path / "report.html", render_html(summary, data, rows, baseline_id=baseline_id))
    return Report(summary, data, rows)


def _samples_at(folder: Path | None) -> Samples | None:
    """A results folder's per-request histograms (None when it is not a folder with snapshots)."""
    if folder is None or not (folder / "snapshots.jsonl").is_file():
        return None
    return samples_of(load_results(folder))
