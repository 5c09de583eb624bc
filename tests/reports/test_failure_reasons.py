"""Failure reasons from the snapshot rows reach summary.json, summary.md, junit.xml and report.html, bounded and escaped."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema

from peakload.core import parse_threshold
from reports.build import write_reports
from reports.results import MAX_REASONS, OTHER_MESSAGES, load_results
from reports.synthetic import write_synthetic_run

SCHEMA = json.loads((Path(__file__).parents[2] / "reports" / "summary.schema.json").read_text())
BOOM = "HTTPError: 503 | upstream <down> & *out*"  # a pipe, markup and an ampersand: each must reach the reader as text
BODY = "orderId missing"
KEY0, KEY1 = "GET /api/synthetic/0/{id}", "GET /api/synthetic/1/{id}"


def _rewrite_rows(run: Path, reasons_of) -> None:  # type: ignore[no-untyped-def]
    """Give every failing row of the synthetic run its ``reasons`` (as the bridge would have written them)."""
    snap = run / "snapshots.jsonl"
    out = []
    for line in snap.read_text().splitlines():
        obj = json.loads(line)
        for row in obj.get("requests", []):
            if row["failures"]:
                row["reasons"] = reasons_of(obj["seq"], row)
        out.append(json.dumps(obj))
    snap.write_text("\n".join(out) + "\n")


def _failing_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    write_synthetic_run(run, names=2, seconds=10, fail_every=4)  # 40 requests per name per interval, 10 of them fail

    def reasons(seq: int, row: dict) -> dict[str, int]:
        if row["name"].endswith("/0/{id}"):
            return {BOOM: row["failures"] - 1, BODY: 1}
        return {BODY: row["failures"] - 3}  # 3 of its failures had no message: reasons may sum to less

    _rewrite_rows(run, reasons)
    return run


def test_failing_rows_show_their_messages_and_counts_in_every_report(tmp_path: Path) -> None:
    run = _failing_run(tmp_path)
    thresholds = [parse_threshold(KEY0, "error_ratio < 1%"), parse_threshold("all", "error_ratio < 1%"), parse_threshold(KEY1, "p99 < 60s")]
    report = write_reports(run, thresholds)
    summary = json.loads((run / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    assert summary["requests"][KEY0]["failure_reasons"] == [{"message": BOOM, "count": 5 * 9}, {"message": BODY, "count": 5}]
    assert summary["requests"][KEY1]["failure_reasons"] == [{"message": BODY, "count": 5 * 7}]
    assert summary["total"]["failure_reasons"] == [{"message": BOOM, "count": 45}, {"message": BODY, "count": 40}]
    assert report.exit_code == 1

    md = (run / "summary.md").read_text()
    section = md.split("### Failure reasons", 1)[1].split("###", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert rows == [
        f"| `{KEY0}` | 45 | HTTPError: 503 \\| upstream \\<down\\> \\& \\*out\\* |",
        f"| `{KEY0}` | 5 | orderId missing |",
        f"| `{KEY1}` | 35 | orderId missing |",
    ]

    suite = ET.parse(run / "junit.xml").getroot()
    failures = {c.get("classname"): c.find("failure") for c in suite.iter("testcase")}
    assert f"45 × {KEY0}: {BOOM}" in failures[KEY0].text and f"5 × {KEY0}: {BODY}" in failures[KEY0].text
    assert KEY1 not in failures[KEY0].text  # only the requests in the threshold's scope
    assert f"45 × all requests: {BOOM}" in failures["all"].text and f"40 × all requests: {BODY}" in failures["all"].text
    assert failures[KEY1] is None  # a passed threshold lists nothing
    system_out = suite.find("testcase[@classname='run']/system-out").text
    assert f"45 × {KEY0}: {BOOM}" in system_out and f"35 × {KEY1}: {BODY}" in system_out

    page = (run / "report.html").read_text()
    assert 'id="failure-reasons"' in page
    assert '<td>45</td><td class="msg">HTTPError: 503 | upstream &lt;down&gt; &amp; *out*</td>' in page
    assert "<down>" not in page


def test_a_run_without_failures_has_no_reason_sections(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=1, seconds=4)
    write_reports(run, [parse_threshold("all", "error_ratio < 1%")])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["total"]["failure_reasons"] == [] and summary["status"] == "passed"
    assert "Failure reasons" not in (run / "summary.md").read_text()
    assert "failure-reasons" not in (run / "report.html").read_text()
    system_out = ET.parse(run / "junit.xml").getroot().find("testcase[@classname='run']/system-out").text
    assert system_out == "passed: 1 of 1 thresholds passed"  # the verdict, and no reasons list


def test_reasons_stay_bounded_over_a_long_run_and_the_top_five_are_by_count(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=1, seconds=60, fail_every=4)  # 30 intervals, 10 failures each
    # every interval brings new messages: 30 × 3 distinct over the run, far above the reader's bound
    _rewrite_rows(run, lambda seq, row: {f"m{seq:02d}-{i}": 1 for i in range(3)} | {"always": row["failures"] - 3})
    data = load_results(run)
    reasons = data.totals[KEY0].reasons
    assert len(reasons) == MAX_REASONS + 1 and sum(reasons.values()) == 300 == data.totals[KEY0].failures
    assert reasons[OTHER_MESSAGES] == 30 * 3 - (MAX_REASONS - 1)
    summary = write_reports(run, []).summary
    top = [(r.message, r.count) for r in summary.requests[KEY0].failure_reasons]
    assert top == [("always", 210), (OTHER_MESSAGES, 41), ("m01-0", 1), ("m01-1", 1), ("m01-2", 1)]  # ties by message


def test_a_row_with_unreadable_reasons_is_skipped_and_listed(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=1, seconds=4, fail_every=4)
    _rewrite_rows(run, lambda seq, row: {BODY: row["failures"] + 1} if seq == 1 else {BODY: "many"})
    data = load_results(run)
    assert data.totals == {}  # both intervals' rows were bad: none counted as a measurement
    assert [p.split(": ", 2)[-1] for p in data.problems] == [
        f"{KEY0} reasons: the messages count 11 failures, more than the row's 10; row skipped",
        f"{KEY0} reasons['orderId missing']: expected a non-negative whole number, got 'many'; row skipped",
    ]
