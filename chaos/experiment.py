"""Run and validate our Chaos Toolkit experiments in-process (rollbacks always run).

Usage::

    report = run_experiment("replica-kill", state_dir=Path(".peakload/platform"), results_dir=Path("results/x"))
    print(report.summary()); raise SystemExit(report.exit_code)
    problems = validate_experiment(EXPERIMENTS_DIR / "replica-kill.json")   # [] when valid

Same as ``chaos run --rollback-strategy=always --var state_dir=... --var results_dir=... FILE``
(with the repo on ``PYTHONPATH``), plus: the journal is written to
``<results>/journal.json``, the platform's health is checked after the
rollbacks (an experiment that leaves the platform unhealthy fails), and the
measured RTO/RPO are judged against the budgets the file declares in its
``peakload`` extension (see ``chaos.budgets``): over budget is not passed.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos.budgets import Budgets, budgets_from_experiment, judge
from chaos.errors import ChaosError, ExperimentFileError
from chaos.experiment_file import (
    EXPERIMENTS_DIR,
    experiment_path,
    list_experiments,
    load_experiment_file,
)
from chaos.measure import Measurement

__all__ = [
    "EXPERIMENTS_DIR",
    "ExperimentReport",
    "experiment_path",
    "list_experiments",
    "load_checked",
    "run_experiment",
    "validate_experiment",
]


@dataclass
class ExperimentReport:
    """The outcome of one experiment: Chaos Toolkit's verdict, our measurement, platform health afterwards."""

    name: str
    title: str
    status: str
    deviated: bool
    steady_state_before: bool | None
    steady_state_after: bool | None
    rollbacks: list[dict[str, Any]] = field(default_factory=list)
    measurement: dict[str, Any] | None = None
    platform_healthy_after: bool = False
    unhealthy_after: list[str] = field(default_factory=list)
    failed_activities: list[str] = field(default_factory=list)
    results_dir: str = ""
    duration_s: float = 0.0
    budgets: dict[str, Any] | None = None

    @property
    def budget_failures(self) -> list[str]:
        """Why the measured RTO/RPO break the file's budgets ([] when within them)."""
        if self.budgets is None:
            return ["no RTO/RPO budgets declared: nothing to judge the recovery against"]
        return judge(Budgets(**self.budgets), Measurement(**self.measurement) if self.measurement else None)

    @property
    def passed(self) -> bool:
        return self.status == "completed" and not self.deviated and self.platform_healthy_after and not self.budget_failures

    @property
    def exit_code(self) -> int:
        """0 passed; 3 nothing was measured (like an invalid run: no verdict can be trusted); 1 failed."""
        if self.passed:
            return 0
        return 3 if self.measurement is None else 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        d["budget_failures"] = self.budget_failures
        return d

    def summary(self) -> str:
        over = self.budget_failures
        why = "; ".join(over) + "; " if over else ""
        head = (
            f"experiment {self.name}: {'PASSED' if self.passed else 'FAILED'} "
            f"({why}chaostoolkit status {self.status}{', deviated' if self.deviated else ''}, "
            f"{self.duration_s:.0f}s)"
        )
        lines = [head, f"  steady state before: {self.steady_state_before}, after: {self.steady_state_after}"]
        if self.failed_activities:
            lines.append("  failed activities: " + "; ".join(self.failed_activities))
        if self.measurement:
            lines.append("  " + Measurement(**self.measurement).summary())
        if self.budgets is not None:
            lines.append(f"  budgets {Budgets(**self.budgets).describe()}: " + ("OVER: " + "; ".join(over) if over else "within"))
        lines.append("  rollbacks: " + (", ".join(f"{r['name']} {r['status']}" for r in self.rollbacks) or "none"))
        lines.append(
            "  platform healthy after rollbacks"
            if self.platform_healthy_after
            else "  platform NOT healthy after rollbacks: " + "; ".join(self.unhealthy_after)
        )
        lines.append(f"  results: {self.results_dir}")
        return "\n".join(lines)


def _problems(experiment: dict[str, Any], source: str) -> list[str]:
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    problems = []
    try:
        ensure_experiment_is_valid(experiment)
    except ChaosException as exc:
        problems.append(str(exc))
    except (AttributeError, TypeError, KeyError, ValueError) as exc:  # a JSON object of the wrong shape
        problems.append(f"not an experiment Chaos Toolkit can read ({type(exc).__name__}: {exc})")
    try:
        budgets_from_experiment(experiment, source=source)
    except ChaosError as exc:
        problems.append(str(exc))
    return problems


def validate_experiment(path: str | Path) -> list[str]:
    """Chaos Toolkit's validation of one file (activities resolved against our modules) plus its budgets.

    Returns the problems ([] when valid); raises ExperimentNotFound / ExperimentFileError (exit 2)
    when ``path`` cannot be read as an experiment at all.
    """
    p = experiment_path(path)
    return _problems(load_experiment_file(p), p.name)


def load_checked(name_or_path: str | Path) -> tuple[Path, dict[str, Any], Budgets]:
    """Path, experiment and budgets of a valid experiment; ExperimentFileError naming its first problem otherwise."""
    p = experiment_path(name_or_path)
    experiment = load_experiment_file(p)
    problems = _problems(experiment, p.name)
    if problems:
        raise ExperimentFileError(f"{p}: not a valid experiment: {problems[0]}")
    return p, experiment, budgets_from_experiment(experiment, source=p.name)


def _activity_failures(journal: dict[str, Any]) -> list[str]:
    out = []
    for run in journal.get("run", []) + journal.get("rollbacks", []):
        if run.get("status") != "succeeded":
            name = run.get("activity", {}).get("name", "?")
            out.append(f"{name}: {run.get('status')} {str(run.get('exception') or '')[-200:].strip()}")
    return out


def run_experiment(name_or_path: str | Path, *, state_dir: Path, results_dir: Path, verbose: bool = False) -> ExperimentReport:
    """Run one experiment against the platform in ``state_dir``; results and journal into ``results_dir``.

    The file is checked (Chaos Toolkit validation and budgets) before anything is written.
    """
    from chaoslib.experiment import run_experiment as ctk_run

    from chaos.platform.health import status

    path, experiment, budgets = load_checked(name_or_path)
    results_dir = Path(results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("chaostoolkit").setLevel(logging.INFO if verbose else logging.WARNING)
    t0 = time.monotonic()
    journal = ctk_run(
        experiment,
        settings={"runtime": {"rollbacks": {"strategy": "always"}}},
        experiment_vars=({"state_dir": str(Path(state_dir).resolve()), "results_dir": str(results_dir)}, {}),
    )
    (results_dir / "journal.json").write_text(json.dumps(journal, indent=2, default=str))
    ss = journal.get("steady_states") or {}
    health = status(Path(state_dir))
    return ExperimentReport(
        name=path.stem,
        title=experiment.get("title", ""),
        status=str(journal.get("status")),
        deviated=bool(journal.get("deviated")),
        steady_state_before=(ss.get("before") or {}).get("steady_state_met"),
        steady_state_after=(ss.get("after") or {}).get("steady_state_met"),
        rollbacks=[{"name": r["activity"]["name"], "status": r["status"]} for r in journal.get("rollbacks", [])],
        measurement=journal.get("peakload_measurement"),
        platform_healthy_after=all(c.healthy for c in health),
        unhealthy_after=[f"{c.name}: {c.detail}" for c in health if not c.healthy],
        failed_activities=_activity_failures(journal),
        results_dir=str(results_dir),
        duration_s=round(time.monotonic() - t0, 1),
        budgets=budgets.to_dict(),
    )
