"""Per-stage verdicts: a threshold scoped ``during:``/``after:`` a stage or an MM:SS window is judged on exactly
that window's intervals (midpoint rule), on snapshot folders with a known slow warm-up and a fast plateau."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from peakload.cli import main
from peakload.core import parse_threshold
from peakload.core.records import SNAPSHOTS, interval_from
from reports.gate import LiveGate, evaluate
from reports.results import load_results, new_histogram
from tests.command import peakload

T0 = 1_764_000_000.0
IV = 2.0  # seconds per snapshot interval
SLOW, FAST = 0.8, 0.05  # seconds

SHAPE = """\
version: peakload/v1
name: staged
slo: null
shape:
  stages:
    - {{name: warm, kind: ramp, duration: 10s, users: 5}}
    - {{name: plateau, kind: steady, duration: 20s, users: 5}}
thresholds: {thresholds}
"""

ARRIVALS = """\
version: peakload/v1
name: staged-open
slo: null
arrivals:
  kind: constant
  stages:
    - {{name: warm, duration: 10s, rate: 5}}
    - {{name: plateau, duration: 20s, rate: 5}}
thresholds: {thresholds}
"""


def _write(d: Path, intervals: list[tuple[float, int]], profile: str, *, events: list[dict] | None = None) -> dict[int, list[float]]:
    """A results folder: one interval per (latency s, request count), each request's latency spread ±10 % around it.
    Returns the latencies per interval index (for the exact-merge check)."""
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"run_id": d.name, "profile": "staged", "target": "http://127.0.0.1:1", "started_ts": T0}))
    (d / "profile.yaml").write_text(profile)
    if events:
        (d / "events.jsonl").write_text("".join(json.dumps(ev) + "\n" for ev in events))
    samples: dict[int, list[float]] = {}
    with open(d / SNAPSHOTS, "w") as fh:
        fh.write(json.dumps({"v": 1, "kind": "header", "run_id": d.name, "latency_basis": "response"}) + "\n")
        for i, (latency, count) in enumerate(intervals):
            values = [latency * (0.9 + 0.2 * k / max(count - 1, 1)) for k in range(count)]
            samples[i] = values
            h = new_histogram()
            for v in values:
                h.record_value(int(v * 1e6))
            rows = (
                [
                    {
                        "name": "/api/home",
                        "method": "GET",
                        "step": "home",
                        "count": count,
                        "failures": 0,
                        "status": {"2xx": count},
                        "errors": {},
                        "sum_s": sum(values),
                        "hdr": h.encode().decode(),
                    }
                ]
                if count
                else []
            )
            line = {"v": 1, "seq": i + 1, "t_start": T0 + i * IV, "t_end": T0 + (i + 1) * IV, "users": 5, "workers": 0}
            fh.write(json.dumps({**line, "requests": rows, "business": {}, "arrivals": {}, "cpu_warning": False}) + "\n")
        fh.write(json.dumps({"v": 1, "kind": "end", "reason": "completed"}) + "\n")
    return samples


def _gate(d: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["gate", str(d)])
    capsys.readouterr()
    return code, json.loads((d / "summary.json").read_text())


def _rows(summary: dict) -> dict[str, dict]:
    return {t["id"]: t for t in summary["thresholds"]}


SLOW_WARM = [(SLOW, 100)] * 5 + [(FAST, 100)] * 10  # 10 s slow warm-up, 20 s fast plateau
BOTH = "{all: ['p95 < 300ms', {expr: 'p95 < 300ms', during: plateau}]}"


def test_the_run_wide_p95_fails_while_the_plateau_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "slow-warm"
    samples = _write(d, SLOW_WARM, SHAPE.format(thresholds=BOTH))
    code, s = _gate(d, capsys)
    rows = _rows(s)
    whole, plateau = rows["all: p95 < 300ms"], rows["all: p95 < 300ms during plateau"]
    assert whole["passed"] is False and whole["observed"] > 0.7  # a third of the samples are the 0.8 s warm-up
    assert plateau["passed"] is True and plateau["observed"] < 0.06
    assert (plateau["window"], plateau["window_start_s"], plateau["window_end_s"]) == ("during plateau", 10.0, 30.0)
    assert code == 1 and s["status"] == "failed"
    # exactly the plateau's intervals: its p95 is the p95 of a histogram of just those samples
    h = new_histogram()
    for i in range(5, 15):
        for v in samples[i]:
            h.record_value(int(v * 1e6))
    assert plateau["observed"] == h.get_value_at_percentile(95) / 1e6
    # per-stage figures and verdicts in the summary and every rendering
    stages = {st["name"]: st for st in s["stages"]}
    assert (stages["warm"]["requests"], stages["warm"]["intervals"], stages["warm"]["verdict"]) == (500, 5, "no thresholds")
    assert (stages["plateau"]["requests"], stages["plateau"]["intervals"], stages["plateau"]["verdict"]) == (1000, 10, "passed")
    assert stages["warm"]["p95_ms"] > 700 and stages["plateau"]["p95_ms"] < 60
    assert stages["plateau"]["rps"] == pytest.approx(1000 / 20)
    assert s["timeline_start"] == "the first interval's start"
    md = (d / "summary.md").read_text()
    assert "### Stages" in md and "| `plateau` | 00:10..00:30 | ✅ pass | 1000 |" in md
    html = (d / "report.html").read_text()
    assert 'id="stages"' in html and "<td>00:10..00:30</td>" in html
    cases = {c.get("name"): c for c in ET.fromstring((d / "junit.xml").read_text()).iter("testcase")}
    assert cases["p95 < 300.0ms during plateau"].find("failure") is None
    assert cases["p95 < 300.0ms"].find("failure") is not None


def test_a_short_slow_plateau_fails_while_the_run_wide_p95_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 20 s fast (1000 requests), then a 4 s stage at 0.8 s with 40 requests: under 5 % of the run's samples
    profile = """\
version: peakload/v1
name: staged
slo: null
shape:
  stages:
    - {name: warm, kind: ramp, duration: 20s, users: 5}
    - {name: peak-hold, kind: steady, duration: 4s, users: 50}
thresholds: {all: ['p95 < 300ms', {expr: 'p95 < 300ms', during: peak-hold}]}
"""
    d = tmp_path / "slow-peak"
    _write(d, [(FAST, 100)] * 10 + [(SLOW, 20)] * 2, profile)
    code, s = _gate(d, capsys)
    rows = _rows(s)
    assert rows["all: p95 < 300ms"]["passed"] is True and rows["all: p95 < 300ms"]["observed"] < 0.06
    peak = rows["all: p95 < 300ms during peak-hold"]
    assert peak["passed"] is False and peak["observed"] > 0.7
    assert "during peak-hold (20s..24s, 2 intervals) breaks" in peak["message"]
    assert code == 1
    assert {st["name"]: st["verdict"] for st in s["stages"]} == {"warm": "no thresholds", "peak-hold": "failed"}


def test_mmss_windows_count_from_the_schedule_start_of_an_open_model_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 4 s of lead (two idle intervals) before the arrivals start event, then the 10 s warm-up, then the plateau
    thresholds = (
        "{all: [{expr: 'requests >= 500', during: '00:00..00:10'}, {expr: 'p95 < 300ms', during: '00:10..00:30'},"
        " {expr: 'p95 < 300ms', during: '00:00..00:10'}]}"
    )
    d = tmp_path / "open"
    event = {"t": T0 + 4.0, "kind": "arrivals", "name": "arrivals start", "detail": "constant 5/s"}
    _write(d, [(FAST, 0)] * 2 + SLOW_WARM, ARRIVALS.format(thresholds=thresholds), events=[event])
    code, s = _gate(d, capsys)
    rows = _rows(s)
    first = rows["all: requests >= 500 during 00:00..00:10"]
    assert first["observed"] == 500 and first["passed"] is True  # exactly the five warm-up intervals, not the idle lead
    assert rows["all: p95 < 300ms during 00:10..00:30"]["passed"] is True
    assert rows["all: p95 < 300ms during 00:00..00:10"]["passed"] is False
    assert s["timeline_start"] == "the arrivals start event"
    assert [(st["name"], st["requests"], st["start_s"]) for st in s["stages"]] == [("warm", 500, 0.0), ("plateau", 1000, 10.0)]
    assert code == 1


def test_after_a_stage_and_after_an_offset_run_to_the_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    thresholds = "{all: [{expr: 'p95 < 300ms', after: warm}, {expr: 'requests == 1000', after: '00:10'}, {expr: 'requests == 500', after: '00:21'}, {expr: 'requests == 500', after: '00:23'}]}"
    d = tmp_path / "after"
    _write(d, SLOW_WARM, SHAPE.format(thresholds=thresholds))
    code, s = _gate(d, capsys)
    rows = _rows(s)
    after_warm = rows["all: p95 < 300ms after warm"]
    assert after_warm["passed"] is True and (after_warm["window_start_s"], after_warm["window_end_s"]) == (10.0, None)
    assert rows["all: requests == 1000 after 00:10"]["passed"] is True
    # an edge inside an interval: the interval counts when its midpoint lies in the window ([20 s, 22 s): 21 s)
    assert rows["all: requests == 500 after 00:21"]["passed"] is True
    assert rows["all: requests == 500 after 00:23"]["observed"] == 400  # [22 s, 24 s) has its midpoint 23 s: in
    assert code == 1 and s["status"] == "failed"


def test_a_window_without_requests_is_not_judged_never_passed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "empty"
    _write(d, SLOW_WARM, SHAPE.format(thresholds="{all: [{expr: 'p95 < 300ms', during: '10:00..11:00'}]}"))
    code, s = _gate(d, capsys)
    (row,) = s["thresholds"]
    assert row["passed"] is None and row["observed"] is None
    assert row["message"].startswith("not judged: no requests in the window (600s..660s)")
    assert s["status"] == "unjudged" and code == 3  # nothing judged is not a pass
    assert "➖ skip" in (d / "summary.md").read_text()
    case = next(c for c in ET.fromstring((d / "junit.xml").read_text()).iter("testcase") if c.get("classname") == "all")
    assert case.find("skipped") is not None


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{expr: 'p95 < 300ms', during: plataeu}", "during: unknown stage 'plataeu'; known stages: warm, plateau"),
        ("{expr: 'p95 < 300ms', after: cool}", "after: unknown stage 'cool'; known stages: warm, plateau"),
        ("{expr: 'p95 < 300ms', during: '01:00..00:30'}", "ends before it starts"),
        ("{expr: 'p95 < 300ms', during: warm, after: warm}", "give during or after, not both"),
    ],
)
def test_a_bad_window_is_one_line_and_exit_2(tmp_path: Path, entry: str, expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(SHAPE.format(thresholds="{all: [" + entry + "]}"))
    proc = peakload("run", "--profile", str(path), "--results", str(tmp_path / "results"), timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "thresholds" in lines[0] and "['all'][0]" in lines[0] and expected in lines[0], lines[0]
    assert not (tmp_path / "results").exists()  # refused before anything ran


def test_the_live_gate_judges_a_scoped_abort_threshold_only_inside_its_window(tmp_path: Path) -> None:
    d = tmp_path / "live"
    _write(d, SLOW_WARM, SHAPE.format(thresholds="{}"))
    lines = [json.loads(x) for x in (d / SNAPSHOTS).read_text().splitlines()[1:-1]]
    ivs = [interval_from(obj) for obj in lines]
    plateau = parse_threshold("all", "p95 < 300ms", abort=True, during="plateau")
    warm = parse_threshold("all", "p95 < 300ms", abort=True, grace=3, during="warm")
    # the slow warm-up aborts a run-wide abort threshold at once ...
    assert LiveGate([parse_threshold("all", "p95 < 300ms", abort=True)], run_dir=d).feed(ivs[0]) is not None
    # ... but not one scoped to the plateau
    gate = LiveGate([plateau], run_dir=d)
    assert [gate.feed(iv) for iv in ivs] == [None] * len(ivs)
    # a threshold on the warm-up aborts inside it, once breached past its grace (3 s: at the second interval's end)
    gate = LiveGate([warm], run_dir=d)
    reasons = [gate.feed(iv) for iv in ivs[:5]]
    assert reasons[0] is None and reasons[1] is not None and "during warm" in reasons[1]
    # without the results folder a scoped threshold is not live (judged after the run only)
    gate = LiveGate([warm])
    assert [gate.feed(iv) for iv in ivs] == [None] * len(ivs)
    # and after the run the same thresholds judge the same windows
    data = load_results(d)
    assert [r.passed for r in evaluate([plateau, warm], data)] == [True, False]


E2E = """\
version: peakload/v1
name: two-stages
slo: null
arrivals:
  kind: constant
  journey: single_request
  path: /api/home
  stages:
    - {{name: warm, duration: {warm_s}s, rate: {warm_rate}}}
    - {{name: peak, duration: {peak_s}s, rate: {peak_rate}}}
thresholds:
  all:
    - {{expr: 'requests >= {warm_min}', during: warm}}
    - {{expr: 'p95 < 2s', during: peak}}
    - {{expr: 'error_ratio < 1%', after: warm}}
    - {{expr: 'p95 < 2s', during: '10:00..10:10'}}
"""


@pytest.mark.load
def test_a_real_run_with_two_stages_writes_per_stage_verdicts(tmp_path: Path) -> None:
    warm_s, warm_rate, peak_s, peak_rate = 4, 5, 6, 20
    path = tmp_path / "two-stages.yaml"
    path.write_text(E2E.format(warm_s=warm_s, warm_rate=warm_rate, peak_s=peak_s, peak_rate=peak_rate, warm_min=warm_s * warm_rate - 2))
    proc = peakload("run", "--profile", str(path), "--results", str(tmp_path / "results"), "--quiet", timeout=180)
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    s = json.loads((run / "summary.json").read_text())
    assert proc.returncode == 0 and s["status"] == "passed", (proc.stdout[-1500:], proc.stderr[-1500:], s["reason"])
    assert s["timeline_start"] == "the arrivals start event"
    stages = {st["name"]: st for st in s["stages"]}
    assert [(st["name"], st["start_s"], st["end_s"]) for st in s["stages"]] == [("warm", 0.0, warm_s), ("peak", warm_s, warm_s + peak_s)]
    # each stage holds its own arrivals (one request each): rate × duration, give or take one in flight at an edge
    assert abs(stages["warm"]["requests"] - warm_s * warm_rate) <= 2, stages["warm"]
    assert abs(stages["peak"]["requests"] - peak_s * peak_rate) <= 2, stages["peak"]
    assert stages["warm"]["verdict"] == "passed" and stages["peak"]["verdict"] == "passed"
    assert stages["peak"]["p95_ms"] is not None and stages["peak"]["rps"] > stages["warm"]["rps"]
    rows = _rows(s)
    assert rows[f"all: requests >= {warm_s * warm_rate - 2} during warm"]["observed"] == stages["warm"]["requests"]
    assert rows["all: error_ratio < 1% after warm"]["passed"] is True
    late = rows["all: p95 < 2000ms during 10:00..10:10"]
    assert late["passed"] is None and late["message"].startswith("not judged: no requests in the window")
    assert "### Stages" in (run / "summary.md").read_text()


@pytest.mark.load
def test_a_real_run_aborts_on_a_scoped_threshold_only_inside_its_window(tmp_path: Path) -> None:
    # every request takes >= 30 ms (injected): a run-wide abort would stop the run in its first interval
    warm_s, peak_s = 4, 20
    profile = E2E.format(warm_s=warm_s, warm_rate=5, peak_s=peak_s, peak_rate=5, warm_min=1).split("thresholds:")[0]
    profile += "embedded: {inject_latency: {/api/home: 30ms}}\nthresholds:\n  all:\n    - {expr: 'p95 < 10ms', abort: true, during: peak}\n"
    path = tmp_path / "abort-in-peak.yaml"
    path.write_text(profile)
    proc = peakload("run", "--profile", str(path), "--results", str(tmp_path / "results"), "--quiet", timeout=180)
    (run,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    s = json.loads((run / "summary.json").read_text())
    assert proc.returncode == 1 and s["decided_by"] == "aborted", (proc.stderr[-1500:], s["reason"])
    assert "'all: p95 < 10ms during peak' breached" in s["reason"]
    stages = {st["name"]: st for st in s["stages"]}
    # the slow warm-up ran to its end (it is not the threshold's window); the abort came inside the peak, well before its end
    assert abs(stages["warm"]["requests"] - warm_s * 5) <= 2 and stages["warm"]["p95_ms"] >= 30
    assert 0 < stages["peak"]["requests"] < peak_s * 5 / 2
