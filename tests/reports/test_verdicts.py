"""Verdicts that cannot pass a broken run: each rule decides when its condition is planted, and says so."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from exporters.histogram import new_hdr
from peakload.cli import main
from peakload.core import parse_threshold
from reports.build import write_reports
from reports.summary import VERDICT_RULES
from reports.synthetic import write_synthetic_run

PROFILE = """\
version: peakload/v1
name: probe
slo: {slo}
shape: {{stages: [{{kind: steady, duration: 10s, users: 1}}]}}
thresholds: {thresholds}
compare: {{min_requests: 5{extra}}}
"""


def _run(tmp_path: Path, name: str, *, thresholds: str = "{all: [error_ratio < 60%]}", slo: str = "null", extra: str = "", **kw) -> Path:
    d = tmp_path / name
    write_synthetic_run(d, names=2, seconds=10, rps_per_name=20, **kw)
    (d / "profile.yaml").write_text(PROFILE.format(slo=slo, thresholds=thresholds, extra=extra))
    return d


def _gate(d: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["gate", str(d)])
    out = capsys.readouterr().out
    summary = json.loads((d / "summary.json").read_text())
    assert f"decided by: {summary['decided_by']}" in out
    return code, summary


def _plant_lag(d: Path, *, seconds: float, n: int = 50) -> None:
    """Give every interval line a scheduler-lateness histogram of ``n`` samples of ``seconds`` (a generator that lagged)."""
    hist = new_hdr()
    hist.record_value(int(seconds * 1e6), n)
    blob = hist.encode().decode()
    lines = []
    for raw in (d / "snapshots.jsonl").read_text().splitlines():
        obj = json.loads(raw)
        if "kind" not in obj:
            obj["generator"] = {"scheduler_lateness": {"count": n, "sum_s": seconds * n, "hdr": blob}}
        lines.append(json.dumps(obj))
    (d / "snapshots.jsonl").write_text("\n".join(lines) + "\n")


def test_each_verdict_rule_decides_when_its_condition_is_planted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seen = {}
    d = _run(tmp_path, "passed")
    seen["thresholds-passed"] = _gate(d, capsys)
    d = _run(tmp_path, "failed", fail_every=1)  # every request fails
    seen["threshold-failed"] = _gate(d, capsys)
    d = _run(tmp_path, "none", thresholds="{}")
    seen["nothing-judged"] = _gate(d, capsys)
    d = _run(tmp_path, "ungated", thresholds="none")
    seen["no-thresholds-by-design"] = _gate(d, capsys)
    d = _run(tmp_path, "incomplete", end=False)
    seen["incomplete"] = _gate(d, capsys)
    d = _run(tmp_path, "invalid")
    (d / "outcome.json").write_text(json.dumps({"invalid": "target unreachable"}))
    seen["run-invalid"] = _gate(d, capsys)
    d = _run(tmp_path, "aborted")
    (d / "outcome.json").write_text(json.dumps({"aborted": "aborted: p99 breached"}))
    seen["aborted"] = _gate(d, capsys)
    d = _run(tmp_path, "cpu")
    (d / "outcome.json").write_text(json.dumps({"cpu_warning": True}))
    seen["generator-overloaded"] = _gate(d, capsys)
    d = _run(tmp_path, "lagging", thresholds="{all: [p95 < 60s]}")
    _plant_lag(d, seconds=2.0)
    seen["generator-lag"] = _gate(d, capsys)
    d = _run(tmp_path, "empty")
    lines = (d / "snapshots.jsonl").read_text().splitlines()
    (d / "snapshots.jsonl").write_text(lines[0] + "\n" + lines[-1] + "\n")  # header and end, no interval
    seen["no-measurements"] = _gate(d, capsys)
    expected = {
        "thresholds-passed": (0, "passed"),
        "threshold-failed": (1, "failed"),
        "nothing-judged": (3, "unjudged"),
        "no-thresholds-by-design": (0, "ungated"),
        "incomplete": (3, "invalid"),
        "run-invalid": (3, "invalid"),
        "aborted": (1, "failed"),
        "generator-overloaded": (3, "invalid"),
        "generator-lag": (3, "invalid"),
        "no-measurements": (3, "invalid"),
    }
    for rule, (code, summary) in seen.items():
        assert summary["decided_by"] == rule, (rule, summary["decided_by"], summary["reason"])
        assert (code, summary["status"]) == expected[rule], rule
        assert summary["exit_code"] == code and summary["reason"]
    assert set(seen) | {"capacity-knee"} == set(VERDICT_RULES)


def test_slo_thresholds_all_skipped_is_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The own-shop failure mode: an SLO spec naming requests the run never sent judges nothing."""
    slo = tmp_path / "slo.yaml"
    slo.write_text("version: peakload/v1\nslos: [{name: a, kind: availability, requests: ['GET /api/home'], objective: 99}]\n")
    d = _run(tmp_path, "run", thresholds="{}", slo="slo.yaml")
    (d / "slo.yaml").write_text(slo.read_text())
    code, summary = _gate(d, capsys)
    assert (code, summary["status"], summary["decided_by"]) == (3, "unjudged", "nothing-judged")
    assert "skipped" in summary["reason"]
    assert [t["passed"] for t in summary["thresholds"]] == [None]


def test_thresholds_none_is_a_deliberate_pass_without_a_gate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _run(tmp_path, "run", thresholds="none", slo="null")
    code, summary = _gate(d, capsys)
    assert (code, summary["status"], summary["decided_by"]) == (0, "ungated", "no-thresholds-by-design")
    assert summary["reason"] == "no thresholds by design (the profile declares thresholds: none)"
    assert summary["thresholds"] == []
    md = (d / "summary.md").read_text()
    assert md.startswith(f"## peakload run `{summary['run_id']}` — ➖ NO THRESHOLDS (by design)\n")
    assert "no thresholds by design" in md
    assert 'class="banner ungated"' in (d / "report.html").read_text()
    suite = ET.parse(d / "junit.xml").getroot()
    assert suite.get("errors") == "0" and suite.find("testcase/error") is None
    # without an slo line at all, the default SLO spec does not sneak thresholds back in
    (d / "profile.yaml").write_text(PROFILE.format(slo="null", thresholds="none", extra="").replace("slo: null\n", ""))
    assert _gate(d, capsys)[1]["decided_by"] == "no-thresholds-by-design"


def test_every_earlier_rule_still_beats_thresholds_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    planted = {
        "run-invalid": {"invalid": "target unreachable"},
        "aborted": {"aborted": "aborted: Ctrl-C"},
        "generator-overloaded": {"cpu_warning": True},
    }
    for rule, outcome in planted.items():
        d = _run(tmp_path, rule, thresholds="none")
        (d / "outcome.json").write_text(json.dumps(outcome))
        code, summary = _gate(d, capsys)
        assert (summary["decided_by"], code) == (rule, 1 if rule == "aborted" else 3)
    d = _run(tmp_path, "incomplete", thresholds="none", end=False)
    assert _gate(d, capsys)[1]["decided_by"] == "incomplete"
    d = _run(tmp_path, "empty", thresholds="none")
    lines = (d / "snapshots.jsonl").read_text().splitlines()
    (d / "snapshots.jsonl").write_text(lines[0] + "\n" + lines[-1] + "\n")
    assert _gate(d, capsys)[1]["decided_by"] == "no-measurements"


def test_a_folder_without_profile_yaml_says_why_nothing_was_judged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _run(tmp_path, "plain-locust")
    (d / "profile.yaml").unlink()
    code, summary = _gate(d, capsys)
    assert (code, summary["status"], summary["decided_by"]) == (3, "unjudged", "nothing-judged")
    assert summary["reason"] == (
        "nothing was judged: the results folder has no profile.yaml (a plain locust run without PEAKLOAD_PROFILE); "
        "set PEAKLOAD_PROFILE to judge it"
    )
    suite = ET.parse(d / "junit.xml").getroot()
    assert suite.get("errors") == "1" and "no profile.yaml" in suite.find("testcase/error").get("message")


def test_an_unreadable_profile_copy_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    d = _run(tmp_path, "run", thresholds="none")
    (d / "profile.yaml").write_text("version: peakload/v1\nname: [unclosed\n")
    summary = write_reports(d, []).summary
    assert (summary.status, summary.exit_code) == ("unjudged", 3)  # not ungated: the opt-out cannot be read
    assert any(p.startswith("profile.yaml: ") and "thresholds setting is unknown" in p for p in summary.problems)
    assert "no thresholds were declared" in (summary.reason or "")


def test_thresholds_none_with_an_slo_spec_is_one_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = _run(tmp_path, "run", thresholds="none", slo="slo.yaml")
    capsys.readouterr()
    assert main(["gate", str(d)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "thresholds: none: the profile also names an slo spec (slo: slo.yaml); drop one" in err
    assert not (d / "summary.json").exists()


def test_business_figures_the_target_cannot_give_are_na_not_zero(tmp_path: Path) -> None:
    d = _run(tmp_path, "run")
    (d / "reconciliation.json").write_text(json.dumps({"orders_created": 3, "oversold_units": "zero"}))
    report = write_reports(
        d,
        [
            parse_threshold("business", "oversold == 0"),
            parse_threshold("business", "duplicates == 0"),
            parse_threshold("all", "dropped_ratio < 1%"),
        ],
    )
    by_metric = {t["metric"]: t for t in report.summary.to_json()["thresholds"]}
    for metric, why in (("oversold", "oversold_units"), ("duplicates", "duplicate_orders"), ("dropped_ratio", "no arrivals")):
        assert by_metric[metric]["observed"] is None and by_metric[metric]["passed"] is False, by_metric[metric]
        assert why in by_metric[metric]["message"]
    assert any("oversold_units" in p for p in report.summary.to_json()["problems"])  # the wrongly typed field is listed
    (d / "reconciliation.json").write_text(
        json.dumps({"oversold_units": 0, "duplicate_orders": 0, "duplicate_charges": 0, "gateway_checked": False})
    )
    dup = write_reports(d, [parse_threshold("business", "duplicates == 0")]).summary.to_json()["thresholds"][0]
    assert dup["passed"] is False and dup["observed"] is None and "gateway" in dup["message"]


def _compare(run: Path, base: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["compare", str(run), str(base)])
    return code, capsys.readouterr().out


def test_compare_refuses_to_call_an_empty_run_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _run(tmp_path, "base")
    empty = _run(tmp_path, "empty")
    lines = (empty / "snapshots.jsonl").read_text().splitlines()
    (empty / "snapshots.jsonl").write_text(lines[0] + "\n" + lines[-1] + "\n")
    for d in (base, empty):
        assert main(["report", str(d)]) == 0
    code, out = _compare(empty, base, capsys)
    assert code == 3 and "decided by: current-unmeasured" in out
    code, out = _compare(base, empty, capsys)
    assert code == 3 and "decided by: baseline-unmeasured" in out
    code, out = _compare(base, base, capsys)  # 200 requests a name: too few to rule out a 10 % regression, never a pass
    assert code == 3 and "decided by: inconclusive" in out and "requests per run" in out


def test_a_vanished_request_is_a_regression_unless_excused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _run(tmp_path, "base")
    assert main(["report", str(base)]) == 0
    summary = json.loads((base / "summary.json").read_text())
    gone = sorted(summary["requests"])[0]
    cur = _run(tmp_path, "cur")
    assert main(["report", str(cur)]) == 0
    s = json.loads((cur / "summary.json").read_text())
    del s["requests"][gone]
    (cur / "summary.json").write_text(json.dumps(s))
    code, out = _compare(cur, base, capsys)
    assert code == 1 and "missing" in out and gone in out and "decided by: regression" in out
    excused = _run(tmp_path, "excused", extra=f", allow_missing: ['{gone}']")
    (excused / "summary.json").write_text(json.dumps(s))
    code, out = _compare(excused, base, capsys)  # excused: no regression; the rest is too small a sample to pass
    assert code == 3 and "missing (allowed)" in out and "decided by: inconclusive" in out


def test_compare_with_nothing_comparable_is_not_a_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _run(tmp_path, "base")
    (base / "profile.yaml").write_text((base / "profile.yaml").read_text().replace("min_requests: 5", "min_requests: 100000"))
    assert main(["report", str(base)]) == 0
    code, out = _compare(base, base, capsys)
    assert code == 3 and "decided by: nothing-compared" in out


def test_compare_without_a_common_request_name_does_not_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _run(tmp_path, "base")
    assert main(["report", str(base)]) == 0
    names = sorted(json.loads((base / "summary.json").read_text())["requests"])
    cur = _run(tmp_path, "cur", extra=", allow_missing: [" + ", ".join(f"'{n}'" for n in names) + "]")
    assert main(["report", str(cur)]) == 0
    s = json.loads((cur / "summary.json").read_text())
    s["requests"] = {k.replace("synthetic", "renamed"): v for k, v in s["requests"].items()}  # the same shop, other route names
    (cur / "summary.json").write_text(json.dumps(s))
    code, out = _compare(cur, base, capsys)
    assert code == 3 and "decided by: nothing-compared" in out
    (cur / "profile.yaml").write_text(PROFILE.format(slo="null", thresholds="{}", extra=""))  # nothing excused
    code, out = _compare(cur, base, capsys)
    assert code == 1 and "decided by: regression" in out
