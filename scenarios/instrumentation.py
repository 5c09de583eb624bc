"""Locust plugin: request events → exporters (metrics, /metrics endpoint, snapshots).

Usage (one import in any locustfile; ``locustfile.py`` already does it)::

    import scenarios.instrumentation  # noqa: F401
    from scenarios.instrumentation import record_business

    class Shopper(FastHttpUser):
        @task
        def checkout(self):
            ...
            record_business(self.environment, "orders")

Configuration comes from the environment (contracts §3): ``PEAKLOAD_PROFILE``
(bucket edges from its SLO spec; run_info's profile), ``PEAKLOAD_RUN_ID``,
``PEAKLOAD_METRICS_PORT`` (>0: serve /metrics on 127.0.0.1 from the master or
local runner; ``PEAKLOAD_METRICS_HOST`` binds another address, e.g. ``0.0.0.0``
in a Kubernetes pod that Prometheus scrapes), ``PEAKLOAD_RESULTS_DIR`` (write ``snapshots.jsonl`` there) and
``PEAKLOAD_SNAPSHOT_INTERVAL`` (seconds, default 2).

This module is the entry point: on ``events.init`` it installs one class,
chosen by runner type as in Locust's ``examples/custom_messages.py``:

- ``WorkerRunner`` → :class:`scenarios.bridge.WorkerBridge`: records, pushes
  per-interval deltas to the master (custom message ``peakload_delta``);
- ``MasterRunner`` → :class:`scenarios.aggregator.MasterAggregator`: merges the
  workers' deltas exactly, serves /metrics, writes the snapshot stream;
- ``LocalRunner`` → :class:`scenarios.aggregator.Aggregator`: records and
  exports itself;
- no runner (``run_single_user``, library use) →
  :class:`scenarios.bridge.Instrumentation`: records only.

Open-model users may pass their service time in the request context as
``context={"peakload_service_ms": ms}`` (then ``response_time`` is the
intended-start latency); it lands in ``service_hdr``. A request's journey step
rides the same way, ``context={STEP_KEY: "checkout"}`` (:mod:`peakload.core.steps`):
it becomes the series' ``step`` (label, snapshot rows); none = ``""``.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner

from exporters.settings import ExporterSettings
from exporters.stats import BUSINESS_KEYS
from peakload.core.records import PROFILE_COPY, RUN_JSON, SLO_COPY, RunMeta
from peakload.core.runenv import ensure_run_id
from scenarios.aggregator import Aggregator, MasterAggregator
from scenarios.bridge import DELTA_MESSAGE, SERVICE_TIME_KEY, Instrumentation, WorkerBridge, logger
from scenarios.settings import RunSettings, get_settings

__all__ = [
    "Instrumentation",
    "WorkerBridge",
    "Aggregator",
    "MasterAggregator",
    "settings_from_run",
    "install",
    "instrumentation_of",
    "record_business",
    "record_arrivals",
    "set_target_rate",
    "set_end_reason",
    "resolve_run_id",
    "SERVICE_TIME_KEY",
    "DELTA_MESSAGE",
]

_ATTR = "peakload_instrumentation"


def resolve_run_id() -> str:
    """``PEAKLOAD_RUN_ID``, or a new id stored back into ``os.environ`` (before ``--processes`` forks)."""
    return ensure_run_id()


def settings_from_run(run: RunSettings | None = None) -> ExporterSettings:
    """Exporter settings from the process's run settings (contracts §3; ``scenarios.settings``)."""
    run = get_settings() if run is None else run
    return ExporterSettings.from_profile(
        run.profile,
        run_id=run.run_id,
        metrics_port=run.metrics_port,
        results_dir=run.results_dir,
        snapshot_interval=run.snapshot_interval,
    )


def _class_for(runner: Runner | None) -> type[Instrumentation]:
    if isinstance(runner, WorkerRunner):
        return WorkerBridge
    if isinstance(runner, MasterRunner):
        return MasterAggregator
    if runner is None:
        return Instrumentation
    return Aggregator  # LocalRunner


# ---------------------------------------------------------------- public hooks


def install(environment: Environment, *, settings: ExporterSettings | None = None) -> Instrumentation:
    """Attach the instrumentation for this runner's role (idempotent); the init listener calls this.

    Call it yourself only when you build an ``Environment`` by hand, after
    creating its runner.
    """
    existing = getattr(environment, _ATTR, None)
    if existing is not None:
        return existing
    inst = _class_for(environment.runner)(environment, settings=settings or settings_from_run())
    setattr(environment, _ATTR, inst)
    inst.start()
    return inst


def instrumentation_of(environment: Environment) -> Instrumentation | None:
    """The instrumentation attached to ``environment`` (None before ``events.init``)."""
    return getattr(environment, _ATTR, None)


def record_business(environment: Environment, key: str, n: int = 1) -> None:
    """Count a business outcome (contracts §6); ``key`` is one of the snapshot ``business`` keys.

    Usage: ``record_business(self.environment, "payments_success")``
    """
    inst = instrumentation_of(environment)
    if inst is not None:
        inst.store.add_business(key, n)
    elif key not in BUSINESS_KEYS:
        raise ValueError(f"unknown business key {key!r}; expected one of {list(BUSINESS_KEYS)}")


def record_arrivals(environment: Environment, *, scheduled: int = 0, dropped: int = 0) -> None:
    """Count open-model arrivals: ``scheduled`` journeys and those ``dropped`` (no free user)."""
    inst = instrumentation_of(environment)
    if inst is not None:
        inst.store.add_arrivals(scheduled=scheduled, dropped=dropped)


def set_target_rate(environment: Environment, rate: float | None) -> None:
    """Set the ``peakload_target_arrivals_per_second`` gauge (call where the shape runs: master/local)."""
    inst = instrumentation_of(environment)
    if inst is not None:
        inst.store.target_rate = rate


def set_end_reason(environment: Environment, reason: str) -> None:
    """Reason for the snapshot end line (``"aborted"`` from a gate, ...); default ``completed``.

    Only a master or local runner writes an end line; elsewhere this does nothing.
    """
    inst = instrumentation_of(environment)
    if isinstance(inst, Aggregator):
        inst.end_reason = reason


# One run id for this process and for the workers it forks (--processes).
resolve_run_id()


# ---------------------------------------------------------------- plain `locust -f`: a complete results folder

RESULTS_OFF = ("none", "off")  # PEAKLOAD_RESULTS_DIR=none: a plain Locust run writes no results folder


def _plain_locust_folder(environment: Environment) -> Path | None:
    """A Locust CLI run that ``peakload run`` did not start writes ``results/<run-id>/`` itself.

    ``PEAKLOAD_RESULTS_DIR`` names another folder (``none`` = no folder). The
    folder gets what ``peakload run`` would put there before the load: run.json
    (``launched_by: locust``), the profile and SLO copies when ``PEAKLOAD_PROFILE``
    names one (without, the folder says "no profile" and is not judged), and the
    user's locustfiles. Returns the folder when this process owns it.
    """
    if getattr(environment, "parsed_options", None) is None or isinstance(environment.runner, WorkerRunner):
        return None  # a runner built in code (tests, library use), or a worker: the master writes
    raw = os.environ.get("PEAKLOAD_RESULTS_DIR", "").strip()
    if raw.lower() in RESULTS_OFF:
        os.environ.pop("PEAKLOAD_RESULTS_DIR")
        get_settings.cache_clear()
        return None
    folder = Path(raw) if raw else Path("results") / resolve_run_id()
    if (folder / RUN_JSON).exists():
        return None  # peakload run made the folder and writes run.json itself
    if not raw:
        os.environ["PEAKLOAD_RESULTS_DIR"] = str(folder)
        get_settings.cache_clear()  # the snapshot writer and the arrivals' event log read it from here on
    settings = get_settings()
    folder.mkdir(parents=True, exist_ok=True)
    given = os.environ.get("PEAKLOAD_PROFILE", "").strip()
    if given:
        shutil.copyfile(given, folder / PROFILE_COPY)
        slo = settings.profile.slo_path()
        if slo is not None and slo.is_file():
            shutil.copyfile(slo, folder / SLO_COPY)
    opts = environment.parsed_options
    own = [f for f in (getattr(opts, "locustfile", "") or "").split(",") if f and Path(f).is_file()]
    own = [f for f in own if Path(f).resolve() != Path(__file__).resolve().with_name("plugin.py")]
    if own:
        (folder / "locustfile").mkdir(exist_ok=True)
        for f in own:
            shutil.copyfile(f, folder / "locustfile" / Path(f).name)
    run_time = float(getattr(opts, "run_time", 0) or 0) or None
    planned = min(x for x in (settings.profile.total_seconds, settings.duration, run_time) if x is not None)
    meta = RunMeta(
        run_id=settings.run_id,
        profile=settings.profile.name if given else None,
        profile_path=given or None,
        target=environment.host,
        embedded=False,
        seed=settings.seed,
        scale=settings.scale,
        workers=int(getattr(opts, "expect_workers", 0) or 0) if isinstance(environment.runner, MasterRunner) else 0,
        planned_duration_s=planned,
        started_ts=time.time(),
        dialect=settings.profile.target.dialect,
        locustfile=",".join(own) or None,
        user_classes=tuple(getattr(opts, "user_classes", None) or ()),
        launched_by="locust",
        shard=settings.shard.to_json() if settings.shard is not None else None,
        start_at=settings.start_at,
        arrivals_plan=_arrivals_plan(settings),
    )
    _write_json(folder / RUN_JSON, meta.to_json())

    def on_quit(**_kw: Any) -> None:  # after the snapshot writer's own quit listener (registered first)
        _write_json(folder / RUN_JSON, replace(meta, ended_ts=time.time()).to_json())
        # stderr: Locust's --json writes its stats to stdout
        print(f"peakload: results in {folder}/  (peakload report {folder}; peakload gate {folder})", file=sys.stderr, flush=True)

    environment.events.quit.add_listener(on_quit)
    return folder


def _arrivals_plan(settings: RunSettings) -> dict[str, Any] | None:
    """The open model's global arrivals and this shard's share, as ``peakload run`` records them (None: closed model)."""
    from scenarios.schedule import RateCurve, arrivals_plan

    spec = settings.profile.arrivals
    if spec is None or spec.replay is not None:  # a replay's count needs its whole log read: the arrivals start event has it
        return None
    index, of = (settings.shard.index, settings.shard.of) if settings.shard is not None else (0, 1)
    curve = RateCurve.from_spec(spec, scale=settings.scale, duration=settings.duration)
    return arrivals_plan(curve, kind=spec.kind, slot=index, of=of).to_json()


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


@events.init.add_listener
def _on_locust_init(environment: Environment, **_kw: Any) -> None:
    folder = _plain_locust_folder(environment)
    install(environment)
    if folder is not None:
        logger.info("peakload: writing the results folder %s/", folder)
