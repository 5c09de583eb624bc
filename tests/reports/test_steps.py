"""Journey steps from the snapshot stream to the verdict: per-step totals, step thresholds, what a platform does not offer.

Run folders are written by the real writer (StatsStore → SnapshotWriter), as a run writes them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import jsonschema
import pytest

from exporters.stats import StatsStore
from peakload.core import Threshold, parse_threshold
from peakload.core.records import RunMeta, interval_from
from peakload.core.snapshots import SNAPSHOT_FILE, SnapshotWriter
from peakload.core.steps import STEPS
from peakload.core.summary import Summary
from reports.build import write_reports
from reports.gate import LiveGate, evaluate
from reports.results import load_results
from reports.summary import verdict

SCHEMA = json.loads((Path(__file__).parents[2] / "reports" / "summary.schema.json").read_text())
T0 = 1_764_000_000.0
NOT_OFFERED_MESSAGE = "skipped: n/a (not offered by this platform)"

# (name, method, step, seconds): the same order route serves checkout (fast) and the flash sale (slow)
FAST_CHECKOUT = ("/api/orders", "POST", "checkout", 0.05)
SLOW_FLASH = ("/api/orders", "POST", "flash_checkout", 1.5)
HOME = ("/api/home", "GET", "home", 0.02)
HEALTH = ("/healthz", "GET", "", 0.001)


def _write_run(
    path: Path, intervals: list[list[tuple[str, str, str, float]]], *, not_offered: tuple[str, ...] = (), fail_every: int = 0
) -> Path:
    path.mkdir(parents=True)
    meta = RunMeta(run_id=path.name, profile="steps", target="http://127.0.0.1:1", started_ts=T0, not_offered=not_offered)
    (path / "run.json").write_text(json.dumps({k: v for k, v in meta.to_json().items() if v is not None}))
    store = StatsStore(edges=(0.1, 0.3, 2.0))
    writer = SnapshotWriter(path / SNAPSHOT_FILE, header={"run_id": path.name, "latency_basis": "response"})
    n = 0
    for i, samples in enumerate(intervals):
        for name, method, step, seconds in samples:
            n += 1
            failed = fail_every and n % fail_every == 0
            store.record(name, method, seconds, 503 if failed else 200, "http_5xx" if failed else None, step=step)
        writer.write_interval(
            store.drain_delta(), t_start=T0 + 2 * i, t_end=T0 + 2 * i + 2, users=5, workers=1, target_rate=None, cpu_warning=False
        )
    writer.close(reason="completed")
    return path


def _mixed(seed: int = 1, intervals: int = 5, per: int = 60) -> list[list[tuple[str, str, str, float]]]:
    rng = random.Random(seed)
    kinds = [FAST_CHECKOUT, SLOW_FLASH, HOME, HEALTH]
    return [[rng.choice(kinds) for _ in range(per)] for _ in range(intervals)]


def test_step_totals_sum_to_the_request_totals_and_rows_name_their_one_step(tmp_path: Path) -> None:
    ivs = _mixed()
    run = _write_run(tmp_path / "run", ivs, fail_every=7)
    data = load_results(run)
    assert data.problems == []
    sent = [s for iv in ivs for s in iv]
    per_step = {step: sum(1 for s in sent if s[2] == step) for step in {s[2] for s in sent} if step}
    assert {step: t.count for step, t in data.step_totals.items()} == per_step
    assert {step: t.name for step, t in data.step_totals.items()} == {step: f"step:{step}" for step in per_step}
    # the per-name totals merge the steps of a name; with the requests outside the journey they are everything
    orders = data.totals["POST /api/orders"]
    assert orders.count == data.step_totals["checkout"].count + data.step_totals["flash_checkout"].count
    assert orders.failures == data.step_totals["checkout"].failures + data.step_totals["flash_checkout"].failures
    assert sum(t.count for t in data.step_totals.values()) + data.totals["GET /healthz"].count == data.all_requests().count == len(sent)
    # the histograms were split too: the fast step's p95 is far below the route's
    assert data.step_totals["checkout"].percentile(95) < 0.1 < orders.percentile(95)

    report = write_reports(run, [parse_threshold("all", "error_ratio < 50%")])
    s = report.summary
    jsonschema.validate(s.to_json(), SCHEMA)
    assert s.requests["POST /api/orders"].step is None  # two steps
    assert s.requests["GET /api/home"].step == "home"
    assert s.requests["GET /healthz"].step is None  # outside the journey
    assert list(s.steps) == [st for st in STEPS if st in per_step]  # journey order, only steps with requests
    assert {k: r.requests for k, r in s.steps.items()} == per_step
    assert s.steps["checkout"].name == "step:checkout" and s.steps["checkout"].step == "checkout"
    md = (run / "summary.md").read_text()
    assert "### By journey step" in md
    assert f"| `flash_checkout` | {per_step['flash_checkout']} |" in md
    html = (run / "report.html").read_text()
    assert '<table id="steps">' in html and f"<td><code>checkout</code></td><td>{per_step['checkout']}</td>" in html


def test_a_run_without_steps_has_no_step_table(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", [[HEALTH] * 10])
    report = write_reports(run, [parse_threshold("all", "error_ratio < 1%")])
    assert report.summary.steps == {} and report.data.step_totals == {}
    assert report.summary.requests["GET /healthz"].step is None
    assert "By journey step" not in (run / "summary.md").read_text()
    assert 'id="steps"' not in (run / "report.html").read_text()


def test_a_snapshot_row_with_a_bad_step_is_a_listed_problem_and_the_rest_is_read(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", [[HOME] * 4 + [HEALTH] * 3, [HOME] * 5])
    lines = (run / SNAPSHOT_FILE).read_text().splitlines()
    first = json.loads(lines[1])
    assert [r.get("step") for r in first["requests"]] == ["home", None]  # the writer: a step only when there is one
    first["requests"][0]["step"] = "basket"
    second = json.loads(lines[2])
    second["requests"][0]["step"] = 3
    lines[1], lines[2] = json.dumps(first), json.dumps(second)
    (run / SNAPSHOT_FILE).write_text("\n".join(lines) + "\n")
    data = load_results(run)
    assert len(data.problems) == 2, data.problems
    assert "interval 1: GET /api/home step: expected a journey step (sign_in, home" in data.problems[0]
    assert "got 'basket'; row skipped" in data.problems[0]
    assert "interval 2: GET /api/home step: expected a journey step" in data.problems[1] and "got 3; row skipped" in data.problems[1]
    assert data.totals["GET /healthz"].count == 3 and "GET /api/home" not in data.totals and data.step_totals == {}


def test_rows_of_files_written_before_steps_read_as_no_step() -> None:
    old = {"seq": 1, "t_start": 1.0, "t_end": 3.0, "requests": [{"name": "/api/home", "method": "GET", "count": 2, "failures": 0}]}
    problems: list[str] = []
    iv = interval_from(old, problems)
    assert problems == [] and iv.requests[0]["step"] == ""


def _judge(data, *thresholds: Threshold) -> list[tuple[bool | None, str]]:
    return [(r.passed, r.message) for r in evaluate(list(thresholds), data)]


def test_a_step_threshold_is_judged_from_that_steps_rows(tmp_path: Path) -> None:
    data = load_results(_write_run(tmp_path / "run", _mixed(seed=2)))
    step = parse_threshold("step:checkout", "p95 < 100ms")
    route = parse_threshold("POST /api/orders", "p95 < 100ms")  # the same route, both steps
    flash = parse_threshold("step:flash_checkout", "p95 < 100ms")
    (ok, ok_msg), (route_ok, _), (flash_ok, _) = _judge(data, step, route, flash)
    assert ok is True and "within limit" in ok_msg
    assert route_ok is False and flash_ok is False
    assert evaluate([step], data)[0].observed == data.step_totals["checkout"].percentile(95)
    requests = parse_threshold("step:checkout", "requests > 0")
    assert evaluate([requests], data)[0].observed == data.step_totals["checkout"].count


def test_a_step_without_requests_fails_when_the_profile_asked_and_is_skipped_when_an_slo_did(tmp_path: Path) -> None:
    data = load_results(_write_run(tmp_path / "run", [[HOME] * 10]))
    profile = parse_threshold("step:order", "p95 < 1s")
    slo = parse_threshold("step:order", "p95 < 1s", source="slo:orders")
    assert _judge(data, profile, slo) == [(False, "failed: no requests for step 'order'"), (None, "skipped: no requests for step 'order'")]


def test_what_the_platform_does_not_offer_is_skipped_never_judged(tmp_path: Path) -> None:
    # a platform without payment: no pay step, no books of payments
    not_offered = ("pay", "payments_succeeded", "orders_paid", "duplicate_charges")
    sent = [[HOME] * 10 + [FAST_CHECKOUT] * 5]
    offered = load_results(_write_run(tmp_path / "offered", sent))
    lacking = load_results(_write_run(tmp_path / "lacking", sent, not_offered=not_offered))
    thresholds = [
        parse_threshold("step:pay", "p95 < 1s"),  # profile-declared: would fail without requests
        parse_threshold("step:pay", "error_ratio <= 0.05%", source="slo:checkout-availability"),
        parse_threshold("business", "payments_mismatch == 0"),  # needs the pay step and its books
        parse_threshold("business", "payment_success_ratio >= 99%"),  # needs the pay step
        parse_threshold("business", "duplicates == 0"),  # one of its books fields is not offered
    ]
    assert [p for p, _ in _judge(offered, *thresholds)] == [False, None, False, False, False]
    assert _judge(lacking, *thresholds) == [(None, NOT_OFFERED_MESSAGE)] * len(thresholds)
    # what the platform does offer is judged as before
    assert _judge(lacking, parse_threshold("step:checkout", "p95 < 1s"), parse_threshold("business", "orders_per_s >= 0")) == [
        (True, _judge(offered, parse_threshold("step:checkout", "p95 < 1s"))[0][1]),
        (True, _judge(offered, parse_threshold("business", "orders_per_s >= 0"))[0][1]),
    ]


def test_a_run_judged_only_on_what_is_not_offered_is_unjudged_not_passed(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", [[HOME] * 10], not_offered=("pay",))
    report = write_reports(run, [parse_threshold("step:pay", "p95 < 1s"), parse_threshold("business", "payments_mismatch == 0")])
    s = report.summary
    assert (s.status, s.exit_code, s.decided_by) == ("unjudged", 3, "nothing-judged")
    assert [t.message for t in s.thresholds] == [NOT_OFFERED_MESSAGE] * 2
    assert s.not_offered == ["pay"]
    both = write_reports(run, [parse_threshold("step:pay", "p95 < 1s"), parse_threshold("step:home", "p95 < 1s")]).summary
    assert (both.status, both.decided_by) == ("passed", "thresholds-passed")
    assert "1 of 2 thresholds passed; 1 skipped" in str(both.reason)
    # a not-offered step is a row of n/a in the step table, not a measured 0
    assert "| `pay` | n/a | n/a |" in (run / "summary.md").read_text()


def test_a_live_abort_threshold_reads_the_steps_rows(tmp_path: Path) -> None:
    run = _write_run(tmp_path / "run", [[FAST_CHECKOUT] * 5 + [SLOW_FLASH] * 5] * 3)
    data = load_results(run)
    live = LiveGate([parse_threshold("step:flash_checkout", "p95 < 1s", abort=True)])
    calm = LiveGate([parse_threshold("step:checkout", "p95 < 1s", abort=True)])
    assert live.feed(data.intervals[0]) is not None and "step:flash_checkout" in str(live.feed(data.intervals[1]))
    assert [calm.feed(iv) for iv in data.intervals] == [None] * 3
    assert verdict(data, evaluate([parse_threshold("step:checkout", "p95 < 1s")], data))[0] == "passed"


def test_the_schema_names_the_journey_steps() -> None:
    assert SCHEMA["properties"]["steps"]["propertyNames"]["enum"] == list(STEPS)


@pytest.mark.parametrize("bad", ["basket", "step:checkout"])
def test_the_summary_record_refuses_a_step_that_is_not_one(tmp_path: Path, bad: str) -> None:
    run = _write_run(tmp_path / "run", [[HOME] * 3])
    good = write_reports(run, []).summary.to_json()
    broken = {**good, "steps": {bad: good["total"]}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, SCHEMA)
    with pytest.raises(ValueError):
        Summary.model_validate(broken)
