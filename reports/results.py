"""Read a results folder (``results/<run-id>/``) into one :class:`RunData`.

Usage::

    data = load_results(Path("results/20261126T030000Z-ab12"))
    data.totals["GET /api/home"].percentile(95)   # seconds

Reads only saved files (never a live run). Missing, truncated or corrupt
files are tolerated: what could not be read is listed in ``data.problems``
and everything else is still available.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from reports.hdr import decode_add, nonzero, percentiles

__all__ = ["RequestTotals", "Interval", "RunData", "load_results", "new_histogram", "MAX_POINTS", "SNAPSHOTS", "STATUS_CLASSES"]

SNAPSHOTS = "snapshots.jsonl"
STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx", "other")
# Contract (docs/contracts.md §5): microseconds, 1 µs .. 1 h, 3 significant digits.
_HDR_ARGS = (1, 3_600_000_000, 3)


def new_histogram() -> HdrHistogram:
    return HdrHistogram(*_HDR_ARGS)


@dataclass
class RequestTotals:
    """Counts and a merged latency histogram for one request name."""

    name: str
    method: str
    count: int = 0
    failures: int = 0
    sum_s: float = 0.0
    status: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    hdr: HdrHistogram = field(default_factory=new_histogram)

    @property
    def key(self) -> str:
        return f"{self.method} {self.name}"

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

    def merge(self, other: "RequestTotals") -> None:
        self.count += other.count
        self.failures += other.failures
        self.sum_s += other.sum_s
        for k, v in other.status.items():
            self.status[k] = self.status.get(k, 0) + v
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        if other.hdr.get_total_count():
            self.hdr.add(other.hdr)

    def add(self, row: dict[str, Any]) -> None:
        self.count += int(row.get("count", 0))
        self.failures += int(row.get("failures", 0))
        self.sum_s += float(row.get("sum_s", 0.0))
        for k, v in (row.get("status") or {}).items():
            self.status[k] = self.status.get(k, 0) + int(v)
        for k, v in (row.get("errors") or {}).items():
            self.errors[k] = self.errors.get(k, 0) + int(v)
        if row.get("hdr"):
            decode_add(self.hdr, row["hdr"])


@dataclass
class Interval:
    """One snapshot line: a few seconds of the run."""

    seq: int
    t_start: float
    t_end: float
    users: int
    workers: int
    requests: list[dict[str, Any]]
    business: dict[str, int]
    arrivals: dict[str, int]
    target_rate: float | None
    cpu_warning: bool

    @property
    def seconds(self) -> float:
        return max(self.t_end - self.t_start, 1e-9)

    @property
    def count(self) -> int:
        return sum(int(r.get("count", 0)) for r in self.requests)

    @property
    def failures(self) -> int:
        return sum(int(r.get("failures", 0)) for r in self.requests)


@dataclass
class RunData:
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    header: dict[str, Any] = field(default_factory=dict)
    end: dict[str, Any] | None = None
    intervals: list[Interval] = field(default_factory=list)
    totals: dict[str, RequestTotals] = field(default_factory=dict)
    business: dict[str, int] = field(default_factory=dict)
    arrivals: dict[str, int] = field(default_factory=dict)
    reconciliation: dict[str, Any] | None = None
    capacity: dict[str, Any] | None = None  # written by `peakload capacity`
    events: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # chart series (x = seconds since start): users, rps, errors (%), p50/p95/p99 (ms), p95_by_name
    _all: RequestTotals | None = field(default=None, repr=False)
    timeline: dict[str, Any] = field(default_factory=lambda: {"users": [], "rps": [], "errors": [], "p50": [], "p95": [], "p99": [], "p95_by_name": {},
                                                                 "arrivals": [], "dropped": [], "target_rate": []})

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.header.get("run_id") or self.path.name)

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
        return any(i.cpu_warning for i in self.intervals) or bool(self.outcome.get("cpu_warning"))

    def all_requests(self) -> RequestTotals:
        """Every request name merged into one row (``all``)."""
        if self._all is None:
            self._all = RequestTotals(name="all", method="")
            for t in self.totals.values():
                self._all.merge(t)
        return self._all


def _read_json(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: unreadable ({exc.__class__.__name__}); ignored")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: expected a JSON object; ignored")
        return None
    return data


def _read_lines(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not path.exists():
        return out
    raw = path.read_bytes().split(b"\n")
    for lineno, line in enumerate(raw, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            if not isinstance(obj, dict):
                raise ValueError("not an object")
        except ValueError:
            last = lineno == len(raw) or (lineno == len(raw) - 1 and not raw[-1].strip())
            what = "truncated last line (the run was probably killed while writing)" if last else "corrupt line"
            problems.append(f"{path.name} line {lineno}: {what}; skipped")
            continue
        out.append(obj)
    return out


def _interval(obj: dict[str, Any]) -> Interval:
    return Interval(
        seq=int(obj.get("seq", 0)),
        t_start=float(obj["t_start"]),
        t_end=float(obj["t_end"]),
        users=int(obj.get("users") or 0),
        workers=int(obj.get("workers") or 0),
        requests=list(obj.get("requests") or []),
        business={k: int(v) for k, v in (obj.get("business") or {}).items()},
        arrivals={k: int(v) for k, v in (obj.get("arrivals") or {}).items()},
        target_rate=obj.get("target_rate"),
        cpu_warning=bool(obj.get("cpu_warning")),
    )


MAX_POINTS = 240  # chart resolution: intervals are merged into at most this many points


def _aggregate(data: RunData) -> None:
    """Totals and the timeline in one pass; each interval histogram is decoded once.

    Intervals are merged into at most MAX_POINTS groups; a group's per-name
    histogram feeds both its chart point and the run totals.
    """
    n = len(data.intervals)
    if not n:
        return
    step = max(1, math.ceil(n / MAX_POINTS))
    t0 = data.intervals[0].t_start
    tl = data.timeline
    for g in range(0, n, step):
        ivs = data.intervals[g:g + step]
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
        for iv in ivs:
            for row in iv.requests:
                key = f"{row.get('method', '')} {row.get('name', '')}"
                tot = group.get(key)
                if tot is None:
                    tot = group[key] = RequestTotals(name=str(row.get("name", "")), method=str(row.get("method", "")))
                try:
                    tot.add(row)
                except Exception as exc:  # a corrupt histogram must not sink the report
                    data.problems.append(f"{SNAPSHOTS}: interval {iv.seq} {key}: unreadable histogram ({exc.__class__.__name__}); counts kept")
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
        if overall.get_total_count():
            values = percentiles(overall, [50, 95, 99])
            for p in (50, 95, 99):
                tl[f"p{p}"].append((x, values[p] / 1000))


def load_results(path: Path) -> RunData:
    """Load everything that is readable in a results folder."""
    data = RunData(path=path)
    problems = data.problems
    if not path.is_dir():
        problems.append(f"{path}: not a results folder")
        return data
    data.meta = _read_json(path / "run.json", problems) or {}
    if not data.meta:
        problems.append("run.json: missing; run metadata unknown")
    data.outcome = _read_json(path / "outcome.json", problems) or {}
    data.reconciliation = _read_json(path / "reconciliation.json", problems)
    data.capacity = _read_json(path / "capacity.json", problems)
    if not (path / SNAPSHOTS).exists():
        problems.append(f"{SNAPSHOTS}: missing; no measurements")
    for obj in _read_lines(path / SNAPSHOTS, problems):
        kind = obj.get("kind")
        if kind == "header":
            data.header = obj
        elif kind == "end":
            data.end = obj
        else:
            try:
                iv = _interval(obj)
            except (KeyError, TypeError, ValueError):
                problems.append(f"{SNAPSHOTS}: interval {obj.get('seq', '?')} lacks t_start/t_end; skipped")
                continue
            data.intervals.append(iv)
    data.intervals.sort(key=lambda i: i.t_start)
    _aggregate(data)
    if data.intervals and data.end is None:
        problems.append(f"{SNAPSHOTS}: no end line: the run was cut short; the report covers {len(data.intervals)} completed intervals")
    data.events = _read_lines(path / "events.jsonl", problems)
    return data
