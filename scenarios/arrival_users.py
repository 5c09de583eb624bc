"""The pool users of the open model: what one arrival does, and how its latency is reported.

``ArrivalShopper``: one arrival = one shopper visit (a :class:`ShoppingSession`).
``ArrivalRequester``: one arrival = one ``GET arrivals.path`` (calibration,
capacity probes, generator benchmarks). ``ArrivalReplayer``: one arrival =
one request of an access log (``journey: replay``, :mod:`scenarios.replay`).
All wait for arrivals from the pool of :mod:`scenarios.arrivals` and report
the first request of each journey with its intended-start latency
(:class:`IntendedStart`). A profile's ``arrivals.journey`` gives one of them
weight 1 and the others 0.

Usage (``locustfile.py``)::

    from scenarios.arrival_users import ArrivalReplayer, ArrivalRequester, ArrivalShopper
"""

from __future__ import annotations

import time
from typing import Any

from locust import User
from locust.exception import RescheduleTask, RescheduleTaskImmediately, StopUser
from locust.user.users import (
    LOCUST_STATE_RUNNING,
    LOCUST_STATE_STOPPING,
    LOCUST_STATE_WAITING,
)

from peakload.core.steps import STEP_KEY
from scenarios.arrivals import arrival_state
from scenarios.bridge import LATENESS_KEY
from scenarios.instrumentation import SERVICE_TIME_KEY
from scenarios.probe import Probe
from scenarios.replay import Replayed, ReplayRecord
from scenarios.settings import get_settings
from scenarios.users import Shopper, ShoppingSession

__all__ = ["IntendedStart", "ArrivalShopper", "ArrivalRequester", "ArrivalReplayer", "ReplayProbe"]


class IntendedStart:
    """Stands in for a session's ``request_event``: intended-start latency for a journey's first request.

    ``response_time`` becomes *now − intended start* for the request that
    follows :meth:`arm`, and its context carries the scheduler's lateness
    (``LATENESS_KEY``, ms: when the user took the arrival − its intended start;
    for a journey that sends at once, as these do, that is its send) for the
    generator-lag histogram; every request carries its service time in the context
    (``SERVICE_TIME_KEY``), so ``service_hdr`` has a sample per request.
    """

    __slots__ = ("_fire", "intended", "_woke")

    def __init__(self, inner: Any) -> None:
        self._fire = inner.fire
        self.intended: float | None = None
        self._woke = 0.0

    def arm(self, intended: float) -> None:
        self.intended = intended
        self._woke = time.time()  # the user has the arrival: anything later is the journey's own time

    def fire(self, **kw: Any) -> None:
        service = kw["response_time"]
        intended = self.intended
        # FastHttpSession builds a fresh context dict per request: filling it in place is safe
        context = kw["context"]
        if intended is not None:
            self.intended = None
            lag_ms = (kw["start_time"] - intended) * 1000.0
            if lag_ms > 0:
                kw["response_time"] = service + lag_ms
            late_ms = (min(self._woke, kw["start_time"]) - intended) * 1000.0
            context[LATENESS_KEY] = late_ms if late_ms > 0 else 0.0
        context[SERVICE_TIME_KEY] = service
        self._fire(**kw)


class _ArrivalUser:
    """Mixin: serve arrivals from the pool until stopped; subclasses define :meth:`journey`."""

    def _setup_arrivals(self, request_event: Any) -> IntendedStart:
        """Join the pool; returns the request event to report through (intended-start for first requests)."""
        state = arrival_state(self.environment)  # type: ignore[attr-defined]
        if state is None:
            raise RuntimeError(f"{type(self).__name__} needs an arrivals section in the profile (open model)")
        self._pool = state.pool
        self._intended = IntendedStart(request_event)
        return self._intended

    def serve_arrivals(self) -> None:
        """The only task: wait (idle, killable at once) for an arrival, run its journey, repeat."""
        take = self._pool.take
        arm = self._intended.arm
        while True:
            if self._state == LOCUST_STATE_STOPPING:  # type: ignore[has-type]
                raise StopUser()
            self._state = LOCUST_STATE_WAITING  # like TaskSet.wait(): Locust may kill us here without a stop timeout
            intended = take()
            self._state = LOCUST_STATE_RUNNING
            self.arrival = intended  # a replay's carries its request (scenarios.replay.Replayed)
            arm(intended)
            try:
                self.journey()
            except (RescheduleTask, RescheduleTaskImmediately):
                pass  # the journey ended itself (a ShoppingSession leaves by interrupting)
            self._intended.intended = None

    def journey(self) -> None:
        raise NotImplementedError


def _serve(user: _ArrivalUser) -> None:
    user.serve_arrivals()


def _weight(journey: str) -> int:
    arrivals = get_settings().profile.arrivals
    return 1 if arrivals is not None and arrivals.journey == journey else 0


class ArrivalShopper(_ArrivalUser, Shopper):
    """One arrival = one shopper visit (:class:`ShoppingSession`); signs in on its first visit."""

    kind = "shopper"
    weight = _weight("shopper")
    tasks = [_serve]

    def on_start(self) -> None:
        self.client.request_event = self._setup_arrivals(self.client.request_event)
        self._sign_in_tried = False

    def journey(self) -> None:
        if not self._sign_in_tried and self.profile.journey.login_ratio > 0:
            self._sign_in_tried = True
            self.sign_in()
        ShoppingSession(self).run()


# Locust's metaclass appends a base class's tasks to a subclass's: Shopper's ShoppingSession would run as a
# closed-model loop beside the arrivals. Set after the class body, the list is exactly this one task.
ArrivalShopper.tasks = [_serve]


class _ArrivalProber(_ArrivalUser, User):
    """A pool user whose arrivals go through one :class:`scenarios.probe.Probe` (``probe_class``)."""

    abstract = True
    tasks = [_serve]
    network_timeout = 30.0
    connection_timeout = 5.0
    probe_class: type[Probe] = Probe

    def on_start(self) -> None:
        settings = get_settings()
        if not self.host:
            raise RuntimeError(f"{type(self).__name__} needs a host (--host or the web UI's host field)")
        self.probe = self.probe_class(
            self.host,
            request_event=self._setup_arrivals(self.environment.events.request),
            headers={settings.profile.target.run_header: settings.run_id},
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
        )

    def on_stop(self) -> None:
        probe = getattr(self, "probe", None)
        if probe is not None:
            probe.close()


class ArrivalRequester(_ArrivalProber):
    """One arrival = one ``GET arrivals.path`` (calibration, capacity probes, generator benchmarks).

    Requests go through :class:`scenarios.probe.Probe` (one keep-alive
    connection, the same request events as ``FastHttpUser``, no cookies: each
    arrival is a new visitor).
    """

    weight = _weight("single_request")

    def on_start(self) -> None:
        arrivals = get_settings().profile.arrivals
        self._path = arrivals.path if arrivals is not None else "/"
        super().on_start()

    def journey(self) -> None:
        self.probe.get(self._path)


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ReplayProbe(Probe):
    """A :class:`Probe` that sends any method (an empty body for those that take one) under a name and a step."""

    def warm(self) -> None:
        """Open the keep-alive connection now, before the schedule starts.

        A pool user's first connection costs an address lookup in gevent's
        resolver thread pool (about 10 ms for the process's first, while the
        pool starts) and a connect: paid at its first arrival, that would make
        the request late. A failure is left to the first request to report.
        """
        pool = self._http._connection_pool
        try:
            pool.return_socket(pool.get_socket())
        except (OSError, RuntimeError):
            pass

    def send(self, record: ReplayRecord) -> int | None:
        """Send ``record.method record.target``; fires the request event as ``Probe.get`` does; returns the status."""
        return self.request(
            record.method,
            record.target,
            name=record.name,
            body=b"" if record.method in _BODY_METHODS else None,
            context={STEP_KEY: record.step} if record.step else {},
            failure_name=record.name,
        )


class ArrivalReplayer(_ArrivalProber):
    """One arrival = one logged request again (``journey: replay``), sent at its intended start.

    One keep-alive connection, no cookies (:class:`ReplayProbe`), the run
    header on every request (shadow traffic); the request is named by the
    dialect's route template (:class:`scenarios.replay.RouteNames`).
    """

    weight = _weight("replay")
    probe_class = ReplayProbe
    probe: ReplayProbe
    arrival: Replayed

    def on_start(self) -> None:
        super().on_start()
        self.probe.warm()

    def journey(self) -> None:
        self.probe.send(self.arrival.record)
