"""Open workload model on Locust: journeys start at the profile's arrival rate.

Locust is a closed model (a user sends its next request when the last one
answered), so a slow shop slows the load down and hides the stall
(coordinated omission). Here one scheduler greenlet per load-generating
process starts journeys at the times of a fixed schedule
(:mod:`scenarios.schedule`) and hands each arrival to an idle user of a
bounded pool (Locust's users); an arrival that finds no idle user is counted
as *dropped* — never queued, never silently delayed.

Latency is recorded two ways. The first request of a journey reports
``response_time`` measured from the arrival's intended time (the schedule's,
so generator lag counts, as it would for a real shopper) and puts the service
time (from the actual send) in the request context, where the exporter files
it under ``service_hdr``; later requests of the journey are sent when the
shopper clicks, so their intended start is their send time and both figures
are equal.

Distributed runs (``--processes``/``--workers``): when the pool is spawned,
the master gives every worker that holds users a slot ``i`` of ``N`` and one
schedule start ``t0`` (a wall-clock multiple of the snapshot interval, so
snapshot lines and capacity steps line up); worker ``i`` runs its share of the
schedule (see :mod:`scenarios.schedule` for why the shares add up exactly).

Usage (``locustfile.py`` imports the user classes; the profile decides)::

    arrivals:
      kind: constant            # constant | ramping | poisson
      stages: [{duration: 20s, rate: 200}]
      journey: single_request   # or shopper
      path: /
      pool: 300
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import gevent
from gevent.queue import Queue
from locust import events
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import RescheduleTask, RescheduleTaskImmediately, StopUser
from locust.runners import MasterRunner, WorkerRunner
from locust.user.users import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

from scenarios.instrumentation import SERVICE_TIME_KEY, record_arrivals, set_target_rate
from scenarios.schedule import RateCurve, arrival_times
from scenarios.settings import RunSettings, get_settings
from scenarios.users import Shopper, ShoppingSession

__all__ = [
    "ArrivalPool",
    "ArrivalState",
    "IntendedStart",
    "ArrivalShopper",
    "ArrivalRequester",
    "arrival_state",
    "ARRIVALS_MESSAGE",
]

log = logging.getLogger(__name__)

ARRIVALS_MESSAGE = "peakload_arrivals"  # master → worker: {"slot", "of", "t0"}
_ATTR = "peakload_arrivals"
_LEAD_S = 0.3  # the schedule starts at the first snapshot boundary at least this far ahead
_GAUGE_S = 0.25
_FLUSH_EVERY = 1000  # arrivals counted locally between store updates while the scheduler is behind


class ArrivalPool:
    """Idle users waiting for an arrival: a counter plus a gevent queue of intended start times.

    ``idle`` = users blocked in :meth:`take` minus arrivals already handed to
    them; the scheduler only hands out an arrival when it is positive, so no
    arrival ever waits in the queue for a user to come free.
    """

    __slots__ = ("idle", "queue")

    def __init__(self) -> None:
        self.idle = 0
        self.queue: Queue = Queue()

    def offer(self, intended: float) -> bool:
        """Hand an arrival to an idle user; False (dropped) when there is none."""
        if self.idle <= 0:
            return False
        self.idle -= 1
        self.queue.put_nowait(intended)
        return True

    def take(self) -> float:
        """Block until an arrival comes (called by a user); returns its intended start (epoch s)."""
        self.idle += 1
        try:
            return self.queue.get()
        except BaseException:  # killed while idle (the run stops): no longer waiting
            self.idle -= 1
            raise

    def drain(self) -> int:
        """Remove arrivals nobody picked up (the run stopped first); returns how many."""
        n = 0
        while not self.queue.empty():
            self.queue.get_nowait()
            n += 1
        return n


@dataclass
class ArrivalState:
    """Per-environment open-model state: the curve, the pool, and when the schedule runs."""

    settings: RunSettings
    curve: RateCurve
    kind: str
    pool_size: int
    pool: ArrivalPool = field(default_factory=ArrivalPool)
    t0: float | None = None  # schedule start (epoch s), once known
    slot: int = 0
    of: int = 1
    scheduler: gevent.Greenlet | None = None
    gauge: gevent.Greenlet | None = None
    started_message_sent: bool = False

    @property
    def end(self) -> float | None:
        """When the schedule's last arrival is due (epoch s), once ``t0`` is known."""
        return None if self.t0 is None else self.t0 + self.curve.duration


def arrival_state(environment: Environment) -> ArrivalState | None:
    """The open-model state of this environment (None for closed-model profiles)."""
    return getattr(environment, _ATTR, None)


class IntendedStart:
    """Stands in for a session's ``request_event``: intended-start latency for a journey's first request.

    ``response_time`` becomes *now − intended start* for the request that
    follows :meth:`arm`; every request carries its service time in the context
    (``SERVICE_TIME_KEY``), so ``service_hdr`` has a sample per request.
    """

    __slots__ = ("_fire", "intended")

    def __init__(self, inner: Any) -> None:
        self._fire = inner.fire
        self.intended: float | None = None

    def arm(self, intended: float) -> None:
        self.intended = intended

    def fire(self, **kw: Any) -> None:
        service = kw["response_time"]
        intended = self.intended
        if intended is not None:
            self.intended = None
            lag_ms = (kw["start_time"] - intended) * 1000.0
            if lag_ms > 0:
                kw["response_time"] = service + lag_ms
        kw["context"] = {**kw["context"], SERVICE_TIME_KEY: service}
        self._fire(**kw)


class _ArrivalUser:
    """Mixin: serve arrivals from the pool until stopped; subclasses define :meth:`journey`."""

    journey_name: ClassVar[str] = ""

    def _setup_arrivals(self) -> None:
        state = arrival_state(self.environment)  # type: ignore[attr-defined]
        if state is None:
            raise RuntimeError(f"{type(self).__name__} needs an arrivals section in the profile (open model)")
        self._pool = state.pool
        self._intended = IntendedStart(self.client.request_event)  # type: ignore[attr-defined]
        self.client.request_event = self._intended  # type: ignore[attr-defined]

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
        self._setup_arrivals()
        self._sign_in_tried = False

    def journey(self) -> None:
        if not self._sign_in_tried and self.profile.journey.login_ratio > 0:
            self._sign_in_tried = True
            self.sign_in()
        ShoppingSession(self).run()


class ArrivalRequester(_ArrivalUser, FastHttpUser):
    """One arrival = one ``GET arrivals.path`` (calibration, capacity probes, generator benchmarks)."""

    weight = _weight("single_request")
    tasks = [_serve]
    network_timeout = 30.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self._setup_arrivals()
        settings = get_settings()
        arrivals = settings.profile.arrivals
        self._path = arrivals.path if arrivals is not None else "/"
        self._headers = {settings.profile.target.run_header: settings.run_id}

    def journey(self) -> None:
        self.client.request("GET", self._path, headers=self._headers)


# ---------------------------------------------------------------- scheduler (one greenlet per load-generating process)


def _run_schedule(environment: Environment, state: ArrivalState) -> None:
    assert state.t0 is not None
    t0, pool = state.t0, state.pool
    offer = pool.offer
    now = time.time
    scheduled = dropped = 0
    times = arrival_times(state.curve, kind=state.kind, slot=state.slot, of=state.of, seed=state.settings.seed)
    try:
        for rel in times:
            at = t0 + rel
            if at > now():
                if scheduled:
                    record_arrivals(environment, scheduled=scheduled, dropped=dropped)
                    scheduled = dropped = 0
                # libev's cached loop time can wake us a little early: sleep again until really due
                while (wait := at - now()) > 0:
                    gevent.sleep(wait)
            scheduled += 1
            if not offer(at):
                dropped += 1
            if scheduled >= _FLUSH_EVERY:
                record_arrivals(environment, scheduled=scheduled, dropped=dropped)
                scheduled = dropped = 0
    finally:
        if scheduled:
            record_arrivals(environment, scheduled=scheduled, dropped=dropped)


def _start_scheduler(environment: Environment, state: ArrivalState, *, slot: int, of: int, t0: float) -> None:
    state.slot, state.of, state.t0 = slot, of, t0
    if state.scheduler is not None and not state.scheduler.dead:
        return
    state.scheduler = gevent.spawn(_run_schedule, environment, state)
    log.info("peakload arrivals: slot %d of %d, %d users, schedule starts in %.2fs", slot, of, state.pool_size, t0 - time.time())


def _gauge_loop(environment: Environment, state: ArrivalState) -> None:
    while True:
        t0 = state.t0
        rate = None if t0 is None else state.curve.rate_at(time.time() - t0)
        set_target_rate(environment, rate)
        gevent.sleep(_GAUGE_S)


def _first_boundary(interval: float) -> float:
    at = time.time() + _LEAD_S
    return math.ceil(at / interval) * interval


def _write_event(state: ArrivalState, *, t: float, name: str, detail: str) -> None:
    results = state.settings.results_dir
    if results is None:
        return
    results.mkdir(parents=True, exist_ok=True)
    with open(results / "events.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"t": round(t, 3), "kind": "arrivals", "name": name, "detail": detail}) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _describe(state: ArrivalState, workers: int) -> str:
    spec = state.settings.profile.arrivals
    assert spec is not None
    return (f"{spec.kind} arrivals, {state.curve.total:.0f} journeys ({spec.journey}) over {state.curve.duration:g}s, "
            f"peak {spec.peak_rate * state.settings.scale:g}/s, pool {state.pool_size}, {workers} load process(es)")


# ---------------------------------------------------------------- Locust wiring


def _on_spawning_complete(environment: Environment, state: ArrivalState) -> None:
    if state.started_message_sent:
        return
    state.started_message_sent = True
    runner = environment.runner
    t0 = _first_boundary(state.settings.snapshot_interval)
    state.t0 = t0
    if isinstance(runner, MasterRunner):
        loaded = sorted(cid for cid, node in runner.clients.items() if sum(node.user_classes_count.values()) > 0)
        workers = loaded or sorted(node.id for node in runner.clients.all)
        for slot, cid in enumerate(workers):
            runner.send_message(ARRIVALS_MESSAGE, {"slot": slot, "of": len(workers), "t0": t0}, client_id=cid)
        _write_event(state, t=t0, name="arrivals start", detail=_describe(state, len(workers)))
    else:
        _start_scheduler(environment, state, slot=0, of=1, t0=t0)
        _write_event(state, t=t0, name="arrivals start", detail=_describe(state, 1))


def _stop_scheduler(state: ArrivalState) -> None:
    if state.scheduler is not None:
        state.scheduler.kill(block=True)
        state.scheduler = None


def _on_test_stop(environment: Environment, state: ArrivalState) -> None:
    _stop_scheduler(state)  # normally gone already (test_stopping)
    leftover = state.pool.drain()
    if leftover:
        record_arrivals(environment, dropped=leftover)


def install(environment: Environment, settings: RunSettings | None = None) -> ArrivalState | None:
    """Attach the open model to an environment when the profile has ``arrivals`` (idempotent)."""
    existing = arrival_state(environment)
    if existing is not None:
        return existing
    settings = settings or get_settings()
    spec = settings.profile.arrivals
    if spec is None:
        return None
    state = ArrivalState(
        settings=settings,
        curve=RateCurve.from_spec(spec, scale=settings.scale, duration=settings.duration),
        kind=spec.kind,
        pool_size=spec.pool_size(settings.profile.journey, scale=settings.scale),
    )
    setattr(environment, _ATTR, state)
    runner = environment.runner
    ev = environment.events
    if isinstance(runner, WorkerRunner):
        def on_message(environment: Environment, msg: Any, **_kw: Any) -> None:
            data = msg.data or {}
            _start_scheduler(environment, state, slot=int(data["slot"]), of=int(data["of"]), t0=float(data["t0"]))

        runner.register_message(ARRIVALS_MESSAGE, on_message)
    elif runner is not None:
        ev.spawning_complete.add_listener(lambda user_count, **_kw: _on_spawning_complete(environment, state))

        def on_start(environment: Environment, **_kw: Any) -> None:
            if state.gauge is None or state.gauge.dead:
                state.gauge = gevent.spawn(_gauge_loop, environment, state)

        ev.test_start.add_listener(on_start)
    # no new arrivals while the users are being stopped; what is left unserved counts as dropped
    ev.test_stopping.add_listener(lambda environment, **_kw: _stop_scheduler(state))
    ev.test_stop.add_listener(lambda environment, **_kw: _on_test_stop(environment, state))
    if not isinstance(runner, WorkerRunner):
        ev.quitting.add_listener(lambda environment, **_kw: state.gauge.kill(block=False) if state.gauge else None)
    return state


@events.init.add_listener
def _on_locust_init(environment: Environment, **_kw: Any) -> None:
    install(environment)
