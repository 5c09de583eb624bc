"""Entry points for the ``peakload`` CLI: plain arguments in, a report object out (nothing printed here).

Usage::

    result = platform_up(".peakload/platform", replicas=3); print(result.summary()); exit(result.exit_code)
    report = drill_backup(); print(report.summary()); exit(report.exit_code)
    report = chaos_run("replica-kill"); print(report.summary()); exit(report.exit_code)

Every returned object has ``summary() -> str``, ``to_dict() -> dict`` and ``exit_code`` (0 = good).
Bad input raises a ``chaos.errors.ChaosError`` (a peakload error: one line, exit 2) before
anything is written: an unreadable experiment file, an unknown experiment, a ``--state-dir``
that is a file, no serving platform.

Exit codes: ``chaos validate`` 0 valid, 1 a file Chaos Toolkit or the budgets reject, 2 a file
that is not an experiment at all; ``chaos run`` 0 passed (within its RTO/RPO budgets), 1 not, 3 nothing measured;
``drill backup`` 0 when the restore from the off-site copy alone passed every check (the 3-2-1
policy verdict is printed beside it and only counts with ``require_policy=True``), 1 otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chaos.drill import run_backup_drill, run_corruption_drill
from chaos.drill_report import DrillReport
from chaos.errors import NoPlatform, StateDirError
from chaos.experiment import (
    ExperimentReport,
    list_experiments,
    load_checked,
    run_experiment,
    validate_experiment,
)
from chaos.platform import (
    DEFAULT_STATE_DIR,
    ComponentHealth,
    down,
    format_status,
    status,
    up,
)
from chaos.platform.layout import check_state_dir
from peakload.core import UsageError

__all__ = [
    "DEFAULT_DRILL_DIR",
    "PlatformResult",
    "ValidationResult",
    "platform_up",
    "platform_down",
    "platform_status",
    "drill_backup",
    "drill_corruption",
    "chaos_check",
    "chaos_run",
    "chaos_validate",
    "chaos_list",
]

DEFAULT_DRILL_DIR = Path(".peakload/drill")


def _state_dir(state_dir: str | Path | None, default: Path, *, for_postgres: bool = False) -> Path:
    """The state dir, refused (StateDirError) when it or a parent is a file, or, ``for_postgres`` (where
    PostgreSQL will run from it), when the postgres user cannot reach it."""
    sd = Path(state_dir or default)
    for p in (sd, *sd.absolute().parents):
        if p.exists():
            if not p.is_dir():
                found = "a file" if p == sd else f"{p} is a file"
                raise StateDirError(f"--state-dir {sd}: expected a directory, found {found}")
            break
    try:
        if for_postgres:
            check_state_dir(sd)
    except PermissionError as exc:
        raise StateDirError(f"--state-dir: {exc}") from None
    return sd


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
        return {
            "action": self.action,
            "state_dir": self.state_dir,
            "exit_code": self.exit_code,
            "error": self.error,
            "components": [c.to_dict() for c in self.components],
            "stopped": self.stopped,
        }


def platform_up(
    state_dir: str | Path | None = None,
    *,
    replicas: int = 3,
    base_port: int | None = None,
    rule_files: list[str] | None = None,
    scrape_targets: dict[str, list[str]] | None = None,
) -> PlatformResult:
    """``peakload platform up``: start (or complete) the platform; the result lists every component's health."""
    sd = _state_dir(state_dir, DEFAULT_STATE_DIR, for_postgres=True)
    try:
        comps = up(sd, replicas=replicas, base_port=base_port, rule_files=rule_files or (), scrape_targets=scrape_targets)
    except (RuntimeError, TimeoutError, ValueError, PermissionError, FileNotFoundError) as exc:
        return PlatformResult("up", str(sd), status(sd), error=f"{type(exc).__name__}: {exc}")
    return PlatformResult("up", str(sd), comps)


def platform_down(state_dir: str | Path | None = None) -> PlatformResult:
    """``peakload platform down``: stop everything; data dirs stay for the next ``up``."""
    sd = _state_dir(state_dir, DEFAULT_STATE_DIR)
    try:
        return PlatformResult("down", str(sd), stopped=down(sd))
    except RuntimeError as exc:
        return PlatformResult("down", str(sd), error=str(exc))


def platform_status(state_dir: str | Path | None = None) -> PlatformResult:
    """``peakload platform status``: one line per component; exit code 1 when any is unhealthy."""
    sd = _state_dir(state_dir, DEFAULT_STATE_DIR)
    return PlatformResult("status", str(sd), status(sd))


def drill_backup(
    state_dir: str | Path | None = None,
    *,
    results_dir: str | Path | None = None,
    max_rpo_seconds: float = 10.0,
    keep_site: bool = False,
    require_policy: bool = False,
) -> DrillReport:
    """``peakload drill backup``: the 3-2-1 drill on its own small site under ``state_dir`` (.peakload/drill).

    ``require_policy``: a 3-2-1 policy that is not met (one device, simulated off-site) fails the drill too.
    """
    sd = _state_dir(state_dir, DEFAULT_DRILL_DIR, for_postgres=True)
    sd.mkdir(parents=True, exist_ok=True)
    return run_backup_drill(
        sd,
        results_dir=_results("drill-backup", results_dir),
        max_rpo_seconds=max_rpo_seconds,
        keep_site=keep_site,
        require_policy=require_policy,
    )


def drill_corruption(state_dir: str | Path | None = None, *, repo: int = 1, results_dir: str | Path | None = None) -> DrillReport:
    """``peakload drill corruption``: corrupt one backup file and show verification catching it (exits 1 by design)."""
    if repo not in (1, 2):
        raise UsageError(f"--repo: expected 1 (posix) or 2 (s3), got {repo}")
    sd = _state_dir(state_dir, DEFAULT_DRILL_DIR, for_postgres=True)
    sd.mkdir(parents=True, exist_ok=True)
    return run_corruption_drill(sd, repo=repo, results_dir=_results("drill-corruption", results_dir))


def chaos_check(experiment: str, *, state_dir: str | Path | None = None) -> Path:
    """The experiment's file when it is valid (Chaos Toolkit + budgets) and, given ``state_dir``, a platform
    serves there; ExperimentNotFound / ExperimentFileError / NoPlatform (exit 2) otherwise."""
    path = load_checked(experiment)[0]
    if state_dir is not None:
        sd = _state_dir(state_dir, DEFAULT_STATE_DIR)
        comps = status(sd)
        if not any(c.healthy for c in comps if c.name == "haproxy"):
            bad = "; ".join(f"{c.name}: {c.detail}" for c in comps if not c.healthy)
            raise NoPlatform(f"no serving platform in {sd} (run `peakload platform up` first): {bad}")
    return path


def chaos_run(experiment: str, *, state_dir: str | Path | None = None, results_dir: str | Path | None = None) -> ExperimentReport:
    """``peakload chaos run EXPERIMENT`` (a bundled name like ``replica-kill`` or a path) against a running platform.

    Raises ExperimentNotFound / ExperimentFileError for a bad experiment and NoPlatform when no platform
    serves in ``state_dir`` (all exit 2, before anything is written).
    """
    sd = _state_dir(state_dir, DEFAULT_STATE_DIR)
    path = chaos_check(experiment, state_dir=sd)
    return run_experiment(path, state_dir=sd, results_dir=_results(f"chaos-{path.stem}", results_dir))


@dataclass
class ValidationResult:
    """Chaos Toolkit validation of one or more experiment files."""

    problems: dict[str, list[str]]

    @property
    def exit_code(self) -> int:
        return 0 if not any(self.problems.values()) else 1

    def summary(self) -> str:
        return "\n".join(f"{'ok  ' if not p else 'FAIL'} {name}{': ' + '; '.join(p) if p else ''}" for name, p in self.problems.items())

    def to_dict(self) -> dict[str, Any]:
        return {"problems": self.problems, "exit_code": self.exit_code}


def chaos_validate(experiment: str | None = None) -> ValidationResult:
    """``peakload chaos validate [EXPERIMENT]``: validate one experiment, or every bundled one.

    Raises ExperimentNotFound / ExperimentFileError (exit 2) for a file that is not an experiment at all.
    """
    names = [experiment] if experiment else list_experiments()
    return ValidationResult({n: validate_experiment(n) for n in names})


def chaos_list() -> list[str]:
    """Names of the bundled experiments."""
    return list_experiments()
