"""`peakload platform|drill|chaos`: the full platform, recovery drills and chaos experiments under load.

Usage::

    code = chaos_under_load("replica-kill", profile=Path("profiles/chaos.yaml"))

The chaos room does the breaking and measuring; this module only adds the
profile's load around an experiment and folds the experiment's events into
that run's report.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from peakload.app.runner import RunOptions, run, thresholds_from_results
from peakload.core import RunInvalid, UsageError
from peakload.core.records import SNAPSHOTS, SnapshotTail
from peakload.core.runenv import new_run_id
from reports.build import Report, write_reports

__all__ = ["platform_url", "chaos_under_load"]


def platform_url(state_dir: Path) -> str:
    """The platform's front door (HAProxy) as a base URL."""
    from chaos.platform.layout import require_platform

    try:
        _, spec = require_platform(state_dir)
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    return f"http://127.0.0.1:{spec.ports.haproxy}"


def chaos_under_load(experiment: str, *, profile: Path, state_dir: Path, results_root: Path, quiet: bool = False) -> tuple[object, Report]:
    """Run ``profile``'s load at the platform, inject ``experiment`` once the load is flowing, report both."""
    from chaos.cli_entry import chaos_run
    from chaos.experiment import experiment_path

    try:
        experiment_path(experiment)
    except FileNotFoundError as exc:
        raise UsageError(f"chaos run: {exc}") from None
    url = platform_url(state_dir)
    run_id = new_run_id()
    run_dir = results_root / run_id
    outcome: dict[str, object] = {}

    def _load() -> None:
        try:
            outcome["report"] = run(RunOptions(profile_path=profile, target=url, run_id=run_id, results_root=results_root, quiet=True))
        except Exception as exc:  # surfaced in the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=_load, name="peakload-load", daemon=True)
    worker.start()
    deadline = time.monotonic() + 120
    tail = SnapshotTail(run_dir / SNAPSHOTS)
    while tail.intervals_seen < 2:  # two intervals of load before the fault
        for _ in tail.poll():
            pass
        if "error" in outcome or not worker.is_alive():
            break
        if time.monotonic() > deadline:
            raise RunInvalid(f"chaos run: the load never started (see {run_dir})")
        time.sleep(0.2)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    if not quiet:
        print(f"load running at {url} (run {run_id}); injecting {experiment}…", flush=True)
    exp = chaos_run(experiment, state_dir=state_dir, results_dir=run_dir)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    # Rebuild the reports: the experiment's events land in the run's report as annotations.
    thresholds, profile_model = thresholds_from_results(run_dir)
    report = write_reports(run_dir, thresholds, tolerances=profile_model.compare if profile_model else None)
    return exp, report
