"""Reports and the gate on synthetic results folders with known figures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pytest
from junitparser import JUnitXml

from peakload.cli import main
from peakload.core import parse_threshold
from reports.build import write_reports
from reports.gate import LiveGate
from reports.results import _interval
from reports.synthetic import write_synthetic_run

SCHEMA = json.loads((Path(__file__).parents[2] / "reports" / "summary.schema.json").read_text())


def exact_percentile(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[max(0, math.ceil(p / 100 * len(s)) - 1)]


def test_summary_validates_and_junit_names_failed_threshold(tmp_path: Path) -> None:
    run = tmp_path / "run"
    samples = write_synthetic_run(run, names=2, seconds=20, keep_samples=True)
    key = "GET /api/synthetic/1/{id}"
    p95 = exact_percentile(samples[key], 95)
    strict = parse_threshold(key, f"p95 < {p95 * 1000 * 0.5:.3f}ms")
    lenient = parse_threshold(key, f"p95 < {p95 * 1000 * 2:.3f}ms")
    report = write_reports(run, [strict, lenient, parse_threshold("all", "error_ratio < 1%")])
    summary = json.loads((run / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    assert summary["status"] == "failed" and summary["exit_code"] == 1 == report.exit_code
    assert [t["passed"] for t in summary["thresholds"]] == [False, True, True]

    xml = JUnitXml.fromfile(str(run / "junit.xml"))
    cases = [c for suite in ([xml] if xml._tag == "testsuite" else xml) for c in suite]
    failed = [c for c in cases if c.result and any(r._tag == "failure" for r in c.result)]
    assert len(cases) == 4  # the run itself + 3 thresholds
    assert len(failed) == 1 and failed[0].classname == key
    assert "breaks limit p95" in failed[0].result[0].message
    md = (run / "summary.md").read_text()
    assert "❌ FAILED" in md and key in md


def test_truncated_snapshots_still_report_completed_intervals(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=2, seconds=20, interval=2.0, end=False)
    snap = run / "snapshots.jsonl"
    raw = snap.read_bytes()
    snap.write_bytes(raw + raw.splitlines(keepends=True)[3][:150])  # a half-written line, as after SIGKILL
    report = write_reports(run, [parse_threshold("all", "error_ratio < 1%")])
    s = report.summary.to_json()
    assert s["intervals"] == 10 and s["complete"] is False
    assert s["status"] == "invalid" and s["exit_code"] == 3 and "cut short" in s["reason"]
    assert any("truncated last line" in p for p in s["problems"])
    html = (run / "report.html").read_text()
    assert "Incomplete or unreadable results" in html and "chart-latency" in html


def test_missing_and_corrupt_files_are_named(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=1, seconds=6)
    (run / "run.json").write_text("{not json")
    lines = (run / "snapshots.jsonl").read_text().splitlines()
    bad = json.loads(lines[2])
    bad["requests"][0]["hdr"] = "bm90IGEgaGlzdG9ncmFt"
    lines[2] = json.dumps(bad)
    (run / "snapshots.jsonl").write_text("\n".join(lines) + "\n")
    s = write_reports(run, []).summary.to_json()
    assert any(p.startswith("run.json: unreadable") for p in s["problems"])
    assert any("unreadable histogram" in p for p in s["problems"])
    assert s["total"]["requests"] == 3 * 40  # counts of the corrupt interval are kept


def test_live_gate_aborts_only_after_grace(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=1, seconds=20, interval=2.0, fail_every=2)  # 50 % errors
    lines = [json.loads(x) for x in (run / "snapshots.jsonl").read_text().splitlines()]
    intervals = [_interval(x) for x in lines if "kind" not in x]
    t = parse_threshold("all", "error_ratio < 5%", abort=True, grace=6.0)
    gate = LiveGate([t])
    reasons = [gate.feed(iv) for iv in intervals]
    first = next(i for i, r in enumerate(reasons) if r)
    assert first == 2  # breached from interval 0 (t=0..2); 6 s of grace ends at interval 2 (t=4..6)
    assert "breached for 6s" in reasons[first]
    assert LiveGate([parse_threshold("all", "error_ratio < 60%", abort=True)]).feed(intervals[0]) is None


def _run_dir(tmp_path: Path, name: str, **kw) -> Path:
    d = tmp_path / name
    write_synthetic_run(d, names=2, seconds=60, rps_per_name=100, **kw)  # 6,000 samples a name: p99 noise < tolerance
    write_reports(d, [parse_threshold("all", "error_ratio < 1%")])
    return d


def test_compare_flags_latency_regression_and_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _run_dir(tmp_path, "base", seed=1)
    same = _run_dir(tmp_path, "same", seed=2)
    assert main(["compare", str(same), str(base)]) == 0
    # A slower build: every latency ×1.5 (same seed → same shape, shifted log-normal).
    slow = tmp_path / "slow"
    write_synthetic_run(slow, names=2, seconds=60, rps_per_name=100, seed=1)
    lines = (slow / "snapshots.jsonl").read_text().splitlines()
    from reports.results import new_histogram

    out = []
    for line in lines:
        obj = json.loads(line)
        for row in obj.get("requests", []):
            h = new_histogram()
            src = new_histogram()
            src.decode_and_add(row["hdr"])
            for item in src.get_recorded_iterator():
                h.record_value(int(item.value_iterated_to * 1.5), item.count_at_value_iterated_to)
            row["hdr"] = h.encode().decode()
        out.append(json.dumps(obj))
    (slow / "snapshots.jsonl").write_text("\n".join(out) + "\n")
    write_reports(slow, [])
    capsys.readouterr()
    assert main(["compare", str(slow), str(base)]) == 1
    text = capsys.readouterr().out
    assert "regression" in text and "p95_ms" in text


def test_gate_and_report_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=1, seconds=10, fail_every=2)
    (run / "profile.yaml").write_text(
        "version: peakload/v1\nname: t\nslo: null\nshape: {stages: [{kind: steady, duration: 10s, users: 1}]}\n"
        "thresholds:\n  all: ['error_ratio < 1%']\n"
    )
    assert main(["report", str(run)]) == 0  # report succeeds whatever the verdict
    assert main(["gate", str(run)]) == 1
    assert "FAIL all: error_ratio < 1%" in capsys.readouterr().out
    assert main(["gate", str(tmp_path / "nope")]) == 2
    assert "not a results folder" in capsys.readouterr().err


def test_cpu_overloaded_generator_makes_the_run_invalid(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=1, seconds=6)
    lines = (run / "snapshots.jsonl").read_text().splitlines()
    obj = json.loads(lines[2])
    obj["cpu_warning"] = True  # what the Locust bridge records when Locust emits its CPU warning
    lines[2] = json.dumps(obj)
    (run / "snapshots.jsonl").write_text("\n".join(lines) + "\n")
    s = write_reports(run, [parse_threshold("all", "error_ratio < 1%")]).summary.to_json()
    assert s["status"] == "invalid" and s["exit_code"] == 3 and "CPU" in s["reason"]


def test_report_with_baseline_renders_the_comparison(tmp_path: Path) -> None:
    base = _run_dir(tmp_path, "base", seed=1)
    cur = _run_dir(tmp_path, "cur", seed=2)
    assert main(["report", str(cur), "--baseline", str(base)]) == 0
    html = (cur / "report.html").read_text()
    assert 'id="compare"' in html and "Against baseline" in html
    s = json.loads((cur / "summary.json").read_text())
    jsonschema.validate(s, SCHEMA)
    assert s["baseline"]["rows"] and s["baseline"]["regressions"] == 0
