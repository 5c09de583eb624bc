"""RTO/RPO budgets: every experiment declares them, and an experiment over budget does not pass.

The measurements are computed by the real ``measure()``/``compute_rpo()`` from recorded
probe samples and canary acknowledgements; nothing of ours is replaced.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.budgets import Budgets, budgets_from_experiment, judge
from chaos.canary import Ack, compute_rpo
from chaos.errors import ExperimentFileError
from chaos.experiment import (
    EXPERIMENTS_DIR,
    ExperimentReport,
    list_experiments,
    validate_experiment,
)
from chaos.measure import Measurement, measure
from chaos.prober import Sample

# The budgets the bundled files promise; a change to one is a change of what "passed" means.
EXPECTED_BUDGETS = {
    "replica-kill": Budgets(rto_seconds=5, rpo_lost=0),
    "db-failover": Budgets(rto_seconds=15, rpo_lost=5, rpo_seconds=1),
    "cache-loss": Budgets(rto_seconds=5, rpo_lost=0),
    "network-db": Budgets(rto_seconds=18, rpo_lost=0),
    "payment-provider": Budgets(rto_seconds=5, rpo_lost=0),
}


def _outage(bad_from: float, bad_to: float, *, end: float = 12.0, rate: float = 20.0) -> list[Sample]:
    """Probe samples at ``rate``/s: 503s between ``bad_from`` and ``bad_to`` s, 200s in 20 ms elsewhere."""
    out = []
    for i in range(int(end * rate)):
        rel = i / rate
        bad = bad_from <= rel < bad_to
        out.append(Sample(1000.0 + rel, "/p", 503 if bad else 200, 0.01 if bad else 0.02, not bad, "HTTP 503" if bad else ""))
    return out


def _acks(n: int) -> list[Ack]:
    return [Ack(i, f"o{i}", 1000.0 + i * 0.2) for i in range(1, n + 1)]


def _measured(bad_from: float, bad_to: float, *, lost: int = 0) -> Measurement:
    m = measure(_outage(bad_from, bad_to), fault_start=1002.0)
    acks = _acks(20)
    m.rpo = compute_rpo(acks, present={a.id for a in acks[: len(acks) - lost]}).to_dict()
    return m


def _report(m: Measurement | None, budgets: Budgets | None) -> ExperimentReport:
    return ExperimentReport(
        name="planted",
        title="t",
        status="completed",
        deviated=False,
        steady_state_before=True,
        steady_state_after=True,
        measurement=m.to_dict() if m else None,
        platform_healthy_after=True,
        budgets=budgets.to_dict() if budgets else None,
    )


@pytest.mark.parametrize("name", sorted(EXPECTED_BUDGETS))
def test_every_bundled_experiment_declares_its_budgets(name: str) -> None:
    experiment = json.loads((EXPERIMENTS_DIR / f"{name}.json").read_text())
    assert budgets_from_experiment(experiment) == EXPECTED_BUDGETS[name]
    assert validate_experiment(name) == []


def test_all_bundled_experiments_are_budgeted() -> None:
    assert set(list_experiments()) == set(EXPECTED_BUDGETS)


def test_within_budget_passes_and_says_so() -> None:
    m = _measured(3.0, 5.0)  # 2 s outage from 1 s after the fault: RTO 3 s
    assert m.rto_seconds == 3.0
    report = _report(m, Budgets(rto_seconds=5, rpo_lost=0))
    assert report.passed and report.budget_failures == []
    assert "budgets RTO <= 5s, RPO <= 0 lost commits: within" in report.summary()


def test_rto_over_budget_fails_and_names_it() -> None:
    report = _report(_measured(3.0, 5.0), Budgets(rto_seconds=2, rpo_lost=0))
    assert not report.passed and report.exit_code == 1
    assert report.budget_failures == ["RTO 3.00s over budget 2s"]
    assert report.summary().startswith("experiment planted: FAILED (RTO 3.00s over budget 2s; ")


def test_not_recovered_while_observed_is_over_any_rto_budget() -> None:
    report = _report(_measured(3.0, 99.0), Budgets(rto_seconds=1000, rpo_lost=0))
    assert not report.passed
    assert report.budget_failures == ["RTO over budget: not back to SLO while observed (budget 1000s)"]


def test_lost_acknowledged_commits_over_budget_fail() -> None:
    m = _measured(3.0, 5.0, lost=3)
    assert m.rpo is not None and m.rpo["lost"] == 3 and m.rpo["rpo_seconds"] == 0.6
    assert _report(m, Budgets(rto_seconds=5, rpo_lost=3)).passed
    over_count = _report(m, Budgets(rto_seconds=5, rpo_lost=2))
    assert not over_count.passed and over_count.budget_failures == ["RPO 3 of 20 acknowledged commits lost, budget 2"]
    over_span = _report(m, Budgets(rto_seconds=5, rpo_lost=3, rpo_seconds=0.5))
    assert over_span.budget_failures == ["RPO 0.6s of acknowledged writes lost, budget 0.5s"]
    assert "RPO 0.6s of acknowledged writes lost" in over_span.summary().splitlines()[0]


def test_a_budget_that_cannot_be_checked_is_not_passed() -> None:
    m = _measured(3.0, 5.0)
    m.rpo = None  # the canary got nothing acknowledged
    assert judge(Budgets(rto_seconds=5, rpo_lost=0), m) == ["RPO unchecked: the canary got no order acknowledged"]
    unmeasured = _report(None, Budgets(rto_seconds=5, rpo_lost=0))  # the control never reported
    assert not unmeasured.passed and unmeasured.exit_code == 3  # no verdict to trust, like an invalid run
    assert not _report(_measured(3.0, 5.0), None).passed  # nothing declared to judge against
    assert "no RTO/RPO budgets declared" in _report(_measured(3.0, 5.0), None).summary()


@pytest.mark.parametrize(
    ("budgets", "message"),
    [
        (None, "extensions[name=peakload]: missing"),
        ({"rpo_lost": 0}, "budgets.rto_seconds: missing"),
        ({"rto_seconds": "5s", "rpo_lost": 0}, "budgets.rto_seconds: expected a number of seconds >= 0, got '5s'"),
        ({"rto_seconds": 5, "rpo_lost": 0.5}, "budgets.rpo_lost: expected a whole number >= 0, got 0.5"),
        ({"rto_seconds": -1, "rpo_lost": 0}, "budgets.rto_seconds: expected a number of seconds >= 0, got -1"),
        ({"rto_seconds": 5, "rpo_lost": 0, "rto": 3}, "unknown field 'rto'"),
    ],
)
def test_malformed_budgets_are_named_by_file_and_field(tmp_path: Path, budgets: dict | None, message: str) -> None:
    experiment = json.loads((EXPERIMENTS_DIR / "replica-kill.json").read_text())
    experiment["extensions"] = [] if budgets is None else [{"name": "peakload", "budgets": budgets}]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(experiment))
    with pytest.raises(ExperimentFileError, match="mine.json: extensions"):
        budgets_from_experiment(experiment, source="mine.json")
    (problem,) = validate_experiment(path)
    assert problem.startswith("mine.json: extensions[name=peakload]") and message in problem
