"""Entry points for the ``peakload`` CLI: plain arguments in, a report object out (nothing printed here).

Usage::

    result = platform_up(".peakload/platform", replicas=3); print(result.summary()); exit(result.exit_code)
    report = drill_backup(); print(report.summary()); exit(report.exit_code)
    report = chaos_run("replica-kill"); print(report.summary()); exit(report.exit_code)

Every returned object has ``summary() -> str``, ``to_dict() -> dict`` and ``exit_code`` (0 = good).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.drill import run_backup_drill, run_corruption_drill
from chaos.drill_report import DrillReport
from chaos.experiment import ExperimentReport, experiment_path, list_experiments, run_experiment, validate_experiment
from chaos.platform import ComponentHealth, DEFAULT_STATE_DIR, down, format_status, status, up

__all__ = [
    "DEFAULT_DRILL_DIR",
    "PlatformResult",
    "ValidationResult",
    "platform_up",
    "platform_down",
    "platform_status",
    "drill_backup",
    "drill_corruption",
    "chaos_run",
    "chaos_validate",
    "chaos_list",
]

DEFAULT_DRILL_DIR = Path(".peakload/drill")


def _results(name: str, results_dir: str | Path | None) -> Path:
    if results_dir is not None:
        return Path(results_dir)
    return Path("results") / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{name}"


@dataclass
class PlatformResult:
    """Outcome of ``platform up|down|status``."""

    action: str
    state_dir: str
    components: list[ComponentHealth] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.error:
            return 1
        if self.action == "down":
            return 0
        return 0 if self.components and all(c.healthy for c in self.components) else 1

    def summary(self) -> str:
        if self.error:
            return f"platform {self.action} failed: {self.error}"
        if self.action == "down":
            return f"platform in {self.state_dir} stopped: {', '.join(self.stopped) or 'nothing was running'}"
        return format_status(self.components)

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "state_dir": self.state_dir, "exit_code": self.exit_code, "error": self.error,
                "components": [c.to_dict() for c in self.components], "stopped": self.stopped}


def platform_up(state_dir: str | Path | None = None, *, replicas: int = 3, base_port: int | None = None,
                rule_files: list[str] | None = None,
                scrape_targets: dict[str, list[str]] | None = None) -> PlatformResult:
    """``peakload platform up``: start (or complete) the platform; the result lists every component's health."""
    sd = Path(state_dir or DEFAULT_STATE_DIR)
    try:
        comps = up(sd, replicas=replicas, base_port=base_port, rule_files=rule_files or (),
                   scrape_targets=scrape_targets)
    except (RuntimeError, TimeoutError, ValueError, PermissionError, FileNotFoundError) as exc:
        return PlatformResult("up", str(sd), status(sd), error=f"{type(exc).__name__}: {exc}")
    return PlatformResult("up", str(sd), comps)


def platform_down(state_dir: str | Path | None = None) -> PlatformResult:
    """``peakload platform down``: stop everything; data dirs stay for the next ``up``."""
    sd = Path(state_dir or DEFAULT_STATE_DIR)
    try:
        return PlatformResult("down", str(sd), stopped=down(sd))
    except RuntimeError as exc:
        return PlatformResult("down", str(sd), error=str(exc))


def platform_status(state_dir: str | Path | None = None) -> PlatformResult:
    """``peakload platform status``: one line per component; exit code 1 when any is unhealthy."""
    sd = Path(state_dir or DEFAULT_STATE_DIR)
    return PlatformResult("status", str(sd), status(sd))


def drill_backup(state_dir: str | Path | None = None, *, results_dir: str | Path | None = None,
                 max_rpo_seconds: float = 10.0, keep_site: bool = False) -> DrillReport:
    """``peakload drill backup``: the 3-2-1 drill on its own small site under ``state_dir`` (.peakload/drill)."""
    sd = Path(state_dir or DEFAULT_DRILL_DIR)
    sd.mkdir(parents=True, exist_ok=True)
    return run_backup_drill(sd, results_dir=_results("drill-backup", results_dir), max_rpo_seconds=max_rpo_seconds,
                            keep_site=keep_site)


def drill_corruption(state_dir: str | Path | None = None, *, repo: int = 1,
                     results_dir: str | Path | None = None) -> DrillReport:
    """``peakload drill corruption``: corrupt one backup file and show verification catching it (exits 1 by design)."""
    sd = Path(state_dir or DEFAULT_DRILL_DIR)
    sd.mkdir(parents=True, exist_ok=True)
    return run_corruption_drill(sd, repo=repo, results_dir=_results("drill-corruption", results_dir))


def chaos_run(experiment: str, *, state_dir: str | Path | None = None,
              results_dir: str | Path | None = None) -> ExperimentReport:
    """``peakload chaos run EXPERIMENT`` (a bundled name like ``replica-kill`` or a path) against a running platform.

    Raises FileNotFoundError for an unknown experiment and RuntimeError when no platform runs in ``state_dir``.
    """
    path = experiment_path(experiment)
    sd = Path(state_dir or DEFAULT_STATE_DIR)
    comps = status(sd)
    if not any(c.healthy for c in comps if c.name == "haproxy"):
        raise RuntimeError(f"no serving platform in {sd} (run `peakload platform up` first):\n{format_status(comps)}")
    return run_experiment(path, state_dir=sd,
                          results_dir=_results(f"chaos-{path.stem}", results_dir))


@dataclass
class ValidationResult:
    """Chaos Toolkit validation of one or more experiment files."""

    problems: dict[str, list[str]]

    @property
    def exit_code(self) -> int:
        return 0 if not any(self.problems.values()) else 1

    def summary(self) -> str:
        return "\n".join(f"{'ok  ' if not p else 'FAIL'} {name}{': ' + '; '.join(p) if p else ''}"
                         for name, p in self.problems.items())

    def to_dict(self) -> dict[str, Any]:
        return {"problems": self.problems, "exit_code": self.exit_code}


def chaos_validate(experiment: str | None = None) -> ValidationResult:
    """``peakload chaos validate [EXPERIMENT]``: validate one experiment, or every bundled one."""
    names = [experiment] if experiment else list_experiments()
    return ValidationResult({n: validate_experiment(n) for n in names})


def chaos_list() -> list[str]:
    """Names of the bundled experiments."""
    return list_experiments()
