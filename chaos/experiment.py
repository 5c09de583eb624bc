"""Run and validate our Chaos Toolkit experiments in-process (rollbacks always run).

Usage::

    report = run_experiment("replica-kill", state_dir=Path(".peakload/platform"), results_dir=Path("results/x"))
    print(report.summary()); raise SystemExit(report.exit_code)
    problems = validate_experiment(EXPERIMENTS_DIR / "replica-kill.json")   # [] when valid

Same as ``chaos run --rollback-strategy=always --var state_dir=... --var results_dir=... FILE``
(with the repo on ``PYTHONPATH``), plus: the journal is written to
``<results>/journal.json`` and the platform's health is checked after the
rollbacks (an experiment that leaves the platform unhealthy fails).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EXPERIMENTS_DIR", "ExperimentReport", "experiment_path", "list_experiments", "run_experiment",
           "validate_experiment"]

EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"


def list_experiments() -> list[str]:
    """Names of the bundled experiments (file stems)."""
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.json")) + sorted(
        p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def experiment_path(name_or_path: str | Path) -> Path:
    """A bundled experiment by name (``replica-kill``) or any experiment file by path."""
    p = Path(name_or_path)
    if p.exists():
        return p
    for ext in (".json", ".yaml", ".yml"):
        candidate = EXPERIMENTS_DIR / f"{name_or_path}{ext}"
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no experiment {name_or_path!r}; bundled ones: {', '.join(list_experiments())}")


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

    @property
    def passed(self) -> bool:
        return self.status == "completed" and not self.deviated and self.platform_healthy_after

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        return d

    def summary(self) -> str:
        from chaos.measure import Measurement

        lines = [f"experiment {self.name}: {'PASSED' if self.passed else 'FAILED'} "
                 f"(chaostoolkit status {self.status}{', deviated' if self.deviated else ''}, {self.duration_s:.0f}s)",
                 f"  steady state before: {self.steady_state_before}, after: {self.steady_state_after}"]
        if self.failed_activities:
            lines.append("  failed activities: " + "; ".join(self.failed_activities))
        if self.measurement:
            lines.append("  " + Measurement(**self.measurement).summary())
        lines.append("  rollbacks: " + (", ".join(f"{r['name']} {r['status']}" for r in self.rollbacks) or "none"))
        lines.append("  platform healthy after rollbacks" if self.platform_healthy_after
                     else "  platform NOT healthy after rollbacks: " + "; ".join(self.unhealthy_after))
        lines.append(f"  results: {self.results_dir}")
        return "\n".join(lines)


def validate_experiment(path: str | Path) -> list[str]:
    """Chaos Toolkit's validation of one file (activities resolved against our modules); [] when valid."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.loader import load_experiment

    try:
        ensure_experiment_is_valid(load_experiment(str(experiment_path(path))))
    except ChaosException as exc:
        return [str(exc)]
    return []


def _activity_failures(journal: dict[str, Any]) -> list[str]:
    out = []
    for run in journal.get("run", []) + journal.get("rollbacks", []):
        if run.get("status") != "succeeded":
            name = run.get("activity", {}).get("name", "?")
            out.append(f"{name}: {run.get('status')} {str(run.get('exception') or '')[-200:].strip()}")
    return out


def run_experiment(name_or_path: str | Path, *, state_dir: Path, results_dir: Path,
                   verbose: bool = False) -> ExperimentReport:
    """Run one experiment against the platform in ``state_dir``; results and journal into ``results_dir``."""
    from chaoslib.experiment import ensure_experiment_is_valid
    from chaoslib.experiment import run_experiment as ctk_run
    from chaoslib.loader import load_experiment

    from chaos.platform.health import status

    path = experiment_path(name_or_path)
    results_dir = Path(results_dir).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    logging.getLogger("chaostoolkit").setLevel(logging.INFO if verbose else logging.WARNING)
    experiment = load_experiment(str(path))
    ensure_experiment_is_valid(experiment)
    t0 = time.monotonic()
    journal = ctk_run(experiment, settings={"runtime": {"rollbacks": {"strategy": "always"}}},
                      experiment_vars=({"state_dir": str(Path(state_dir).resolve()),
                                        "results_dir": str(results_dir)}, {}))
    (results_dir / "journal.json").write_text(json.dumps(journal, indent=2, default=str))
    ss = journal.get("steady_states") or {}
    health = status(Path(state_dir))
    return ExperimentReport(
        name=path.stem, title=experiment.get("title", ""), status=str(journal.get("status")),
        deviated=bool(journal.get("deviated")),
        steady_state_before=(ss.get("before") or {}).get("steady_state_met"),
        steady_state_after=(ss.get("after") or {}).get("steady_state_met"),
        rollbacks=[{"name": r["activity"]["name"], "status": r["status"]} for r in journal.get("rollbacks", [])],
        measurement=journal.get("peakload_measurement"),
        platform_healthy_after=all(c.healthy for c in health),
        unhealthy_after=[f"{c.name}: {c.detail}" for c in health if not c.healthy],
        failed_activities=_activity_failures(journal),
        results_dir=str(results_dir), duration_s=round(time.monotonic() - t0, 1))
