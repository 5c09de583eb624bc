"""The request bridge (shared by every role) and the worker's side of a distributed run.

:class:`Instrumentation` turns Locust's ``events.request`` into
``StatsStore.record`` (milliseconds → seconds here, once; the journey step from the
request's ``context[STEP_KEY]``, ``""`` without one) and owns the one
background greenlet a role may run. With no runner (``run_single_user``,
library use) it is all there is: a store that counts.

:class:`WorkerBridge` is what a ``WorkerRunner`` gets: it records into its store
and, while the test runs, pushes ``store.drain_delta()`` to the master at every
wall-clock multiple of the snapshot interval (custom message
:data:`DELTA_MESSAGE`); whatever is left when it stops rides in Locust's final
report (``data["peakload"]`` via ``report_to_master``). The master's side is
:class:`scenarios.aggregator.MasterAggregator`; :mod:`scenarios.instrumentation`
picks the class by runner type.

The generator's own lag (docs/open-model.md, "A generator that knows when it lies"):
a load-generating role (local, worker) records ``scheduler_lateness`` from the
request context's :data:`LATENESS_KEY` (set on a journey's first request by the
open model's pool users: actual send − intended instant) and runs a loop-lag probe
while the test runs: a timer every :data:`LAG_PROBE_S` whose overshoot is the time
anything ready (a readable socket, a finished response) waits for the gevent loop —
``response_handling_lag``. geventhttpclient does not tell when a response's bytes
became readable, so the probe's overshoot is the proxy, and is called so.

Usage: ``install(environment)`` from :mod:`scenarios.instrumentation` (the
``events.init`` listener does it).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import gevent
from locust.env import Environment

from exporters.classify import classify_error, failure_message
from exporters.settings import ExporterSettings
from exporters.stats import StatsStore
from peakload.core.steps import NO_STEP, STEP_KEY, STEPS

__all__ = ["Instrumentation", "WorkerBridge", "SERVICE_TIME_KEY", "LATENESS_KEY", "LAG_PROBE_S", "DELTA_MESSAGE", "next_boundary"]

logger = logging.getLogger("scenarios.instrumentation")  # one logger name for the whole plugin

SERVICE_TIME_KEY = "peakload_service_ms"
LATENESS_KEY = "peakload_lateness_ms"  # a journey's first request: actual send − intended instant (ms, >= 0)
LAG_PROBE_S = 0.01  # the loop-lag probe's period: 100 samples/s per load process
DELTA_MESSAGE = "peakload_delta"  # worker → master custom message
_STEPS = frozenset((*STEPS, NO_STEP))


class Instrumentation:
    """Per-environment recorder: owns the store and records every request event into it."""

    role = "none"  # run_single_user / library use without a runner

    def __init__(self, environment: Environment, *, settings: ExporterSettings) -> None:
        self.environment = environment
        self.settings = settings
        self.store = StatsStore(edges=settings.edges)
        self._record = self.store.record  # bound once: saves two lookups per request
        self._loop: gevent.Greenlet | None = None  # aggregator: snapshot lines; worker: delta pushes
        self._unknown_steps: set[str] = set()  # context steps that are no journey step, warned about once each
        self._lag_probe: gevent.Greenlet | None = None

    def start(self) -> None:
        """Attach the request listener (subclasses add their role's listeners after it); a load-generating
        role (local, worker) runs the loop-lag probe while the test runs."""
        ev = self.environment.events
        ev.request.add_listener(self.on_request)
        if self.role in ("local", "worker"):
            ev.test_start.add_listener(self._start_lag_probe)
            ev.test_stop.add_listener(self._stop_lag_probe)

    def _start_lag_probe(self, **_kw: Any) -> None:
        if self._lag_probe is None or self._lag_probe.dead:
            self._lag_probe = gevent.spawn(_probe_loop_lag, self.store.record_generator)

    def _stop_lag_probe(self, **_kw: Any) -> None:
        if self._lag_probe is not None:
            self._lag_probe.kill(block=True)
            self._lag_probe = None

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
        """``events.request``: milliseconds → seconds here, once; the step from ``context``; then ``store.record``.

        A failure also carries its short message (:func:`exporters.classify.failure_message`) for the reports.
        """
        status = getattr(response, "status_code", None)
        if exception is None and not context:  # the common case without a journey, kept short
            self._record(name, request_type, response_time / 1000.0, status)
            return
        if exception is None:
            error_type = reason = None
        else:
            error_type, reason = classify_error(status, exception), failure_message(exception)
        if context:
            service = context.get(SERVICE_TIME_KEY)
            lateness = context.get(LATENESS_KEY)
            if lateness is not None:
                self.store.record_generator("scheduler_lateness", lateness / 1000.0)
            step = context.get(STEP_KEY, NO_STEP)
            if not (isinstance(step, str) and step in _STEPS):  # a list would not even hash
                step = self._unknown_step(step)
        else:
            service, step = None, NO_STEP
        self._record(
            name, request_type, response_time / 1000.0, status, error_type, None if service is None else service / 1000.0, step, reason
        )

    def _unknown_step(self, step: Any) -> str:
        """A locustfile's own ``context[STEP_KEY]`` that is no journey step: counted without a step, said once."""
        text = repr(step)[:80]
        if text not in self._unknown_steps and len(self._unknown_steps) < 100:  # bounded, like the labels
            self._unknown_steps.add(text)
            logger.warning(
                "peakload: request context %s=%s is not a journey step (%s); counted without a step", STEP_KEY, text, ", ".join(STEPS)
            )
        return NO_STEP

    def _start_loop(self, body: Callable[[], None]) -> None:
        if not self._loop_running():
            self._loop = gevent.spawn(body)

    def _loop_running(self) -> bool:
        return self._loop is not None and not self._loop.dead

    def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.kill(block=True)
            self._loop = None


class WorkerBridge(Instrumentation):
    """A worker: records, and ships per-interval deltas to the master."""

    role = "worker"

    def start(self) -> None:
        super().start()
        ev = self.environment.events
        ev.test_start.add_listener(self.on_test_start)
        ev.test_stop.add_listener(self.on_test_stop)
        ev.report_to_master.add_listener(self.on_report_to_master)

    def on_test_start(self, environment: Environment, **_kw: Any) -> None:
        self._start_loop(self._push_loop)

    def on_test_stop(self, environment: Environment, **_kw: Any) -> None:
        self._stop_loop()

    def _push_loop(self) -> None:
        """Ship a delta at every wall-clock multiple of the interval (the master writes between them)."""
        interval = self.settings.snapshot_interval
        while True:
            boundary = next_boundary(time.time(), interval)
            gevent.sleep(max(0.0, boundary - time.time()))
            delta = self.store.drain_delta()
            try:
                self.environment.runner.send_message(DELTA_MESSAGE, {"delta": delta, "t_end": boundary})  # type: ignore[union-attr]
            except Exception as exc:  # RPCError and friends: keep the numbers for the next report
                logger.warning("peakload: could not send metrics delta to the master (%s); keeping it for the next report", exc)
                self.store.merge_delta(delta)

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        """Locust's periodic/final report carries what the push loop has not sent.

        While the push loop runs it owns the cadence (so master intervals hold
        one push each); once the test stopped — the final report on quit — the
        remainder goes here. A delta, never cumulative.
        """
        if not self._loop_running():
            data["peakload"] = self.store.drain_delta()


def _probe_loop_lag(record: Callable[[str, float], None]) -> None:
    """Every LAG_PROBE_S: how late the gevent loop woke a timer that was due (``response_handling_lag``).

    The loop's cached time is refreshed before each sleep so the timer is due LAG_PROBE_S after *now*,
    not after the start of a loop iteration that may have run long.
    """
    loop = gevent.get_hub().loop
    clock = time.perf_counter
    while True:
        loop.update_now()
        due = clock() + LAG_PROBE_S
        gevent.sleep(LAG_PROBE_S)
        record("response_handling_lag", clock() - due)


def next_boundary(now: float, interval: float) -> float:
    """The next wall-clock multiple of ``interval`` strictly after ``now`` (shared by all processes)."""
    return (math.floor(now / interval) + 1) * interval
