"""Read a results folder (``results/<run-id>/``) into one :class:`RunData`.

Usage::

    data = load_results(Path("results/20261126T030000Z-ab12"))
    data.totals["GET /api/home"].percentile(95)   # seconds, every step of that request merged
    data.step_totals["checkout"].count            # one journey step, whatever the platform names its route
    data.totals["POST /api/orders"].reasons       # {"HTTP 503: ...": 12, ...}: why its requests failed
    data.thresholds_by_design                     # the profile copy says ``thresholds: none``

Reads only saved files (never a live run). Missing, truncated or corrupt
files are tolerated: what could not be read is listed in ``data.problems``
and everything else is still available.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from peakload.core import ConfigError, load_profile
from peakload.core.records import (
    EVENT_FIELDS,
    LATENCY_BASES,
    OTHER_MESSAGES,
    OUTCOME_JSON,
    PROFILE_COPY,
    RECONCILIATION_FIELDS,
    RUN_JSON,
    SNAPSHOTS,
    Interval,
    Outcome,
    RunMeta,
    add_reason,
    clean_capacity,
    clean_fields,
    interval_from,
    read_json_lines,
    read_json_object,
    read_snapshots,
)
from peakload.core.serverside import SERVER_JSONL, read_server
from peakload.core.steps import NO_STEP, STEP_SCOPE_PREFIX
from reports.hdr import decode_add, nonzero, percentiles

__all__ = [
    "RequestTotals",
    "Interval",
    "RunData",
    "accumulate",
    "load_results",
    "new_histogram",
    "MAX_POINTS",
    "MAX_REASONS",
    "OTHER_MESSAGES",
]

# Contract (docs/contracts.md §5): microseconds, 1 µs .. 1 h, 3 significant digits.
_HDR_ARGS = (1, 3_600_000_000, 3)


MAX_REASONS = 50  # distinct failure messages kept per request name (or step, or all); the rest: "(other messages)"


def new_histogram() -> HdrHistogram:
    return HdrHistogram(*_HDR_ARGS)


@dataclass
class RequestTotals:
    """Counts and a merged latency histogram for one request name (or one journey step, or all).

    ``steps``: the journey steps of the rows added (``""`` for rows without one).
    ``reasons``: failure message → count, at most :data:`MAX_REASONS` distinct (the rest under
    ``"(other messages)"``), so a run of any length keeps a bounded table.
    """

    name: str
    method: str
    count: int = 0
    failures: int = 0
    sum_s: float = 0.0
    status: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    hdr: HdrHistogram = field(default_factory=new_histogram)
    steps: set[str] = field(default_factory=set)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"

    @property
    def step(self) -> str | None:
        """The one journey step all these requests had; None when they had several, or none."""
        if len(self.steps) == 1:
            (only,) = self.steps
            return only or None
        return None

    @property
    def error_ratio(self) -> float:
        return self.failures / self.count if self.count else 0.0

    def percentile(self, p: float) -> float | None:
        """Latency at percentile ``p`` (0-100) in seconds, or None without samples."""
        v = percentiles(self.hdr, [p])[p]
        return None if v is None else v / 1e6

    def percentiles(self, ps: list[float]) -> dict[float, float | None]:
        """Several percentiles in one pass, in seconds."""
        return {p: (None if v is None else v / 1e6) for p, v in percentiles(self.hdr, ps).items()}

    def fraction_at_or_below(self, seconds: float) -> float | None:
        """Share of samples ≤ ``seconds`` (exact to the histogram's 0.1 % resolution)."""
        total = self.hdr.get_total_count()
        if not total:
            return None
        limit = int(seconds * 1e6)
        below = sum(c for v, c in nonzero(self.hdr) if v <= limit)
        return below / total

    def merge(self, other: RequestTotals) -> None:
        self.steps |= other.steps
        self.count += other.count
        self.failures += other.failures
        self.sum_s += other.sum_s
        for k, v in other.status.items():
            self.status[k] = self.status.get(k, 0) + v
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        for msg, v in other.reasons.items():
            add_reason(self.reasons, msg, v, limit=MAX_REASONS)
        if other.hdr.get_total_count():
            self.hdr.add(other.hdr)

    def add(self, row: dict[str, Any]) -> None:
        """Add one checked request row (:func:`reports.records.clean_row`); the histogram last, so a
        corrupt one (it raises) still leaves the row's counts in."""
        self.steps.add(row.get("step", NO_STEP))
        self.count += row["count"]
        self.failures += row["failures"]
        self.sum_s += row["sum_s"]
        for k, v in row["status"].items():
            self.status[k] = self.status.get(k, 0) + v
        for k, v in row["errors"].items():
            self.errors[k] = self.errors.get(k, 0) + v
        for msg, v in row.get("reasons", {}).items():
            if v:
                add_reason(self.reasons, msg, v, limit=MAX_REASONS)
        if row.get("hdr"):
            decode_add(self.hdr, row["hdr"])


@dataclass
class RunData:
    path: Path
    meta: RunMeta = field(default_factory=RunMeta)
    header: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] | None = None
    intervals: list[Interval] = field(default_factory=list)
    totals: dict[str, RequestTotals] = field(default_factory=dict)  # "METHOD name" → every step merged
    step_totals: dict[str, RequestTotals] = field(default_factory=dict)  # journey step → its rows (steps with requests only)
    business: dict[str, int] = field(default_factory=dict)
    arrivals: dict[str, int] = field(default_factory=dict)
    reconciliation: dict[str, Any] | None = None
    capacity: dict[str, Any] | None = None  # written by `peakload capacity`
    server_header: dict[str, Any] = field(default_factory=dict)  # server.jsonl (the target's own figures)
    server: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)
    problems: list[str] = field(default_factory=list)
    has_profile: bool = False  # the folder holds a copy of the run's profile (profile.yaml), readable or not
    thresholds_by_design: bool = False  # that copy loads and declares ``thresholds: none``
    # chart series (x = seconds since start): users, rps, errors (%), p50/p95/p99 (ms), p95_by_name
    _all: RequestTotals | None = field(default=None, repr=False)
    timeline: dict[str, Any] = field(
        default_factory=lambda: {
            "users": [],
            "rps": [],
            "errors": [],
            "p50": [],
            "p95": [],
            "p99": [],
            "p95_by_name": {},
            "arrivals": [],
            "dropped": [],
            "target_rate": [],
        }
    )

    @property
    def run_id(self) -> str:
        return str(self.meta.run_id or self.header.get("run_id") or self.path.name)

    @property
    def complete(self) -> bool:
        """True when the load generator wrote its end line (the run was not cut short)."""
        return self.end is not None

    @property
    def duration_s(self) -> float:
        if not self.intervals:
            return 0.0
        return max(self.intervals[-1].t_end - self.intervals[0].t_start, 1e-9)

    @property
    def cpu_warning(self) -> bool:
        return any(i.cpu_warning for i in self.intervals) or self.outcome.cpu_warning

    @classmethod
    def from_intervals(cls, intervals: list[Interval], *, path: Path | None = None) -> RunData:
        """A RunData holding just these intervals (a capacity step, a live window)."""
        data = cls(path=path or Path("."))
        for iv in intervals:
            data.add_interval(iv)
        return data

    def add_interval(self, iv: Interval) -> None:
        """The one interval accumulator: rows into per-name and per-step totals, business and arrival counters."""
        self.intervals.append(iv)
        accumulate(self.totals, iv, self.problems, step_totals=self.step_totals)
        for k, v in iv.business.items():
            self.business[k] = self.business.get(k, 0) + v
        for k, v in iv.arrivals.items():
            self.arrivals[k] = self.arrivals.get(k, 0) + v
        self._all = None

    def all_requests(self) -> RequestTotals:
        """Every request name merged into one row (``all``)."""
        if self._all is None:
            self._all = RequestTotals(name="all", method="")
            for t in self.totals.values():
                self._all.merge(t)
        return self._all


def accumulate(
    totals: dict[str, RequestTotals],
    iv: Interval,
    problems: list[str] | None = None,
    *,
    step_totals: dict[str, RequestTotals] | None = None,
) -> None:
    """Add an interval's request rows to ``totals`` (keyed ``"METHOD name"``) and, when given, a journey
    step's rows to ``step_totals`` (keyed by step); a corrupt histogram keeps its counts."""
    for row in iv.requests:
        key = f"{row['method']} {row['name']}"
        tot = totals.get(key)
        if tot is None:
            tot = totals[key] = RequestTotals(name=row["name"], method=row["method"])
        _add(tot, row, iv.seq, key, problems)
        step = row.get("step", NO_STEP)
        if step and step_totals is not None:
            _add(_step_row(step_totals, step), row, iv.seq, key, None)  # a corrupt histogram is listed once


def _step_row(step_totals: dict[str, RequestTotals], step: str) -> RequestTotals:
    tot = step_totals.get(step)
    if tot is None:
        tot = step_totals[step] = RequestTotals(name=STEP_SCOPE_PREFIX + step, method="")
    return tot


def _add(tot: RequestTotals, row: dict[str, Any], seq: int, key: str, problems: list[str] | None) -> None:
    try:
        tot.add(row)
    except Exception as exc:  # a corrupt histogram must not sink the report
        if problems is not None:
            problems.append(f"{SNAPSHOTS}: interval {seq} {key}: unreadable histogram ({exc.__class__.__name__}); counts kept")


def _interval(obj: dict[str, Any]) -> Interval:
    """A live snapshot line (progress, live gate) as an Interval; raises ValueError when unusable."""
    return interval_from(obj)


MAX_POINTS = 240  # chart resolution: intervals are merged into at most this many points


def _aggregate(data: RunData) -> None:
    """Totals and the timeline in one pass; each interval histogram is decoded once.

    Intervals are merged into at most MAX_POINTS groups; a group's per-name
    histogram feeds both its chart point and the run totals, and its per-step
    histograms the step totals.
    """
    n = len(data.intervals)
    if not n:
        return
    step = max(1, math.ceil(n / MAX_POINTS))
    t0 = data.intervals[0].t_start
    tl = data.timeline
    for g in range(0, n, step):
        ivs = data.intervals[g : g + step]
        x = ivs[-1].t_end - t0
        secs = sum(iv.seconds for iv in ivs)
        count = sum(iv.count for iv in ivs)
        fails = sum(iv.failures for iv in ivs)
        tl["users"].append((x, float(ivs[-1].users)))
        tl["rps"].append((x, count / secs))
        tl["errors"].append((x, 100.0 * fails / count if count else 0.0))
        scheduled = sum(iv.arrivals.get("scheduled", 0) for iv in ivs)
        if scheduled or any(iv.target_rate for iv in ivs):
            tl["arrivals"].append((x, scheduled / secs))
            tl["dropped"].append((x, sum(iv.arrivals.get("dropped", 0) for iv in ivs) / secs))
            tl["target_rate"].append((x, float(ivs[-1].target_rate or 0.0)))
        group: dict[str, RequestTotals] = {}
        group_steps: dict[str, RequestTotals] = {}
        for iv in ivs:
            accumulate(group, iv, data.problems, step_totals=group_steps)
            for k, v in iv.business.items():
                data.business[k] = data.business.get(k, 0) + v
            for k, v in iv.arrivals.items():
                data.arrivals[k] = data.arrivals.get(k, 0) + v
        overall = new_histogram()
        for key, part in group.items():
            total = data.totals.get(key)
            if total is None:
                total = data.totals[key] = RequestTotals(name=part.name, method=part.method)
            total.merge(part)
            overall.add(part.hdr)
            p95 = percentiles(part.hdr, [95])[95]
            if p95 is not None:
                tl["p95_by_name"].setdefault(key, []).append((x, p95 / 1000))
        for journey_step, part in group_steps.items():
            _step_row(data.step_totals, journey_step).merge(part)
        if overall.get_total_count():
            values = percentiles(overall, [50, 95, 99])
            for p in (50, 95, 99):
                tl[f"p{p}"].append((x, values[p] / 1000))


def _read_profile(data: RunData) -> None:
    """What the run's profile copy says about judging: present at all, and ``thresholds: none``.

    A copy that cannot be read or validated is a problem line, not a crash (the report still renders).
    """
    copy = data.path / PROFILE_COPY
    if not copy.exists():
        return
    data.has_profile = True
    try:
        profile = load_profile(copy)
    except ConfigError as exc:
        data.problems.append(f"{PROFILE_COPY}: {str(exc).removeprefix(str(copy) + ': ')}; its thresholds setting is unknown")
        return
    except OSError as exc:
        data.problems.append(f"{PROFILE_COPY}: unreadable ({exc.strerror or exc}); its thresholds setting is unknown")
        return
    data.thresholds_by_design = profile.thresholds == "none"


def load_results(path: Path) -> RunData:
    """Load everything that is readable in a results folder."""
    data = RunData(path=path)
    problems = data.problems
    if not path.is_dir():
        problems.append(f"{path}: not a results folder")
        return data
    meta = RunMeta.from_json(read_json_object(path / RUN_JSON, problems), problems)
    if meta is None:
        problems.append("run.json: missing; run metadata unknown")
    data.meta = meta or RunMeta()
    data.outcome = Outcome.from_json(read_json_object(path / OUTCOME_JSON, problems), problems)
    data.reconciliation = clean_fields(
        read_json_object(path / "reconciliation.json", problems), RECONCILIATION_FIELDS, "reconciliation.json", problems
    )
    data.capacity = clean_capacity(read_json_object(path / "capacity.json", problems), problems)
    _read_profile(data)
    if (path / SERVER_JSONL).exists():
        data.server_header, data.server, server_problems = read_server(path / SERVER_JSONL)
        problems.extend(server_problems)
    lines: list[dict[str, Any]] = []
    if (path / SNAPSHOTS).exists():
        lines, snapshot_problems = read_snapshots(path / SNAPSHOTS)
        problems.extend(snapshot_problems)
    else:
        problems.append(f"{SNAPSHOTS}: missing; no measurements")
    for obj in lines:
        kind = obj.get("kind")
        if kind == "header":
            basis = obj.get("latency_basis", "response")
            if basis not in LATENCY_BASES:
                problems.append(f"{SNAPSHOTS}: header latency_basis {basis!r} unknown; read as 'response'")
                obj = {**obj, "latency_basis": "response"}
            data.header = obj
        elif kind == "end":
            data.end = obj
        elif kind is not None:
            problems.append(f"{SNAPSHOTS}: line of unknown kind {str(kind)[:40]!r}; skipped")
        else:
            try:
                iv = interval_from(obj, problems, source=SNAPSHOTS)
            except ValueError as exc:
                problems.append(f"{SNAPSHOTS}: interval {str(obj.get('seq', '?'))[:20]}: {exc}; skipped")
                continue
            data.intervals.append(iv)
    data.intervals.sort(key=lambda i: i.t_start)
    _aggregate(data)
    if data.intervals and data.end is None:
        problems.append(f"{SNAPSHOTS}: no end line: the run was cut short; the report covers {len(data.intervals)} completed intervals")
    for ev in read_json_lines(path / "events.jsonl", problems):
        ev = clean_fields(ev, EVENT_FIELDS, "events.jsonl", problems) or {}
        if "t" in ev:
            data.events.append(ev)
        else:
            problems.append("events.jsonl: an event without a time t; skipped")
    return data
