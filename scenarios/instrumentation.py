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

Roles: a worker records into its store and, while the test runs, pushes
``store.drain_delta()`` to the master at every wall-clock multiple of the
snapshot interval (custom message ``peakload_delta``); whatever is left when it
stops rides in Locust's final report (``data["peakload"]`` via
``report_to_master``). The master merges the deltas, so its /metrics and
snapshots are the exact sum over workers (counts and buckets added,
HdrHistograms added — never averaged), and it writes its lines half an interval
after each push boundary so every line holds one push per worker (Locust's own
3 s report cadence would make 2 s lines alternate between empty and double). A
local runner records and exports itself.

/metrics is served by gevent's ``pywsgi.WSGIServer`` running prometheus-client's
WSGI app: Locust's hub is gevent already, each scrape runs in a greenlet, the
server stops cleanly, and nothing relies on monkey-patched ``threading`` as
``start_http_server`` would. It stays up until Locust's ``quit`` event, so a
last scrape after the final merge still works; the snapshot end line is written
then too (reason ``completed``, ``interrupted`` on SIGTERM/Ctrl-C, or what
:func:`set_end_reason` set).

Open-model users may pass their service time in the request context as
``context={"peakload_service_ms": ms}`` (then ``response_time`` is the
intended-start latency); it lands in ``service_hdr``.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from typing import Any

import gevent
from gevent.pywsgi import WSGIServer
from locust import __version__ as locust_version
from locust import events
from locust.env import Environment
from locust.runners import STATE_RUNNING, STATE_SPAWNING, MasterRunner, WorkerRunner
from prometheus_client.registry import CollectorRegistry

from exporters.classify import classify_error
from exporters.histogram import HDR_HIGHEST_US, HDR_LOWEST_US, HDR_SIGNIFICANT_FIGURES
from exporters.prometheus import PeakloadCollector, metrics_app
from exporters.settings import ExporterSettings
from exporters.stats import BUSINESS_KEYS, StatsStore
from peakload.core import ConfigError
from peakload.core.runenv import RunEnv, ensure_run_id
from peakload.core.snapshots import SNAPSHOT_FILE, SnapshotWriter
from scenarios.settings import RunSettings, get_settings

__all__ = [
    "Instrumentation",
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

logger = logging.getLogger(__name__)

SERVICE_TIME_KEY = "peakload_service_ms"
DELTA_MESSAGE = "peakload_delta"  # worker → master custom message
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


class Instrumentation:
    """Per-environment bridge: owns the store, the /metrics server and the snapshot writer."""

    def __init__(self, environment: Environment, *, settings: ExporterSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.store = StatsStore(edges=settings.edges)
        self._record = self.store.record  # bound once: saves two lookups per request
        runner = environment.runner
        if isinstance(runner, WorkerRunner):
            self.role = "worker"
        elif isinstance(runner, MasterRunner):
            self.role = "master"
        elif runner is None:
            self.role = "none"  # run_single_user / library use without a runner
        else:
            self.role = "local"
        self.registry: CollectorRegistry | None = None
        self.server: WSGIServer | None = None
        self.writer: SnapshotWriter | None = None
        self.end_reason: str | None = None
        self.merge_errors = 0
        self._loop: gevent.Greenlet | None = None  # master/local: snapshot lines; worker: delta pushes
        self._t_last: float | None = None

    # ------------------------------------------------------------ wiring

    def start(self) -> None:
        """Attach listeners for this role; start /metrics and the snapshot file on master/local."""
        ev = self.environment.events
        ev.request.add_listener(self.on_request)
        if self.role == "worker":
            ev.test_start.add_listener(self.on_worker_test_start)
            ev.test_stop.add_listener(self.on_worker_test_stop)
            ev.report_to_master.add_listener(self.on_report_to_master)
            return
        if self.role == "master":
            ev.worker_report.add_listener(self.on_worker_report)
            self.environment.runner.register_message(DELTA_MESSAGE, self.on_delta_message)  # type: ignore[union-attr]
        if self.role in ("master", "local"):
            ev.test_start.add_listener(self.on_test_start)
            ev.test_stop.add_listener(self.on_test_stop)
            ev.quitting.add_listener(self.on_quitting)
            ev.quit.add_listener(self.on_quit)
            gevent.signal_handler(signal.SIGTERM, self._on_sigterm)
            if self.settings.metrics_port > 0:
                self._start_server()
            if self.settings.results_dir is not None:
                self.writer = SnapshotWriter(self.settings.results_dir / SNAPSHOT_FILE, header=self._header())

    def _on_sigterm(self) -> None:
        """Stop a shape-driven headless run gracefully on SIGTERM.

        Locust 2.47 installs its own SIGTERM handler only after a headless
        shape run has finished (main.py joins the shape greenlet first), so
        without this a SIGTERM kills the process outright: no end line, no
        final interval. Killing the shape greenlet takes Locust's normal
        "shape completed" path: users stop within --stop-timeout, quit fires.
        """
        runner = self.environment.runner
        shape = getattr(runner, "shape_greenlet", None)
        if shape is not None and not shape.dead:
            logger.info("peakload: SIGTERM: stopping the run gracefully")
            if self.end_reason is None:
                self.end_reason = "interrupted"
            shape.kill(block=False)

    def _start_server(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(PeakloadCollector(self.store, run_id=self.settings.run_id, profile=self.settings.profile_name))
        inner = metrics_app(self.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            self._refresh_gauges()  # users/workers as of this scrape
            return inner(environ, start_response)

        port = self.settings.metrics_port
        host = RunEnv.from_environ(os.environ).metrics_host or "127.0.0.1"  # loopback unless asked (a pod)
        self.server = WSGIServer((host, port), app, log=None, error_log=logger)
        try:
            self.server.start()
        except OSError as exc:
            self.server = None
            raise ConfigError(f"PEAKLOAD_METRICS_PORT={port}: cannot listen on {host}:{port}: {exc.strerror}") from None
        logger.info("peakload: serving /metrics on http://%s:%d/metrics", host, port)

    def _header(self) -> dict[str, Any]:
        return {
            "run_id": self.settings.run_id,
            "profile": self.settings.profile_name,
            "role": self.role,
            "created": time.time(),
            "interval_s": self.settings.snapshot_interval,
            "latency_basis": self.settings.latency_basis,
            "bucket_edges": list(self.settings.edges),
            "hdr": {"unit": "us", "lowest": HDR_LOWEST_US, "highest": HDR_HIGHEST_US, "digits": HDR_SIGNIFICANT_FIGURES},
            "host": self.environment.host,
            "locust": locust_version,
        }

    # ------------------------------------------------------------ hot path

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float,
        response_length: int,
        response: Any = None,
        context: dict[str, Any] | None = None,
        exception: Any = None,
        start_time: float | None = None,
        url: str | None = None,
        **_kwargs: Any,
    ) -> None:
        """``events.request``: milliseconds → seconds here, once; then ``store.record``."""
        status = getattr(response, "status_code", None)
        if exception is None and not context:  # the common case, kept short
            self._record(name, request_type, response_time / 1000.0, status)
            return
        error_type = None if exception is None else classify_error(status, exception)
        service = context.get(SERVICE_TIME_KEY) if context else None
        self._record(name, request_type, response_time / 1000.0, status, error_type, None if service is None else service / 1000.0)

    # ------------------------------------------------------------ worker → master

    def on_worker_test_start(self, environment: Environment, **_kw: Any) -> None:
        if self._loop is None or self._loop.dead:
            self._loop = gevent.spawn(self._push_loop)

    def on_worker_test_stop(self, environment: Environment, **_kw: Any) -> None:
        self._stop_loop()

    def _push_loop(self) -> None:
        """Ship a delta at every wall-clock multiple of the interval (the master writes between them)."""
        interval = self.settings.snapshot_interval
        while True:
            boundary = _next_boundary(time.time(), interval)
            gevent.sleep(max(0.0, boundary - time.time()))
            delta = self.store.drain_delta()
            try:
                self.environment.runner.send_message(DELTA_MESSAGE, {"delta": delta, "t_end": boundary})  # type: ignore[union-attr]
            except Exception as exc:  # RPCError and friends: keep the numbers for the next report
                logger.warning("peakload: could not send metrics delta to the master (%s); keeping it for the next report", exc)
                self.store.merge_delta(delta)

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        """Worker: Locust's periodic/final report carries what the push loop has not sent.

        While the push loop runs it owns the cadence (so master intervals hold
        one push each); once the test stopped — the final report on quit — the
        remainder goes here. A delta, never cumulative.
        """
        if self._loop is None or self._loop.dead:
            data["peakload"] = self.store.drain_delta()

    def on_delta_message(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        """Master: a worker's aligned push."""
        self._merge(msg.node_id, (msg.data or {}).get("delta"))

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        """Master: a worker's report (its final remainder)."""
        self._merge(client_id, data.get("peakload"))

    def _merge(self, client_id: str, delta: Any) -> None:
        if delta is None:
            return
        try:
            self.store.merge_delta(delta)
        except (ValueError, KeyError, TypeError) as exc:
            # a worker with another profile/version: refuse its numbers loudly rather than mix them
            self.merge_errors += 1
            logger.error("peakload: dropped metrics from worker %s: %s", client_id, exc)

    # ------------------------------------------------------------ master/local lifecycle

    def on_test_start(self, environment: Environment, **_kw: Any) -> None:
        now = time.time()
        if self._t_last is not None:  # a previous test in this process (web UI): its leftovers first
            self._write_interval(t_end=now, only_if_data=True)
        self._t_last = now
        if self.writer is not None and (self._loop is None or self._loop.dead):
            self._loop = gevent.spawn(self._snapshot_loop)

    def on_test_stop(self, environment: Environment, **_kw: Any) -> None:
        self._stop_loop()
        if self.role == "local":
            self._write_interval(t_end=time.time())  # the last, partial interval
        # master: the workers' last numbers arrive after test_stop; on_quitting writes them

    def on_quitting(self, environment: Environment, **_kw: Any) -> None:
        """Locust is shutting down: note why, and flush what arrived since test_stop.

        The master merges the workers' last reports after its own test_stop;
        on SIGTERM/Ctrl-C users may still run here. The end line waits for
        ``quit`` so requests finished during Locust's own shutdown still count.
        """
        if self.end_reason is None:
            state = getattr(environment.runner, "state", None)
            self.end_reason = "interrupted" if state in (STATE_RUNNING, STATE_SPAWNING) else "completed"
        self._stop_loop()
        self._write_interval(t_end=time.time(), only_if_data=True)

    def on_quit(self, exit_code: int = 0, **_kw: Any) -> None:
        """Last event of the process: final flush, end line, stop /metrics."""
        self.close()

    def close(self, *, reason: str | None = None) -> None:
        """Write what is left and the end line, stop serving /metrics (idempotent).

        Locust calls this through the ``quit`` event; call it yourself when you
        drive a runner from code and never fire ``quit``.
        """
        self._stop_loop()
        if self.writer is not None and not self.writer.closed:
            self._write_interval(t_end=time.time(), only_if_data=True)
            final = reason or self.end_reason or "completed"
            self.writer.close(reason=final, merge_errors=self.merge_errors, cpu_warning=self._cpu_warning())
        if self.server is not None:
            self.server.stop(timeout=1)
            self.server = None

    def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=True)
            self._loop = None

    # ------------------------------------------------------------ snapshots

    def _snapshot_loop(self) -> None:
        """One line per wall-clock interval ``[(k-1)I, kI]``.

        A local runner writes at ``kI``. The master writes at ``kI + I/2``:
        workers push at ``kI``, so each line holds exactly one push per worker
        unless a push is more than half an interval late (then it lands in the
        next line — sums stay exact).
        """
        interval = self.settings.snapshot_interval
        lag = interval / 2 if self.role == "master" else 0.0
        while True:
            boundary = _next_boundary(max(time.time() - lag, self._t_last or 0.0), interval)
            gevent.sleep(max(0.0, boundary + lag - time.time()))
            self._write_interval(t_end=boundary)

    def _write_interval(self, *, t_end: float, only_if_data: bool = False) -> None:
        if self.writer is None or self.writer.closed:
            return
        delta = self.store.drain_delta()
        if only_if_data and not _has_data(delta):
            return
        t_start = self._t_last if self._t_last is not None else t_end
        t_end = max(t_end, t_start)
        self._t_last = t_end
        self._refresh_gauges()
        self.writer.write_interval(
            delta,
            t_start=t_start,
            t_end=t_end,
            users=self.store.users,
            workers=self.store.workers,
            target_rate=self.store.target_rate,
            cpu_warning=self._cpu_warning(),
        )

    def _refresh_gauges(self) -> None:
        runner = self.environment.runner
        if runner is None:
            return
        self.store.users = runner.user_count
        self.store.workers = runner.worker_count if isinstance(runner, MasterRunner) else 1

    def _cpu_warning(self) -> bool:
        runner = self.environment.runner
        if runner is None:
            return False
        return bool(runner.cpu_warning_emitted or getattr(runner, "worker_cpu_warning_emitted", False))


def _next_boundary(now: float, interval: float) -> float:
    """The next wall-clock multiple of ``interval`` strictly after ``now`` (shared by all processes)."""
    return (math.floor(now / interval) + 1) * interval


def _has_data(delta: dict[str, Any]) -> bool:
    return bool(delta["requests"]) or any(delta["business"].values()) or any(delta["arrivals"].values())


# ---------------------------------------------------------------- public hooks


def install(environment: Environment, *, settings: ExporterSettings | None = None) -> Instrumentation:
    """Attach the bridge to an environment (idempotent); the init listener calls this.

    Call it yourself only when you build an ``Environment`` by hand, after
    creating its runner.
    """
    existing = getattr(environment, _ATTR, None)
    if existing is not None:
        return existing
    inst = Instrumentation(environment, settings=settings or settings_from_run())
    setattr(environment, _ATTR, inst)
    inst.start()
    return inst


def instrumentation_of(environment: Environment) -> Instrumentation | None:
    """The bridge attached to ``environment`` (None before ``events.init``)."""
    return getattr(environment, _ATTR, None)


def record_business(environment: Environment, key: str, n: int = 1) -> None:
    """Count a business outcome (contracts §6); ``key`` is one of the snapshot ``business`` keys.

    Usage: ``record_business(self.environment, "payments_success")``
    """
    inst: Instrumentation | None = getattr(environment, _ATTR, None)
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
    """Reason for the snapshot end line (``"aborted"`` from a gate, ...); default ``completed``."""
    inst = instrumentation_of(environment)
    if inst is not None:
        inst.end_reason = reason


# One run id for this process and for the workers it forks (--processes).
resolve_run_id()


@events.init.add_listener
def _on_locust_init(environment: Environment, **_kw: Any) -> None:
    install(environment)
