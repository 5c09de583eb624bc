"""junit.xml: one testcase per threshold (CI systems show failures by name).

A failed threshold's failure text lists the top failure messages of the requests in its
scope; the run testcase's ``system-out`` lists them per request.

Usage: ``render_junit(summary) -> str``
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

from peakload.core import format_value
from peakload.core.steps import step_scope
from peakload.core.summary import RequestRow, StageRow, Summary, ThresholdRow

__all__ = ["render_junit"]

# characters XML 1.0 cannot hold at all (ElementTree would write them and break the file)
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _x(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _scope_rows(summary: Summary, scope: str) -> list[tuple[str, RequestRow]]:
    """The summary rows a threshold scope judges (as reports.gate selects them), named for a reader."""
    step = step_scope(scope)
    if step is not None:
        row = summary.steps.get(step)
        return [(scope, row)] if row is not None else []
    if scope == "all":
        return [("all requests", summary.total)]
    if scope in summary.requests:
        return [(scope, summary.requests[scope])]
    return [(key, r) for key, r in summary.requests.items() if r.name == scope]


def _reason_lines(rows: list[tuple[str, RequestRow]]) -> list[str]:
    return [f"  {fr.count} × {key}: {fr.message}" for key, r in rows for fr in r.failure_reasons]


def _window(r: ThresholdRow) -> str:
    """`` during plateau`` for a scoped threshold (its testcase name tells it from the run-wide one)."""
    return f" {r.window}" if r.window else ""


def _stage_line(st: StageRow) -> str:
    def ms(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}ms"

    errors = "n/a" if st.error_ratio is None else f"{st.error_ratio * 100:.2f}%"
    rps = "n/a" if st.rps is None else f"{st.rps:.1f}/s"
    return (
        f"  {st.label} [{st.start_s:g}s..{st.end_s:g}s]: {st.verdict}; {st.requests} requests, {rps}, errors {errors}, "
        f"p50 {ms(st.p50_ms)}, p95 {ms(st.p95_ms)}, p99 {ms(st.p99_ms)}"
    )


def _change(r: dict) -> str:
    """`` (+18.4 %, 95 % interval +14.7 % .. +22.6 %, p 0.0005)`` of a comparison row, what it has of it."""

    def f(v: object) -> str:
        if not isinstance(v, (int, float)):
            return "n/a"
        return f"{v:+.4f}" if r.get("metric") == "error_ratio" else f"{v:+.1%}"

    if not isinstance(r.get("change"), (int, float)):
        return ""
    ci = r.get("ci")
    interval = f", 95 % interval {f(ci[0])} .. {f(ci[1])}" if isinstance(ci, list) and len(ci) == 2 else ""
    p = r.get("p_value")
    return f" ({f(r['change'])}{interval}" + (f", p {p:.3g}" if isinstance(p, (int, float)) else "") + ")"


def _baseline_case(suite: ET.Element, b: dict) -> None:
    """The comparison with ``--baseline`` as one testcase: a regression fails it, an undecided one is skipped."""
    case = ET.SubElement(suite, "testcase", {"classname": "baseline", "name": _x(f"no regression against {b.get('run_id')}"), "time": "0"})
    rows = [r for r in b.get("rows", []) if isinstance(r, dict)]
    reason = _x(str(b.get("reason") or ""))
    suite.set("tests", str(int(suite.get("tests", "0")) + 1))
    if b.get("exit_code") == 1:
        lines = [f"  {r.get('key')} {r.get('metric')}: {r.get('verdict')}{_change(r)}" for r in rows if r.get("regression")]
        ET.SubElement(case, "failure", {"message": reason, "type": "regression"}).text = _x("\n".join([reason, *lines]))
        suite.set("failures", str(int(suite.get("failures", "0")) + 1))
    elif b.get("exit_code") != 0:
        lines = [f"  {r.get('key')} {r.get('metric')}: needs {r.get('needed') or 'n/a'} requests per run" for r in rows if r.get("verdict") == "inconclusive"]  # fmt: skip
        ET.SubElement(case, "skipped", {"message": reason}).text = _x("\n".join([reason, *lines]))
        suite.set("skipped", str(int(suite.get("skipped", "0")) + 1))


def render_junit(summary: Summary) -> str:
    rows = summary.thresholds
    error = summary.status in ("invalid", "unjudged")  # "ungated" (thresholds: none) is no error: it is by design
    suite = ET.Element(
        "testsuite",
        {
            "name": f"peakload.{summary.profile or 'run'}",
            "tests": str(len(rows) + 1),
            "failures": str(sum(1 for r in rows if r.passed is False)),
            "errors": "1" if error else "0",
            "skipped": str(sum(1 for r in rows if r.passed is None)),
            "time": f"{summary.duration_s:.3f}",
            "timestamp": summary.started or "",
        },
    )
    props = ET.SubElement(suite, "properties")
    for key in ("run_id", "target", "git_revision", "latency_basis", "status", "decided_by"):
        ET.SubElement(props, "property", {"name": key, "value": _x(str(getattr(summary, key) or ""))})
    # The run itself is a testcase, so an invalid run is visible as an error.
    run_case = ET.SubElement(suite, "testcase", {"classname": "run", "name": "run is valid and complete", "time": "0"})
    if error:
        ET.SubElement(run_case, "error", {"message": _x(summary.reason or "run invalid"), "type": summary.status})
    out = [f"{summary.status}: {summary.reason}"] if summary.reason else []
    per_request = _reason_lines(list(summary.requests.items()))
    if per_request:
        out += ["Failure reasons (most frequent per request):", *per_request]
    if summary.stages:
        out += [f"Stages (offsets from {summary.timeline_start}):", *[_stage_line(st) for st in summary.stages]]
    if summary.user_errors:
        out += ["Errors raised in the locustfile:", *[f"  {e.count} × {e.message}" for e in summary.user_errors]]
    if out:
        ET.SubElement(run_case, "system-out").text = _x("\n".join(out))
    for r in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": _x(r.scope), "name": _x(f"{r.metric} {r.op} {format_value(r.metric, r.limit)}{_window(r)}"), "time": "0"},
        )
        if r.passed is False:
            msg = f"{r.scope}: {r.message}"
            lines = _reason_lines(_scope_rows(summary, r.scope))
            text = msg + ("\nTop failure reasons:\n" + "\n".join(lines) if lines else "")
            ET.SubElement(case, "failure", {"message": _x(msg), "type": "threshold"}).text = _x(text)
        elif r.passed is None:
            ET.SubElement(case, "skipped", {"message": _x(r.message)})
    if summary.baseline is not None:
        _baseline_case(suite, summary.baseline)
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
