"""Arrival schedules as pure functions of time (no Locust import).

An arrival schedule is a rate curve ``r(t)`` (journeys/s, piecewise constant or
piecewise linear, sub-second stages allowed) and a point process on it. All
work happens in *operational time* ``u = Λ(t) = ∫₀ᵗ r`` (expected arrivals so
far): arrivals are points on the ``u`` axis, mapped back to wall time with the
exact inverse of ``Λ`` (``Λ`` is piecewise quadratic, so the inverse is a
square root). A 0.5 s cliff from 1,000/s to 40,000/s is therefore a cliff, not
a one-second staircase.

Distributed split (worker ``slot`` of ``of``):

* evenly spaced (``constant``/``ramping``): the global schedule has arrival
  ``k`` at ``u = k + ½``; worker ``i`` takes every ``of``-th one
  (``k ≡ i mod of``). The union over workers *is* the global schedule, arrival
  for arrival, for any curve — not merely the same average rate. (Giving each
  worker rate/N with a phase offset is the same set for evenly spaced points;
  this form is what makes it obviously exact.)
* ``poisson``: worker ``i`` runs its own seeded Poisson process at rate r(t)/N
  (gaps of ``N·Exp(1)`` in operational time). The superposition of N
  independent Poisson processes of rate r/N is a Poisson process of rate r —
  exact in law. (Taking every N-th point of one global Poisson stream would
  need every worker to draw all N streams' gaps, and its per-worker gaps would
  be Gamma(N), not exponential.)

Shards (several masters, ``--shard I/N``, :class:`peakload.core.shard.Shard`) are
the same split one level up: local worker ``w`` of ``W`` on shard ``I`` of ``N``
is slot ``I + N·w`` of ``N·W`` — the shard takes ``k ≡ I (mod N)``, its workers
every ``W``-th of those, whatever ``W`` each shard has; for Poisson every
(shard, worker) pair has its own slot and so its own seeded stream.

Usage::

    curve = RateCurve.from_spec(profile.arrivals, scale=1.0)
    curve.rate_at(3.2), curve.expected(10.0)        # journeys/s, arrivals in [0, 10 s)
    for t in arrival_times(curve, kind="constant", slot=0, of=2, seed=42): ...
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from peakload.core import ArrivalsSpec

__all__ = ["Segment", "RateCurve", "ArrivalCursor", "arrival_times", "count_until", "ArrivalsPlan", "arrivals_plan"]


@dataclass(frozen=True, slots=True)
class Segment:
    """``[start, end)`` with the rate going linearly from ``r0`` to ``r1``; ``u0`` = Λ(start)."""

    start: float
    end: float
    r0: float
    r1: float
    u0: float

    @property
    def u1(self) -> float:
        return self.u0 + (self.r0 + self.r1) * (self.end - self.start) / 2


class RateCurve:
    """A piecewise-linear rate curve with its cumulative ``Λ`` and the exact inverse."""

    def __init__(self, points: Sequence[tuple[float, float, float]]) -> None:
        """``points``: ``(duration, rate_from, rate_to)`` per segment, in order."""
        segs: list[Segment] = []
        t = u = 0.0
        for duration, r0, r1 in points:
            if duration <= 0:
                continue
            if r0 < 0 or r1 < 0:
                raise ValueError(f"rates must be >= 0, got {r0} -> {r1}")
            seg = Segment(start=t, end=t + duration, r0=float(r0), r1=float(r1), u0=u)
            segs.append(seg)
            t, u = seg.end, seg.u1
        self.segments: tuple[Segment, ...] = tuple(segs)
        self.duration = t
        self.total = u  # expected arrivals over the whole curve

    @classmethod
    def from_spec(cls, spec: ArrivalsSpec, *, scale: float = 1.0, duration: float | None = None) -> RateCurve:
        """The curve of a profile's ``arrivals`` section, rates × ``scale``, cut at ``duration`` seconds."""
        points: list[tuple[float, float, float]] = []
        prev = spec.start_rate * scale
        left = math.inf if duration is None else duration
        for stage in spec.stages:
            d = min(stage.duration, left)
            if d <= 0:
                break
            rate = stage.rate * scale
            if spec.curve_kind == "linear":
                end_rate = prev + (rate - prev) * d / stage.duration
                points.append((d, prev, end_rate))
            else:
                points.append((d, rate, rate))
            prev = rate
            left -= d
        return cls(points)

    def _segment(self, t: float) -> Segment | None:
        for seg in self.segments:
            if seg.start <= t < seg.end:
                return seg
        return None

    def rate_at(self, t: float) -> float:
        """Target journeys/s at ``t`` seconds (0 outside the curve)."""
        seg = self._segment(t)
        if seg is None:
            return 0.0
        return seg.r0 + (seg.r1 - seg.r0) * (t - seg.start) / (seg.end - seg.start)

    def expected(self, t: float) -> float:
        """Λ(t): expected arrivals in ``[0, t)``."""
        if t <= 0:
            return 0.0
        if t >= self.duration:
            return self.total
        seg = self._segment(t)
        assert seg is not None
        tau = t - seg.start
        slope = (seg.r1 - seg.r0) / (seg.end - seg.start)
        return seg.u0 + seg.r0 * tau + slope * tau * tau / 2

    def time_at(self, u: float, hint: int = 0) -> tuple[float, int] | None:
        """Wall time (s from start) when Λ reaches ``u``, and the segment index (a hint for the next, larger ``u``).

        None when ``u`` lies beyond the end of the curve.
        """
        segs = self.segments
        i, n = hint, len(segs)
        while i < n and u >= segs[i].u1:
            i += 1
        if i >= n:
            return None
        seg = segs[i]
        delta = u - seg.u0
        b = seg.r0
        a = (seg.r1 - seg.r0) / (2 * (seg.end - seg.start))
        # τ solves a·τ² + b·τ = delta; this form is stable for a > 0, a < 0 and a == 0.
        tau = 2 * delta / (b + math.sqrt(max(b * b + 4 * a * delta, 0.0)))
        return min(seg.start + tau, seg.end), i

    def times(self, us: Iterator[float]) -> Iterator[float]:
        """Map increasing operational times ``u`` to wall times (stops at the end of the curve)."""
        hint = 0
        for u in us:
            found = self.time_at(u, hint)
            if found is None:
                return
            t, hint = found
            yield t


class ArrivalCursor:
    """Walks one worker's arrivals in operational time; arrivals nobody can serve are skipped cheaply.

    ``u`` is the next arrival's operational time (``inf`` past the end).
    :meth:`skip_through` counts and passes every arrival up to a given ``u``
    without mapping each to wall time (O(1) for evenly spaced kinds), which is
    what keeps a scheduler cheap when the rate is far above what the pool serves.

    Usage::

        cur = ArrivalCursor(curve, kind="constant", slot=0, of=1, seed=42)
        t = cur.time()          # wall offset of the next arrival (None when done)
        cur.advance(); n = cur.skip_through(curve.expected(now))
    """

    __slots__ = ("curve", "poisson", "of", "slot", "k", "u", "_hint", "_expo")

    def __init__(self, curve: RateCurve, *, kind: str, slot: int = 0, of: int = 1, seed: int = 0) -> None:
        if not 0 <= slot < of:
            raise ValueError(f"slot must be within 0..{of - 1}, got {slot}")
        self.curve, self.of, self.slot = curve, of, slot
        self.poisson = kind == "poisson"
        self._hint = 0
        self.k = 0
        if self.poisson:
            # String seeds are hashed with SHA-512: the same stream on every machine and run.
            self._expo = random.Random(f"peakload-arrivals:{seed}:{slot}:{of}").expovariate
            self.u = of * self._expo(1.0)
        else:
            self.u = slot + 0.5
        if self.u >= curve.total:
            self.u = math.inf

    def time(self) -> float | None:
        """Wall offset (s from the schedule's start) of the next arrival, or None when the schedule is over."""
        if self.u == math.inf:
            return None
        found = self.curve.time_at(self.u, self._hint)
        if found is None:
            self.u = math.inf
            return None
        t, self._hint = found
        return t

    def advance(self) -> None:
        """Move to the next arrival."""
        self.k += 1
        self.u = self.u + self.of * self._expo(1.0) if self.poisson else self.k * self.of + self.slot + 0.5
        if self.u >= self.curve.total:
            self.u = math.inf

    def skip_through(self, u_limit: float) -> int:
        """Pass every arrival with ``u <= u_limit``; returns how many."""
        if self.u > u_limit:
            return 0
        if self.poisson:
            n = 0
            while self.u <= u_limit:
                self.advance()
                n += 1
            return n
        n = int((min(u_limit, self.curve.total) - self.u) // self.of) + 1
        self.k += n - 1
        self.advance()
        return n


def arrival_times(curve: RateCurve, *, kind: str, slot: int = 0, of: int = 1, seed: int = 0) -> Iterator[float]:
    """Arrival times (seconds from the schedule's start) of worker ``slot`` out of ``of``.

    ``kind``: ``constant``/``ramping`` (evenly spaced in operational time) or ``poisson``.

    Usage: ``list(arrival_times(RateCurve([(1.0, 10, 10)]), kind="constant"))`` -> 10 times, 0.05 .. 0.95
    """
    cur = ArrivalCursor(curve, kind=kind, slot=slot, of=of, seed=seed)
    return _walk(cur)


def _walk(cur: ArrivalCursor) -> Iterator[float]:
    while (t := cur.time()) is not None:
        yield t
        cur.advance()


def count_until(curve: RateCurve, t: float, *, slot: int = 0, of: int = 1) -> int:
    """Evenly spaced schedules: how many arrivals of ``slot`` fall in ``[0, t)`` (closed form)."""
    u = curve.expected(t)
    # arrivals at u = k + 0.5 with k ≡ slot (mod of) and k + 0.5 < u
    if u <= slot + 0.5:
        return 0
    return int(math.floor((u - 0.5 - slot) / of - 1e-12)) + 1


@dataclass(frozen=True, slots=True)
class ArrivalsPlan:
    """The global schedule's arrivals and one slot's share of them (exact counts, or expectations for Poisson)."""

    global_arrivals: float
    share: float
    exact: bool  # evenly spaced and replay: counts; poisson: expected values

    def to_json(self) -> dict[str, float | int | bool]:
        as_number = int if self.exact else float
        return {"global_arrivals": as_number(self.global_arrivals), "shard_arrivals": as_number(self.share), "exact": self.exact}


def arrivals_plan(curve: RateCurve, *, kind: str, slot: int = 0, of: int = 1) -> ArrivalsPlan:
    """How many arrivals the whole schedule has and how many of them are slot ``slot`` of ``of``'s.

    ``kind``: ``constant``/``ramping`` (exact counts), ``poisson`` (expected: Λ and Λ/of) or ``replay``
    (``curve`` is then a :class:`scenarios.replay.ReplaySchedule`: records ``k ≡ slot mod of``).

    Usage: ``arrivals_plan(RateCurve([(10.0, 30, 30)]), kind="constant", slot=1, of=3)`` -> 300 global, 100 share
    """
    if kind == "poisson":
        return ArrivalsPlan(global_arrivals=curve.total, share=curve.total / of, exact=False)
    if kind == "replay":
        total = int(curve.total)
        return ArrivalsPlan(global_arrivals=total, share=len(range(slot, total, of)), exact=True)
    return ArrivalsPlan(
        global_arrivals=count_until(curve, curve.duration), share=count_until(curve, curve.duration, slot=slot, of=of), exact=True
    )
