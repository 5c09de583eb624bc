"""A mergeable request-stats store: the numbers behind /metrics and snapshots.

Usage::

    store = StatsStore(edges=bucket_edges(slo=spec))
    store.record("/api/products/{sku}", "GET", 0.042, 200)           # hot path
    store.record("/api/orders", "POST", 1.2, 503, "http_5xx")
    store.record("/api/orders", "POST", 0.3, 201, step="checkout")   # a journey step: its own series
    store.record("/api/orders", "POST", 0.2, 200, "body_check", reason="orderId missing")  # why it failed
    store.add_business("orders")
    delta = store.drain_delta()        # JSON-safe dict of everything since the last drain
    master.merge_delta(delta)          # on the master: sum of the workers, exactly

A series is one (name, method, step): the route template, the HTTP method and the
journey step (:data:`peakload.core.steps.STEPS`, or ``""`` for a request outside the
journey). Delta rows carry ``"step"`` only when there is one, so a store fed no
steps drains exactly what it did before steps existed; :meth:`StatsStore.merge_delta`
reads a row without the key as step ``""``.

Failure messages: a failed request may carry a short ``reason`` (made by
:func:`exporters.classify.failure_message`); a series keeps at most
:data:`MAX_REASONS` distinct ones per interval (the rest count under
``"(other messages)"``), and delta rows carry ``"reasons"`` only when there are
some. They go to the snapshots and the reports, never to /metrics: a message is
no bounded label.

Two layers: ``pending`` (since the last drain: what the next snapshot line or
worker report carries, HdrHistograms included) and ``totals`` (everything
drained so far, counts and buckets only). The exporter shows totals + pending,
so a scrape between drains is still exact. Deltas, never cumulative values,
cross process boundaries; percentiles are never averaged, HdrHistograms are
added.

Generator lag (docs/open-model.md, "A generator that knows when it lies"): two more
histograms per store, ``scheduler_lateness`` (actual send of a journey's first
request − its intended instant) and ``response_handling_lag`` (the gevent loop's lag,
the proxy for the time a ready response waits before its time is recorded), fed by
:meth:`StatsStore.record_generator`. They drain as the delta's optional ``"generator"``
object (``{kind: {count, sum_s, buckets, hdr}}``, only kinds with samples; absent when
none), merge exactly like request rows, and use :func:`generator_edges`: the request
edges plus a few sub-5 ms ones.

Not thread-safe: one gevent hub (Locust) or one thread owns a store.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from exporters.classify import ERROR_TYPES, STATUS_CLASSES
from exporters.histogram import (
    HALF_COUNT,
    HALF_MAG,
    HDR_HIGHEST_US,
    MASK,
    SHIFT,
    UNIT_MAG,
    Decoded,
    HdrCounts,
    read_encoded,
)
from peakload.core.records import GENERATOR_KINDS, MAX_MESSAGE_CHARS, add_reason
from peakload.core.steps import NO_STEP, STEPS

__all__ = [
    "DELTA_VERSION",
    "MAX_REASONS",
    "BUSINESS_KEYS",
    "ARRIVAL_KEYS",
    "GENERATOR_KINDS",
    "LAG_EDGES",
    "generator_edges",
    "LagTotals",
    "SeriesTotals",
    "StatsStore",
]

DELTA_VERSION = 1
# contracts §5 ``business`` keys, in the order they are written
BUSINESS_KEYS: tuple[str, ...] = (
    "product_views",
    "cart_adds",
    "orders",
    "payments_success",
    "payments_declined",
    "payments_error",
    "flash_won",
    "flash_sold_out",
    "flash_error",
)
ARRIVAL_KEYS: tuple[str, ...] = ("scheduled", "dropped")
MAX_REASONS = 20  # distinct failure messages per series per interval; more count under "(other messages)"
# below the request edges (5 ms and up): an idle generator's lag is well under a millisecond
LAG_EDGES: tuple[float, ...] = (0.0005, 0.001, 0.0025)


def generator_edges(edges: Sequence[float]) -> tuple[float, ...]:
    """Bucket edges of the generator-lag histograms: :data:`LAG_EDGES` ∪ the request edges (SLO thresholds included)."""
    return tuple(sorted(set(LAG_EDGES) | {float(e) for e in edges}))


_ERROR_INDEX = {name: i for i, name in enumerate(ERROR_TYPES)}
_STATUS_INDEX = {name: i for i, name in enumerate(STATUS_CLASSES)}
_STATUS_SLOT = {code: code // 100 for code in range(100, 600)}  # anything else: 0 ("none")
_N_STATUS = len(STATUS_CLASSES)
_N_ERRORS = len(ERROR_TYPES)
_KNOWN_STEPS = frozenset((*STEPS, NO_STEP))  # the bounded values of the third key (and the ``step`` label)
_Key = tuple[str, str, str]  # (name, method, step)


def _check_step(step: object) -> str:
    if not isinstance(step, str) or step not in _KNOWN_STEPS:
        raise ValueError(f"unknown journey step {step!r}; expected one of {', '.join(STEPS)} (or none)")
    return step


def _hdr_payload(blob: object, count: int, where: str, *, exact: bool) -> Decoded | None:
    """A row's encoded histogram checked through (None when absent): it must decode and hold the row's count (or at most it)."""
    if not blob:
        return None
    if not isinstance(blob, str | bytes):
        raise ValueError(f"{where}: expected a base64 HdrHistogram, got {type(blob).__name__}")
    try:
        d = read_encoded(blob)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    if d.total != count if exact else d.total > count:
        raise ValueError(f"{where}: holds {d.total} values, {'expected' if exact else 'more than'} the row's count {count}")
    return d


def _check_reasons(reasons: object, failures: int, where: str) -> None:
    """A delta row's ``reasons``: {message: non-negative count}, at most ``failures`` in all."""
    if not isinstance(reasons, dict):
        raise ValueError(f"{where}: reasons: expected an object of failure message counts, got {type(reasons).__name__}")
    total = 0
    for msg, n in reasons.items():
        if not isinstance(msg, str):
            raise ValueError(f"{where}: reasons: expected text messages, got {type(msg).__name__}")
        if len(msg) > MAX_MESSAGE_CHARS:
            raise ValueError(f"{where}: reasons: expected messages of at most {MAX_MESSAGE_CHARS} characters, got {len(msg)}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"{where}: reasons[{msg[:40]!r}]: expected a non-negative whole number, got {n!r}")
        total += n
    if total > failures:
        raise ValueError(f"{where}: reasons count {total} failures, more than the row's {failures}")


class _Series:
    """Counters of one (name, method, step); ``hdr`` is None in the totals layer.

    ``count`` and ``failures`` are derived (sum of buckets / of error types)
    so the hot path does two increments less. ``reasons`` (failure message →
    count, bounded by :data:`MAX_REASONS`) lives in the pending layer only.
    """

    __slots__ = ("status", "errors", "sum_s", "buckets", "hdr", "hdr_counts", "service", "reasons")

    def __init__(self, n_buckets: int, *, with_hdr: bool) -> None:
        self.status = [0] * _N_STATUS
        self.errors = [0] * _N_ERRORS
        self.sum_s = 0.0
        self.buckets = [0] * n_buckets  # non-cumulative; last one is +Inf
        self.hdr: HdrCounts | None = HdrCounts() if with_hdr else None
        self.hdr_counts: Any = self.hdr.counts if self.hdr is not None else []
        self.service: HdrCounts | None = None  # created on first service-time sample
        self.reasons: dict[str, int] = {}

    @property
    def count(self) -> int:
        return sum(self.buckets)

    @property
    def failures(self) -> int:
        return sum(self.errors)

    def add_counts(self, other: _Series) -> None:
        self.sum_s += other.sum_s
        for i, v in enumerate(other.status):
            self.status[i] += v
        for i, v in enumerate(other.errors):
            self.errors[i] += v
        for i, v in enumerate(other.buckets):
            self.buckets[i] += v


class _Lag:
    """One generator-lag histogram: count, sum, Prometheus buckets; ``hdr`` only in the pending layer."""

    __slots__ = ("count", "sum_s", "buckets", "hdr")

    def __init__(self, n_buckets: int, *, with_hdr: bool) -> None:
        self.count = 0
        self.sum_s = 0.0
        self.buckets = [0] * n_buckets
        self.hdr: HdrCounts | None = HdrCounts() if with_hdr else None


@dataclass(frozen=True, slots=True)
class LagTotals:
    """Cumulative view of one generator-lag histogram (``scheduler_lateness`` or ``response_handling_lag``)."""

    kind: str
    count: int
    sum_s: float
    cumulative_buckets: tuple[int, ...]  # one per generator edge, then +Inf (== count)


@dataclass(frozen=True, slots=True)
class SeriesTotals:
    """Cumulative view of one request series, as the exporter shows it."""

    name: str
    method: str
    step: str  # a journey step, or "" (NO_STEP) for a request outside the journey
    count: int
    failures: int
    status: dict[str, int]  # only classes seen
    errors: dict[str, int]  # every error type, zeros included
    sum_s: float
    cumulative_buckets: tuple[int, ...]  # one per edge, then +Inf (== count)


class StatsStore:
    """Request, business and arrival counters with a drain/merge delta protocol."""

    def __init__(self, *, edges: Sequence[float]) -> None:
        edges = tuple(float(e) for e in edges)
        if list(edges) != sorted(set(edges)) or not edges:
            raise ValueError(f"bucket edges must be non-empty, strictly increasing seconds, got {list(edges)}")
        self.edges: tuple[float, ...] = edges
        self._n_buckets = len(edges) + 1
        self._pending: dict[_Key, _Series] = {}
        self._totals: dict[_Key, _Series] = {}
        self._business = dict.fromkeys(BUSINESS_KEYS, 0)
        self._business_total = dict.fromkeys(BUSINESS_KEYS, 0)
        self._arrivals = dict.fromkeys(ARRIVAL_KEYS, 0)
        self._arrivals_total = dict.fromkeys(ARRIVAL_KEYS, 0)
        self.generator_edges: tuple[float, ...] = generator_edges(edges)
        self._n_lag = len(self.generator_edges) + 1
        self._lag: dict[str, _Lag] = {}
        self._lag_total: dict[str, _Lag] = {}
        # gauges, set by whoever knows them (the Locust bridge)
        self.users = 0
        self.workers = 0
        self.target_rate: float | None = None

    # ------------------------------------------------------------ hot path

    def record(
        self,
        name: str,
        method: str,
        seconds: float,
        status: int | None,
        error_type: str | None = None,
        service_seconds: float | None = None,
        step: str = NO_STEP,
        reason: str | None = None,
    ) -> None:
        """Count one request; ``error_type`` (one of ERROR_TYPES) marks a failure.

        ``service_seconds``: time from actual send, when ``seconds`` is measured
        from the intended start (open model); goes to ``service_hdr``.
        ``step``: the journey step (one of STEPS; ``""`` outside the journey); an
        unknown one raises ValueError and nothing is counted (checked once per series).
        ``reason``: the failure's short message (only counted with an ``error_type``).
        """
        key = (name, method, step)
        s = self._pending.get(key)
        if s is None:
            _check_step(step)
            s = self._pending[key] = _Series(self._n_buckets, with_hdr=True)
        s.sum_s += seconds
        s.buckets[bisect_left(self.edges, seconds)] += 1
        # HdrCounts.record_us inlined (one call less per request); see histogram.counts_index
        us = int(seconds * 1_000_000.0 + 0.5)
        if not 0 <= us <= HDR_HIGHEST_US:
            us = HDR_HIGHEST_US if us > 0 else 0
        b = (us | MASK).bit_length() - SHIFT
        s.hdr_counts[((b + 1) << HALF_MAG) + (us >> (b + UNIT_MAG)) - HALF_COUNT] += 1
        s.status[_STATUS_SLOT.get(status, 0)] += 1
        if error_type is not None:
            s.errors[_ERROR_INDEX[error_type]] += 1
            if reason is not None:
                add_reason(s.reasons, reason[:MAX_MESSAGE_CHARS], 1, limit=MAX_REASONS)
        if service_seconds is not None:
            if s.service is None:
                s.service = HdrCounts()
            s.service.record_us(int(service_seconds * 1_000_000.0 + 0.5))

    def record_generator(self, kind: str, seconds: float) -> None:
        """Count one generator-lag sample (``kind`` one of GENERATOR_KINDS; a negative value counts as 0)."""
        g = self._lag.get(kind)
        if g is None:
            if kind not in GENERATOR_KINDS:
                raise ValueError(f"unknown generator lag {kind!r}; expected one of {list(GENERATOR_KINDS)}")
            g = self._lag[kind] = _Lag(self._n_lag, with_hdr=True)
        if not seconds > 0:
            seconds = 0.0
        g.count += 1
        g.sum_s += seconds
        g.buckets[bisect_left(self.generator_edges, seconds)] += 1
        g.hdr.record_us(int(seconds * 1_000_000.0 + 0.5))  # type: ignore[union-attr]

    def add_business(self, key: str, n: int = 1) -> None:
        """Increment a business counter (one of BUSINESS_KEYS)."""
        try:
            self._business[key] += n
        except KeyError:
            raise ValueError(f"unknown business key {key!r}; expected one of {list(BUSINESS_KEYS)}") from None

    def add_arrivals(self, *, scheduled: int = 0, dropped: int = 0) -> None:
        """Count scheduled arrivals and those dropped for lack of a free user."""
        self._arrivals["scheduled"] += scheduled
        self._arrivals["dropped"] += dropped

    # ------------------------------------------------------------ delta protocol

    def drain_delta(self) -> dict[str, Any]:
        """Everything since the last drain as a JSON-safe dict; folds it into the totals.

        Shape: ``{"v", "edges", "requests": [{name, method[, step], count, failures, status,
        errors[, reasons], sum_s, buckets, hdr[, service_hdr]}], "business", "arrivals"[, "generator"]}``;
        ``step`` only for a journey step's series, ``reasons`` ({message: count}) only when it has some,
        ``generator`` ({kind: {count, sum_s, buckets, hdr}}) only when a generator-lag sample was taken.
        """
        pending, self._pending = self._pending, {}
        requests = []
        for key, s in sorted(pending.items()):
            name, method, step = key
            row: dict[str, Any] = {"name": name, "method": method}
            if step:
                row["step"] = step
            row |= {
                "count": s.count,
                "failures": s.failures,
                "status": {STATUS_CLASSES[i]: v for i, v in enumerate(s.status) if v},
                "errors": {ERROR_TYPES[i]: v for i, v in enumerate(s.errors) if v},
            }
            if s.reasons:
                row["reasons"] = s.reasons  # the series leaves the pending layer: no copy needed
            row |= {
                "sum_s": s.sum_s,
                "buckets": list(s.buckets),
                "hdr": s.hdr.encode() if s.hdr is not None else None,
            }
            if s.service is not None:
                row["service_hdr"] = s.service.encode()
            requests.append(row)
            self._fold(key, s)
        business, self._business = self._business, dict.fromkeys(BUSINESS_KEYS, 0)
        arrivals, self._arrivals = self._arrivals, dict.fromkeys(ARRIVAL_KEYS, 0)
        for k, v in business.items():
            self._business_total[k] += v
        for k, v in arrivals.items():
            self._arrivals_total[k] += v
        out: dict[str, Any] = {
            "v": DELTA_VERSION,
            "edges": list(self.edges),
            "requests": requests,
            "business": business,
            "arrivals": arrivals,
        }
        lag, self._lag = self._lag, {}
        if lag:
            out["generator"] = {
                kind: {"count": g.count, "sum_s": g.sum_s, "buckets": list(g.buckets), "hdr": g.hdr.encode()}  # type: ignore[union-attr]
                for kind, g in sorted(lag.items())
            }
            for kind, g in lag.items():
                t = self._lag_total.get(kind)
                if t is None:
                    t = self._lag_total[kind] = _Lag(self._n_lag, with_hdr=False)
                _add_lag(t, g.count, g.sum_s, g.buckets)
        return out

    def merge_delta(self, delta: Mapping[str, Any]) -> None:
        """Add a delta from :meth:`drain_delta` (another process) into the pending layer.

        Raises ValueError when the delta's version or bucket edges differ from
        this store's, or a row is malformed (``reasons`` must map messages of at most
        MAX_MESSAGE_CHARS to counts summing to at most the row's failures); nothing is merged then.
        """
        if delta.get("v") != DELTA_VERSION:
            raise ValueError(f"delta version: expected {DELTA_VERSION}, got {delta.get('v')!r}")
        edges = tuple(float(e) for e in delta.get("edges", ()))
        if edges != self.edges:
            raise ValueError(f"bucket edges differ: expected {list(self.edges)}, got {list(edges)}")
        payloads: list[tuple[Decoded | None, Decoded | None]] = []  # the rows' histograms, checked before anything is merged
        for row in delta.get("requests", ()):
            where = f"{row.get('method')} {row.get('name')}"
            try:
                _check_step(row.get("step", NO_STEP))  # absent: a row from a worker without steps
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if len(row["buckets"]) != self._n_buckets:
                raise ValueError(f"{where}: expected {self._n_buckets} buckets, got {len(row['buckets'])}")
            unknown = sorted(set(row["status"]) - set(STATUS_CLASSES)) + sorted(set(row["errors"]) - set(ERROR_TYPES))
            if unknown:
                raise ValueError(f"{where}: unknown status class or error type {unknown[0]!r}")
            if sum(row["buckets"]) != row["count"] or sum(row["errors"].values()) != row["failures"]:
                raise ValueError(f"{where}: count/failures do not match its buckets/errors")
            _check_reasons(row.get("reasons", {}), row["failures"], where)
            payloads.append((_hdr_payload(row.get("hdr"), row["count"], f"{where}: hdr", exact=True),
                             _hdr_payload(row.get("service_hdr"), row["count"], f"{where}: service_hdr", exact=False)))  # fmt: skip
        for key in delta.get("business", {}):
            if key not in self._business:
                raise ValueError(f"unknown business key {key!r}; expected one of {list(BUSINESS_KEYS)}")
        for key in delta.get("arrivals", {}):
            if key not in self._arrivals:
                raise ValueError(f"unknown arrivals key {key!r}; expected one of {list(ARRIVAL_KEYS)}")
        generator = delta.get("generator") or {}
        self._check_generator(generator)
        lag_payloads = {
            kind: _hdr_payload(row.get("hdr"), row["count"], f"generator {kind}: hdr", exact=True) for kind, row in generator.items()
        }
        # validated: now merge
        for row, (hdr, service_hdr) in zip(delta.get("requests", ()), payloads, strict=True):
            key = (row["name"], row["method"], row.get("step", NO_STEP))
            s = self._pending.get(key)
            if s is None:
                s = self._pending[key] = _Series(self._n_buckets, with_hdr=True)
            s.sum_s += row["sum_s"]
            for cls, v in row["status"].items():
                s.status[_STATUS_INDEX[cls]] += v
            for err, v in row["errors"].items():
                s.errors[_ERROR_INDEX[err]] += v
            for i, v in enumerate(row["buckets"]):
                s.buckets[i] += v
            for msg, v in row.get("reasons", {}).items():
                if v:
                    add_reason(s.reasons, msg, v, limit=MAX_REASONS)
            if hdr is not None:
                hdr.add_to(s.hdr.counts)  # type: ignore[union-attr]
            if service_hdr is not None:
                if s.service is None:
                    s.service = HdrCounts()
                service_hdr.add_to(s.service.counts)
        for k, v in delta.get("business", {}).items():
            self._business[k] += v
        for k, v in delta.get("arrivals", {}).items():
            self._arrivals[k] += v
        for kind, row in generator.items():
            g = self._lag.get(kind)
            if g is None:
                g = self._lag[kind] = _Lag(self._n_lag, with_hdr=True)
            _add_lag(g, row["count"], row["sum_s"], row["buckets"])
            if lag_payloads[kind] is not None:
                lag_payloads[kind].add_to(g.hdr.counts)  # type: ignore[union-attr]

    def _check_generator(self, generator: Any) -> None:
        if not isinstance(generator, dict):
            raise ValueError(f"generator: expected an object of lag histograms, got {type(generator).__name__}")
        for kind, row in generator.items():
            if kind not in GENERATOR_KINDS:
                raise ValueError(f"unknown generator lag {kind!r}; expected one of {list(GENERATOR_KINDS)}")
            if not isinstance(row, dict) or not isinstance(row.get("buckets"), list) or len(row["buckets"]) != self._n_lag:
                raise ValueError(f"generator {kind}: expected {self._n_lag} buckets")
            if sum(row["buckets"]) != row.get("count"):
                raise ValueError(f"generator {kind}: count does not match its buckets")

    def _fold(self, key: _Key, s: _Series) -> None:
        t = self._totals.get(key)
        if t is None:
            t = self._totals[key] = _Series(self._n_buckets, with_hdr=False)
        t.add_counts(s)

    # ------------------------------------------------------------ cumulative views

    def series_totals(self) -> Iterator[SeriesTotals]:
        """Cumulative (totals + pending) per (name, method, step), sorted by name, method, then step."""
        for key in sorted(set(self._totals) | set(self._pending)):
            acc = _Series(self._n_buckets, with_hdr=False)
            for layer in (self._totals, self._pending):
                s = layer.get(key)
                if s is not None:
                    acc.add_counts(s)
            running, cumulative = 0, []
            for v in acc.buckets:
                running += v
                cumulative.append(running)
            yield SeriesTotals(
                name=key[0],
                method=key[1],
                step=key[2],
                count=acc.count,
                failures=acc.failures,
                status={STATUS_CLASSES[i]: v for i, v in enumerate(acc.status) if v},
                errors={err: acc.errors[i] for i, err in enumerate(ERROR_TYPES)},
                sum_s=acc.sum_s,
                cumulative_buckets=tuple(cumulative),
            )

    def business_totals(self) -> dict[str, int]:
        """Cumulative business counters (every key, zeros included)."""
        return {k: self._business_total[k] + self._business[k] for k in BUSINESS_KEYS}

    def arrival_totals(self) -> dict[str, int]:
        """Cumulative ``scheduled`` / ``dropped`` arrivals."""
        return {k: self._arrivals_total[k] + self._arrivals[k] for k in ARRIVAL_KEYS}

    def generator_totals(self) -> dict[str, LagTotals]:
        """Cumulative (totals + pending) generator-lag histograms, only kinds with samples, in GENERATOR_KINDS order."""
        out = {}
        for kind in GENERATOR_KINDS:
            acc = _Lag(self._n_lag, with_hdr=False)
            for layer in (self._lag_total, self._lag):
                g = layer.get(kind)
                if g is not None:
                    _add_lag(acc, g.count, g.sum_s, g.buckets)
            if acc.count:
                running, cumulative = 0, []
                for v in acc.buckets:
                    running += v
                    cumulative.append(running)
                out[kind] = LagTotals(kind=kind, count=acc.count, sum_s=acc.sum_s, cumulative_buckets=tuple(cumulative))
        return out

    def pending_generator_hdr(self, kind: str) -> HdrCounts | None:
        """The not-yet-drained histogram of one generator lag (None if nothing pending)."""
        g = self._lag.get(kind)
        return g.hdr if g is not None else None

    def pending_hdr(self, name: str, method: str, step: str = NO_STEP) -> HdrCounts | None:
        """The not-yet-drained latency histogram of one series (None if nothing pending)."""
        s = self._pending.get((name, method, step))
        return s.hdr if s is not None else None


def _add_lag(acc: _Lag, count: int, sum_s: float, buckets: Sequence[int]) -> None:
    acc.count += count
    acc.sum_s += sum_s
    for i, v in enumerate(buckets):
        acc.buckets[i] += v
