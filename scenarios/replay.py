"""The replay journey's schedule: an access log's requests again, at their logged offsets ÷ speed (no Locust import).

``arrivals.journey: replay`` reads the log once per process
(:meth:`peakload.core.ReplaySpec.records`: methods, window, limit), applies
``rewrite`` (ordered regexes on path + query) and keeps one arrival per
record at ``(t − t_first) / (speed × scale)`` seconds from the schedule's
start. The open-model scheduler (:mod:`scenarios.arrivals`) walks it like a
rate curve: :class:`ReplaySchedule` has the curve's ``duration``, ``total``,
``expected(t)`` and ``rate_at(t)``; :class:`ReplayCursor` the cursor's
``time()``, ``advance()``, ``u`` and ``skip_through(u)``.

Operational time is the record's index: record ``k`` sits at ``u = k + ½``
and ``expected(t)`` counts the records due by ``t``, so "due" is
``u <= expected(now)`` as for evenly spaced arrivals. Worker ``slot`` of
``of`` takes the records ``k ≡ slot (mod of)``: the union over workers is
the log, record for record.

The intended start handed to a pool user is a :class:`Replayed` — a float
(epoch seconds, so the latency math is unchanged) that carries its
:class:`ReplayRecord` (method, path with query, request name, step). Names
are the dialect's route templates when a path matches one (``/api/products/{sku}``),
else the path with its id-like segments folded (``/api/things/{id}``), at most
``MAX_NAMES`` of those, then ``(other)``: the stats stay bounded whatever the log holds.

Usage::

    schedule = ReplaySchedule.from_profile(profile, scale=1.0)
    schedule.total, schedule.duration, schedule.pool_size(profile)
    cur = schedule.cursor(slot=0, of=1)
    while (t := cur.time()) is not None:
        intended = Replayed(t0 + t, cur.record); cur.advance()
"""

from __future__ import annotations

import math
import re
import string
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from peakload.core import ConfigError, Profile
from peakload.core.profile import REPLAY_TAIL_S
from peakload.core.steps import NO_STEP, STEPS
from scenarios.shop import fold_path, route_pattern

__all__ = ["ReplayRecord", "Replayed", "RouteNames", "ReplaySchedule", "ReplayCursor", "MAX_NAMES", "OTHER_NAME"]

MAX_NAMES = 100  # request names for paths no route template matches; the rest are OTHER_NAME
OTHER_NAME = "(other)"
POOL_WINDOW_S = 0.5  # the default pool holds every request due within this long (2 × the 0.25 s one request is assumed to take)
_SAFE_CHARS = string.punctuation  # kept as they are when a non-ASCII target is percent-encoded
_BAD_TARGET = re.compile(r"[\s\x00-\x1f\x7f]")


class ReplayRecord(NamedTuple):
    """One request to send again: ``method target`` (path with query), reported as ``name`` under ``step``."""

    method: str
    target: str
    name: str
    step: str


class Replayed(float):
    """An intended start (epoch seconds) carrying its request: ``ArrivalPool.offer`` passes it through unchanged."""

    __slots__ = ("record",)
    record: ReplayRecord

    def __new__(cls, intended: float, record: ReplayRecord) -> Replayed:
        obj = super().__new__(cls, intended)
        obj.record = record
        return obj


class RouteNames:
    """``(method, path)`` → (request name, step): a route template of the dialect, a folded path, or ``(other)``."""

    def __init__(self, templates: Mapping[str, str], steps: Mapping[tuple[str, str], str] | None = None) -> None:
        """``templates``: path key → route template (``/api/products/{sku}``); ``steps``: (method, key) → journey step.

        Without ``steps`` (a dialect without ``LOG_STEPS``) a key that is a step's name is that step (``product``).
        """
        self._steps = dict(steps) if steps else None
        self._static: dict[str, str] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for key, template in templates.items():
            template = template.split("?", 1)[0]
            if "{" not in template:
                self._static.setdefault(template, key)
                continue
            self._patterns.append((route_pattern(template)[0], key))
        self._templates = dict(templates)
        self._folded: set[str] = set()

    @classmethod
    def of_profile(cls, profile: Profile) -> RouteNames:
        """The route templates of the profile's dialect (``target.paths`` included)."""
        from scenarios.dialects import load_dialect  # the adapter module is imported only when names are wanted

        base = Path(profile.source).parent if profile.source else None
        shop = load_dialect(profile.target, base_dir=base)
        templates = {key: profile.target.paths.get(key, template) for key, template in shop.PATHS.items()}
        return cls(templates, shop.LOG_STEPS)

    def key(self, path: str) -> str | None:
        """The path key of the route template ``path`` matches, or None."""
        found = self._static.get(path)
        if found is not None:
            return found
        for rx, key in self._patterns:
            if rx.match(path):
                return key
        return None

    def name(self, method: str, path: str) -> tuple[str, str]:
        """(request name, journey step) of ``method path`` (``path`` without the query)."""
        key = self.key(path)
        if key is not None:
            if self._steps is not None:
                step = self._steps.get((method, key), NO_STEP)
            else:
                step = key if key in STEPS else NO_STEP
            return self._templates[key].split("?", 1)[0], step
        folded = fold_path(path)
        if folded in self._folded:
            return folded, NO_STEP
        if len(self._folded) < MAX_NAMES:
            self._folded.add(folded)
            return folded, NO_STEP
        return OTHER_NAME, NO_STEP


class ReplaySchedule:
    """One replay's arrivals: sorted offsets (s from the first request) and, when kept, the requests to send.

    Every process reads the same log and gets the same global schedule; a
    worker's share is chosen by its cursor. ``duration`` ends ``REPLAY_TAIL_S``
    after the last request (or at the ``duration`` cap).
    """

    def __init__(self, offsets: list[float], records: list[ReplayRecord] | None, *, busiest: int, log: Path, speed: float) -> None:
        if not offsets:
            raise ValueError("a replay schedule needs at least one request")
        self.offsets = array("d", offsets)
        self.records = records
        self.total = len(offsets)
        self.busiest = busiest  # the most requests due within any POOL_WINDOW_S
        self.log = log
        self.speed = speed  # speed × scale
        self.duration = offsets[-1] + REPLAY_TAIL_S

    @classmethod
    def from_profile(
        cls, profile: Profile, *, scale: float = 1.0, duration: float | None = None, keep_records: bool = True
    ) -> ReplaySchedule:
        """Read the profile's replay log; ``duration`` cuts the schedule (requests due before it are kept).

        ``keep_records=False`` keeps the offsets only (the runner's figures, a master that sends nothing);
        the rewrites are checked either way. ConfigError (one line) names ``arrivals.replay.*``.
        """
        arrivals = profile.arrivals
        if arrivals is None or arrivals.replay is None:
            raise ValueError("not a replay profile (arrivals.journey: replay)")
        spec = arrivals.replay
        path = profile.replay_log_path()
        assert path is not None
        rewrites = [(re.compile(pattern), replacement) for pattern, replacement in spec.rewrite.items()]
        names = RouteNames.of_profile(profile) if keep_records else None
        times: list[float] = []
        rows: list[ReplayRecord] = []
        unique: dict[tuple[str, str], ReplayRecord] = {}  # a log repeats its URLs: one record object per distinct request
        for rec in spec.records(path):
            target = f"{rec.path}?{rec.query}" if rec.query else rec.path
            if rewrites:
                logged = target
                for rx, replacement in rewrites:
                    target = rx.sub(replacement, target)
                if not target.startswith("/") or _BAD_TARGET.search(target):
                    raise ConfigError(
                        f"arrivals.replay.rewrite: turned {logged[:100]!r} into {target[:100]!r}; "
                        "expected a path starting with '/' without spaces or control characters"
                    )
            times.append(rec.t)
            if names is None:
                continue
            if not target.isascii():
                target = quote(target, safe=_SAFE_CHARS)
            row = unique.get((rec.method, target))
            if row is None:
                name, step = names.name(rec.method, target.split("?", 1)[0])
                row = unique[(rec.method, target)] = ReplayRecord(rec.method, target, name, step)
            rows.append(row)
        speed = spec.speed * scale
        order = sorted(range(len(times)), key=times.__getitem__)  # a log is nearly in order; the schedule is in order
        first = times[order[0]]
        offsets = [(times[i] - first) / speed for i in order]
        records = [rows[i] for i in order] if names is not None else None
        if duration is not None:
            keep = bisect_left(offsets, duration)
            offsets = offsets[:keep]
            records = records[:keep] if records is not None else None
        schedule = cls(offsets, records, busiest=_busiest(offsets, POOL_WINDOW_S), log=path, speed=speed)
        if duration is not None:
            schedule.duration = min(schedule.duration, duration)
        return schedule

    def expected(self, t: float) -> float:
        """Requests due by ``t`` seconds (offset ≤ t), over all workers."""
        return float(bisect_right(self.offsets, t))

    def rate_at(self, t: float) -> float:
        """Requests/s around ``t``: those due within ``[t − ½ s, t + ½ s)``, over all workers (0 outside the schedule)."""
        if t < 0 or t >= self.duration:
            return 0.0
        return float(bisect_left(self.offsets, t + 0.5) - bisect_left(self.offsets, t - 0.5))

    @property
    def peak_rate(self) -> float:
        """The busiest moment as a rate: the most requests due within ``POOL_WINDOW_S``, per second."""
        return self.busiest / POOL_WINDOW_S

    def pool_size(self, profile: Profile, *, scale: float = 1.0) -> int:
        """``arrivals.pool`` × scale, or every request due within ``POOL_WINDOW_S`` + 1, within ``max_pool``."""
        arrivals = profile.arrivals
        assert arrivals is not None
        return arrivals.pool_size(profile.journey, scale=scale, peak_rate=self.peak_rate)

    def cursor(self, *, slot: int = 0, of: int = 1) -> ReplayCursor:
        return ReplayCursor(self, slot=slot, of=of)


def _busiest(offsets: list[float], window: float) -> int:
    """The most offsets within any half-open ``window`` (two pointers over sorted offsets)."""
    best = lo = 0
    for hi, t in enumerate(offsets):
        while t - offsets[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class ReplayCursor:
    """Walks one worker's share of a replay (records ``k ≡ slot mod of``), like :class:`scenarios.schedule.ArrivalCursor`.

    ``u`` is the next record's operational time ``k + ½`` (``inf`` past the end);
    :meth:`skip_through` passes every record up to a given ``u`` in O(1).

    Usage::

        cur = schedule.cursor(slot=0, of=2)
        t = cur.time(); rec = cur.record; cur.advance(); n = cur.skip_through(schedule.expected(now))
    """

    __slots__ = ("schedule", "of", "slot", "k", "u", "_offsets", "_records", "_total")

    def __init__(self, schedule: ReplaySchedule, *, slot: int = 0, of: int = 1) -> None:
        if not 0 <= slot < of:
            raise ValueError(f"slot must be within 0..{of - 1}, got {slot}")
        self.schedule, self.slot, self.of = schedule, slot, of
        self._offsets, self._records, self._total = schedule.offsets, schedule.records, schedule.total
        self.k = slot
        self.u = slot + 0.5 if slot < self._total else math.inf

    def time(self) -> float | None:
        """Offset (s from the schedule's start) of the next record, or None when the replay is over."""
        return self._offsets[self.k] if self.u != math.inf else None

    @property
    def record(self) -> ReplayRecord:
        """The next record's request (the schedule must keep its records)."""
        assert self._records is not None, "this schedule was read without its records (keep_records=False)"
        return self._records[self.k]

    def advance(self) -> None:
        """Move to the next record of this worker."""
        self.k += self.of
        self.u = self.k + 0.5 if self.k < self._total else math.inf

    def skip_through(self, u_limit: float) -> int:
        """Pass every record with ``u <= u_limit``; returns how many."""
        if self.u > u_limit:
            return 0
        n = int((min(u_limit, self._total) - self.u) // self.of) + 1
        self.k += (n - 1) * self.of
        self.advance()
        return n
