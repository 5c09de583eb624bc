"""junit.xml: one testcase per threshold (CI systems show failures by name).

Usage: ``render_junit(summary) -> str``
"""

from __future__ import annotations

from xml.etree import ElementTree as ET

from peakload.core import format_value
from peakload.core.summary import Summary

__all__ = ["render_junit"]


def render_junit(summary: Summary) -> str:
    rows = summary.thresholds
    suite = ET.Element(
        "testsuite",
        {
            "name": f"peakload.{summary.profile or 'run'}",
            "tests": str(len(rows) + 1),
            "failures": str(sum(1 for r in rows if r.passed is False)),
            "errors": "1" if summary.status in ("invalid", "unjudged") else "0",
            "skipped": str(sum(1 for r in rows if r.passed is None)),
            "time": f"{summary.duration_s:.3f}",
            "timestamp": summary.started or "",
        },
    )
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "target", "git_revision", "latency_basis"):
        ET.SubElement(props, "property", {"name": key, "value": str(getattr(summary, key) or "")})
    # The run itself is a testcase, so an invalid run is visible as an error.
    run_case = ET.SubElement(suite, "testcase", {"classname": "run", "name": "run is valid and complete", "time": "0"})
    if summary.status in ("invalid", "unjudged"):
        ET.SubElement(run_case, "error", {"message": summary.reason or "run invalid", "type": summary.status})
    for r in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": r.scope, "name": f"{r.metric} {r.op} {format_value(r.metric, r.limit)}", "time": "0"},
        )
        if r.passed is False:
            msg = f"{r.scope}: {r.message}"
            ET.SubElement(case, "failure", {"message": msg, "type": "threshold"}).text = msg
        elif r.passed is None:
            ET.SubElement(case, "skipped", {"message": r.message})
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
