"""run.json and outcome.json are typed records: what the runner writes is what the reports read back."""

from __future__ import annotations

import json

from peakload.core.records import Outcome, RunMeta


def test_records_round_trip_through_json() -> None:
    meta = RunMeta(
        run_id="r-1",
        profile="smoke",
        target="http://127.0.0.1:8080",
        embedded=True,
        seed=7,
        scale=0.5,
        workers=2,
        planned_duration_s=25.0,
        started_ts=1.5,
        ended_ts=30.0,
        thresholds=("all: error_ratio < 1%",),
    )
    outcome = Outcome(aborted="aborted: p99 breached", cpu_warning=True, locust_exit_code=0, reconciliation_url="http://x")
    problems: list[str] = []
    assert RunMeta.from_json(json.loads(json.dumps(meta.to_json())), problems) == meta
    assert Outcome.from_json(json.loads(json.dumps(outcome.to_json())), problems) == outcome
    assert problems == []


def test_wrongly_typed_fields_are_dropped_and_listed() -> None:
    problems: list[str] = []
    meta = RunMeta.from_json({"run_id": 5, "workers": -1, "seed": True, "profile": "p", "extra": {"kept": "out"}}, problems)
    assert meta == RunMeta(profile="p")
    assert sorted(p.split(":")[1].strip() for p in problems) == ["run_id", "seed", "workers"]
    problems.clear()
    outcome = Outcome.from_json({"invalid": ["not", "text"], "cpu_warning": "yes"}, problems)
    assert outcome == Outcome() and len(problems) == 2
    assert RunMeta.from_json(None, problems) is None
