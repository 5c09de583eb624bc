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

Shards (``PEAKLOAD_SHARD=I/N``, several masters sharing one schedule): shard
``I`` gives its worker ``w`` of ``W`` the global slot ``I + N·w`` of ``N·W``
(:meth:`peakload.core.shard.Shard.slot`), and ``t0`` is ``PEAKLOAD_START_AT``,
the one instant every shard starts at. The pool is the shard's share of the
profile's (the profile describes the whole fleet).

The pool users (what one arrival does) are in :mod:`scenarios.arrival_users`.

``journey: replay`` swaps the rate curve for an access log's requests
(:mod:`scenarios.replay`): the same scheduler walks it, and each intended start
handed to a user is a :class:`~scenarios.replay.Replayed` carrying the request.

Usage (``locustfile.py`` imports the user classes; the profile decides)::

    arrivals:
      kind: constant            # constant | ramping | poisson
      stages: [{duration: 20s, rate: 200}]
      journey: single_request   # or shopper
      path: /
      pool: 300
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent
from gevent.hub import Waiter, get_hub
from locust import events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from peakload.core.shard import Shard
from scenarios.instrumentation import record_arrivals, set_target_rate
from scenarios.replay import ReplayCursor, Replayed, ReplaySchedule
from scenarios.schedule import ArrivalCursor, RateCurve, arrivals_plan
from scenarios.settings import RunSettings, get_settings

__all__ = ["ArrivalPool", "ArrivalState", "arrival_state", "install", "ARRIVALS_MESSAGE"]

log = logging.getLogger(__name__)

ARRIVALS_MESSAGE = "peakload_arrivals"  # master → worker: {"slot", "of", "t0"}
_ATTR = "peakload_arrivals"
_LEAD_S = 0.3  # the schedule starts at the first snapshot boundary at least this far ahead
_GAUGE_S = 0.25
_MIN_SLEEP_S = 0.001  # libev's timer resolution: waking more often buys no precision, only CPU


class ArrivalPool:
    """Idle users, each parked on its own gevent ``Waiter``; an arrival wakes the most recently idle one.

    :meth:`offer` hands the intended start to an idle user through one hub
    callback (no queue: an arrival never waits for a user to come free — it is
    handed over or dropped). Most recently idle first keeps few connections hot.
    ``lost`` counts arrivals handed to a user that was killed before it woke
    (only when the run stops); they count as dropped.
    """

    __slots__ = ("_idle", "_run_callback", "lost")

    def __init__(self) -> None:
        self._idle: deque[Waiter] = deque()
        self._run_callback = get_hub().loop.run_callback
        self.lost = 0

    @property
    def idle(self) -> int:
        return len(self._idle)

    def offer(self, intended: float) -> bool:
        """Hand an arrival to an idle user; False (dropped) when there is none."""
        if not self._idle:
            return False
        self._run_callback(self._idle.pop().switch, intended)
        return True

    def take(self) -> float:
        """Block until an arrival comes (called by a user); returns its intended start (epoch s)."""
        waiter = Waiter()
        self._idle.append(waiter)
        try:
            return waiter.get()
        except BaseException:  # killed while idle (the run stops)
            try:
                self._idle.remove(waiter)
            except ValueError:
                self.lost += 1  # an arrival was already on its way to this user
            raise


@dataclass
class ArrivalState:
    """Per-environment open-model state: the curve (or the replay), the pool, and when the schedule runs."""

    settings: RunSettings
    curve: RateCurve | ReplaySchedule
    kind: str  # constant | ramping | poisson | replay
    pool_size: int
    pool: ArrivalPool = field(default_factory=ArrivalPool)
    t0: float | None = None  # schedule start (epoch s), once known
    slot: int = 0
    of: int = 1
    scheduler: gevent.Greenlet | None = None
    gauge: gevent.Greenlet | None = None
    started_message_sent: bool = False
    log_sha256: str = ""  # journey: replay, where the run's description is written
    shard: Shard = Shard(index=0, of=1)  # this master's share of the global schedule (0/1: all of it)

    def cursor(self) -> ArrivalCursor | ReplayCursor:
        """This process's share of the schedule (``slot`` of ``of``)."""
        if isinstance(self.curve, ReplaySchedule):
            return self.curve.cursor(slot=self.slot, of=self.of)
        return ArrivalCursor(self.curve, kind=self.kind, slot=self.slot, of=self.of, seed=self.settings.seed)

    @property
    def end(self) -> float | None:
        """When the schedule's last arrival is due (epoch s), once ``t0`` is known."""
        return None if self.t0 is None else self.t0 + self.curve.duration


def arrival_state(environment: Environment) -> ArrivalState | None:
    """The open-model state of this environment (None for closed-model profiles)."""
    return getattr(environment, _ATTR, None)


# ---------------------------------------------------------------- scheduler (one greenlet per load-generating process)


def _run_schedule(environment: Environment, state: ArrivalState) -> None:
    """Dispatch this process's arrivals on time; count those that find no idle user as dropped.

    Each wake-up serves every arrival that is due (``u <= Λ(now)``) in order:
    to idle users while there are any (their intended start is their own
    scheduled time, so any lateness of this loop shows in the latency), and
    the rest are dropped and counted without even computing their times.
    A replay's intended start carries its request (:class:`Replayed`).
    """
    assert state.t0 is not None
    t0, pool, curve = state.t0, state.pool, state.curve
    offer, now, expected = pool.offer, time.time, curve.expected
    cur = state.cursor()
    replay = cur if isinstance(cur, ReplayCursor) else None
    while True:
        t_next = cur.time()
        if t_next is None:
            return
        wait = t0 + t_next - now()
        if wait > 0:
            gevent.sleep(max(wait, _MIN_SLEEP_S))
        u_now = expected(now() - t0)
        scheduled = dropped = 0
        while cur.u <= u_now and pool.idle:
            rel = cur.time()
            if rel is None:
                break
            offer(t0 + rel if replay is None else Replayed(t0 + rel, replay.record))
            scheduled += 1
            cur.advance()
        if cur.u <= u_now:
            n = cur.skip_through(u_now)
            scheduled += n
            dropped += n
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


def _describe(state: ArrivalState, workers: int, *, late: float = 0.0) -> str:
    spec = state.settings.profile.arrivals
    assert spec is not None
    shard, prefix, suffix = state.shard, "", ""
    if shard.of > 1:
        plan = arrivals_plan(state.curve, kind=state.kind, slot=shard.index, of=shard.of)  # type: ignore[arg-type]
        share = f"{plan.share:.0f}" if plan.exact else f"~{plan.share:.1f} expected"
        prefix = (
            f"shard {shard.index} of {shard.of} (global slots {shard.index} + {shard.of}·w of {shard.of}·{workers}; {share} arrivals): "
        )
    if late > 0:
        suffix = f"; started {late:.2f}s after the schedule start"
    return prefix + _plan_text(state, spec, workers) + suffix


def _plan_text(state: ArrivalState, spec: Any, workers: int) -> str:
    if isinstance(state.curve, ReplaySchedule):
        replay = state.curve
        return (
            f"replay of {replay.total} requests ({'/'.join(spec.replay.methods) if spec.replay else ''}) from {replay.log} "
            f"(sha256 {state.log_sha256}) over {replay.duration:g}s at speed {replay.speed:g}, "
            f"busiest {replay.peak_rate:g}/s, pool {state.pool_size}, {workers} load process(es)"
        )
    return (
        f"{spec.kind} arrivals, {state.curve.total:.0f} journeys ({spec.journey}) over {state.curve.duration:g}s, "
        f"peak {spec.peak_rate * state.settings.scale:g}/s, pool {state.pool_size}, {workers} load process(es)"
    )


# ---------------------------------------------------------------- Locust wiring


def _on_spawning_complete(environment: Environment, state: ArrivalState) -> None:
    if state.started_message_sent:
        return
    state.started_message_sent = True
    runner = environment.runner
    start_at = state.settings.start_at
    t0 = _first_boundary(state.settings.snapshot_interval) if start_at is None else start_at
    state.t0 = t0
    late = time.time() - t0 if start_at is not None else 0.0
    if late > 0:  # spawning ended after the shared start: the arrivals due meanwhile go out at once (their latency shows it)
        log.warning("peakload arrivals: the pool was ready %.2fs after the schedule start (PEAKLOAD_START_AT)", late)
    shard = state.shard
    if isinstance(runner, MasterRunner):
        loaded = sorted(cid for cid, node in runner.clients.items() if sum(node.user_classes_count.values()) > 0)
        workers = loaded or sorted(node.id for node in runner.clients.all)
        for w, cid in enumerate(workers):
            slot, of = shard.slot(worker=w, workers=len(workers))
            runner.send_message(ARRIVALS_MESSAGE, {"slot": slot, "of": of, "t0": t0}, client_id=cid)
        _write_event(state, t=t0, name="arrivals start", detail=_describe(state, len(workers), late=late))
    else:
        slot, of = shard.slot(worker=0, workers=1)
        _start_scheduler(environment, state, slot=slot, of=of, t0=t0)
        _write_event(state, t=t0, name="arrivals start", detail=_describe(state, 1, late=late))


def _stop_scheduler(state: ArrivalState) -> None:
    if state.scheduler is not None:
        state.scheduler.kill(block=True)
        state.scheduler = None


def _on_test_stop(environment: Environment, state: ArrivalState) -> None:
    _stop_scheduler(state)  # normally gone already (test_stopping)
    if state.pool.lost:
        record_arrivals(environment, dropped=state.pool.lost)
        state.pool.lost = 0


def install(environment: Environment, settings: RunSettings | None = None) -> ArrivalState | None:
    """Attach the open model to an environment when the profile has ``arrivals`` (idempotent)."""
    existing = arrival_state(environment)
    if existing is not None:
        return existing
    settings = settings or get_settings()
    spec = settings.profile.arrivals
    if spec is None:
        return None
    runner = environment.runner
    if spec.journey == "replay":
        state = _replay_state(settings, runner)
    else:
        state = ArrivalState(
            settings=settings,
            curve=RateCurve.from_spec(spec, scale=settings.scale, duration=settings.duration),
            kind=spec.kind,
            pool_size=spec.pool_size(settings.profile.journey, scale=settings.scale),
        )
    if settings.shard is not None:
        state.shard = settings.shard
        state.pool_size = max(1, math.ceil(state.pool_size / settings.shard.of))
    setattr(environment, _ATTR, state)
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


def _replay_state(settings: RunSettings, runner: Any) -> ArrivalState:
    """The state of ``journey: replay``: the log's schedule (with its requests where users send them: not on a master)."""
    schedule = ReplaySchedule.from_profile(
        settings.profile, scale=settings.scale, duration=settings.duration, keep_records=not isinstance(runner, MasterRunner)
    )
    state = ArrivalState(
        settings=settings, curve=schedule, kind="replay", pool_size=schedule.pool_size(settings.profile, scale=settings.scale)
    )
    if not isinstance(runner, WorkerRunner) and settings.results_dir is not None:
        state.log_sha256 = _sha256(schedule.log)  # named in the "arrivals start" event: which log was replayed
    return state


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@events.init.add_listener
def _on_locust_init(environment: Environment, **_kw: Any) -> None:
    install(environment)
