"""Thresholds (``p95 < 300ms`` on a scope) and the metric table they are parsed against.

Usage::

    t = parse_threshold("GET /api/home", "p95 < 2s")   # Threshold(metric="p95", value=2.0, ...)
    parse_threshold("step:checkout", "error_ratio < 0.1%")  # a journey step's requests, on any platform
    check_scope("step:chekout")                         # ValueError naming the known steps
    unit_of("error_ratio")                              # "ratio"
    parse_threshold("all", "p95 < 300ms", during="plateau")  # judged on that stage's intervals only
    parse_window(during="00:30..01:00")                 # Window(kind="during", start=30.0, end=60.0)
    format_value("p95", 0.2512)                         # "251.2ms"
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Literal, cast

from pydantic import Field

from peakload.core.fields import Duration, Model
from peakload.core.steps import check_step, step_scope

__all__ = [
    "Threshold",
    "ThresholdEntry",
    "Window",
    "parse_window",
    "MetricSpec",
    "METRICS",
    "metric",
    "parse_threshold",
    "check_scope",
    "LATENCY_METRICS",
    "RATIO_METRICS",
    "COUNT_METRICS",
    "RATE_METRICS",
    "BUSINESS_METRICS",
    "unit_of",
    "format_value",
    "SERVER_SCOPE",
]

# ---------------------------------------------------------------- thresholds

_THRESHOLD_RE = re.compile(r"^\s*([a-z_]+(?:\d+(?:\.\d+)?)?)\s*(<=|>=|==|<|>)\s*([-+]?\d+(?:\.\d+)?)\s*(ms|s|%)?\s*$")
LATENCY_METRICS = re.compile(r"^(p\d+(?:\.\d+)?|avg|max|min)$")

Kind = Literal["latency", "ratio", "count", "rate"]
_UNITS: dict[str, str] = {"latency": "s", "ratio": "ratio", "count": "count", "rate": "1/s"}


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One row of the metric table: what a threshold metric is and where it is judged.

    ``scope`` "request" metrics are computed from request rows (a name, a step, or all);
    "business" ones from the whole run; ``reconciled`` names the books fields a business
    metric is computed from, ``steps`` the journey steps whose outcomes it counts (a
    platform that cannot give those fields or does not offer those steps makes it n/a).
    """

    name: str
    kind: Kind
    scope: Literal["request", "business"]
    reconciled: tuple[str, ...] = ()
    steps: tuple[str, ...] = ()

    @property
    def unit(self) -> str:
        return _UNITS[self.kind]


# The metric table: parsing, the gate, capacity and formatting all read it. Latency percentiles
# (p50, p99.9, ...) are one family matched by LATENCY_METRICS; see metric().
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("avg", "latency", "request"),
        MetricSpec("max", "latency", "request"),
        MetricSpec("min", "latency", "request"),
        MetricSpec("requests", "count", "request"),
        MetricSpec("failures", "count", "request"),
        MetricSpec("error_ratio", "ratio", "request"),
        MetricSpec("rps", "rate", "request"),
        MetricSpec("orders_per_s", "rate", "business", steps=("checkout",)),
        MetricSpec("payment_success_ratio", "ratio", "business", steps=("pay",)),
        MetricSpec("dropped", "count", "business"),
        MetricSpec("dropped_ratio", "ratio", "business"),
        MetricSpec("oversold", "count", "business", reconciled=("oversold_units",)),
        MetricSpec("duplicates", "count", "business", reconciled=("duplicate_orders", "duplicate_charges")),
        MetricSpec("payments_mismatch", "count", "business", reconciled=("payments_succeeded", "orders_paid"), steps=("pay",)),
    )
}


def metric(name: str) -> MetricSpec | None:
    """The table row for a metric name (any percentile ``pNN`` is a request latency); None when unknown."""
    if name in METRICS:
        return METRICS[name]
    if LATENCY_METRICS.match(name):
        return MetricSpec(name, "latency", "request")
    return None


def _of_kind(kind: str) -> set[str]:
    return {m.name for m in METRICS.values() if m.kind == kind}


RATIO_METRICS = _of_kind("ratio")
COUNT_METRICS = _of_kind("count")
RATE_METRICS = _of_kind("rate")
# metrics judged on the whole run (business scope) rather than on request rows
BUSINESS_METRICS = {m.name for m in METRICS.values() if m.scope == "business"}


Op = Literal["<", "<=", ">", ">=", "=="]

# ---------------------------------------------------------------- windows (during: / after:)

_CLOCK = r"(\d{1,4}):([0-5]\d)"  # MM:SS from the run's start (minutes may exceed 59: 90:00)
_SPAN_RE = re.compile(rf"^\s*{_CLOCK}\s*\.\.\s*{_CLOCK}\s*$")
_AT_RE = re.compile(rf"^\s*{_CLOCK}\s*$")


def _clock(mm: str, ss: str) -> float:
    return float(int(mm) * 60 + int(ss))


def _mmss(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60:02d}:{s % 60:02d}"


class Window(Model):
    """The part of a run a threshold is judged on: a stage (``during: plateau``), a span of offsets
    from the run's start (``during: 00:30..01:00``), or from a stage's end (or an offset) to the run's
    end (``after: warm``, ``after: 01:00``). ``stage`` names a stage; otherwise ``start``/``end`` are
    seconds from the start (``end`` None: the run's end)."""

    kind: Literal["during", "after"]
    stage: str | None = None
    start: float | None = None
    end: float | None = None

    @property
    def text(self) -> str:
        if self.stage is not None:
            return f"{self.kind} {self.stage}"
        assert self.start is not None
        if self.kind == "after":
            return f"after {_mmss(self.start)}"
        assert self.end is not None
        return f"during {_mmss(self.start)}..{_mmss(self.end)}"


def parse_window(*, during: str | None = None, after: str | None = None) -> Window | None:
    """``during`` (a stage name or ``MM:SS..MM:SS``) or ``after`` (a stage name or ``MM:SS``) as a
    :class:`Window`; None when neither is given; ValueError naming the field otherwise."""
    if during is not None and after is not None:
        raise ValueError("give during or after, not both")
    if during is not None:
        text = during.strip()
        m = _SPAN_RE.match(text)
        if m:
            start, end = _clock(*m.groups()[:2]), _clock(*m.groups()[2:])
            if end <= start:
                raise ValueError(f"during: the window {during!r} ends before it starts (expected MM:SS..MM:SS, start < end)")
            return Window(kind="during", start=start, end=end)
        if ".." in text or _AT_RE.match(text):
            raise ValueError(f"during: expected a stage name or MM:SS..MM:SS (00:30..01:00), got {during!r}")
        if not text:
            raise ValueError("during: expected a stage name or MM:SS..MM:SS, got an empty string")
        return Window(kind="during", stage=text)
    if after is not None:
        text = after.strip()
        m = _AT_RE.match(text)
        if m:
            return Window(kind="after", start=_clock(*m.groups()))
        if ".." in text or not text:
            raise ValueError(f"after: expected a stage name or one MM:SS offset (01:00), got {after!r}")
        return Window(kind="after", stage=text)
    return None


class Threshold(Model):
    """``p95 < 300ms`` on one request name (``scope``), a journey step (``step:checkout``), all requests
    (``all``) or the run (``business``)."""

    scope: str  # "all", "business", "step:<journey step>", or "METHOD /route/template" (or a bare route)
    metric: str
    op: Literal["<", "<=", ">", ">=", "=="]
    value: float  # seconds for latency, 0..1 for ratios
    abort: bool = False
    grace: float = 0.0
    source: str = "profile"  # or "slo:<name>"
    window: Window | None = None  # judged on that part of the run only (None: the whole run)

    @property
    def expr(self) -> str:
        if LATENCY_METRICS.match(self.metric):
            shown = f"{self.value * 1000:g}ms"
        elif self.metric in RATIO_METRICS:
            shown = f"{self.value * 100:g}%"
        else:
            shown = f"{self.value:g}"
        return f"{self.metric} {self.op} {shown}"

    @property
    def id(self) -> str:
        suffix = f" {self.window.text}" if self.window is not None else ""
        return f"{self.scope}: {self.expr}{suffix}"


SERVER_SCOPE = "server"  # thresholds on the target's own figures (server.jsonl), judged in every interval


def check_scope(scope: str) -> str:
    """``scope`` when it is a usable threshold scope; ValueError for a ``step:`` scope naming no journey step.

    Usage: ``check_scope("step:checkout")`` → ``"step:checkout"``; request names, ``all`` and
    ``business`` pass unchanged (a name the run never sends is judged, not refused).
    """
    step = step_scope(scope)
    if step is not None:
        try:
            check_step(step)
        except ValueError as exc:
            raise ValueError(f"scope {scope!r}: {exc}") from None
    return scope


def parse_threshold(
    scope: str,
    expr: str,
    *,
    abort: bool = False,
    grace: float = 0.0,
    source: str = "profile",
    during: str | None = None,
    after: str | None = None,
) -> Threshold:
    """``parse_threshold("GET /api/home", "p95 < 2s")`` → :class:`Threshold`; the scope is checked by :func:`check_scope`,
    ``during``/``after`` by :func:`parse_window` (a stage name is checked against the profile by the profile)."""
    check_scope(scope)
    window = parse_window(during=during, after=after)
    m = _THRESHOLD_RE.match(expr)
    if not m:
        raise ValueError(f"expected '<metric> <op> <value>' like 'p95 < 300ms', got {expr!r}")
    metric, op, number, unit = m.groups()
    value = float(number)
    if not math.isfinite(value) or len(number) > 30:
        raise ValueError(f"expected a finite number of at most 30 digits in {expr!r}")
    if value < 0:
        raise ValueError(f"{metric} cannot be negative; got {number} in {expr!r}")
    if scope == SERVER_SCOPE:
        if abort:
            raise ValueError(f"{expr!r}: server figures are judged after the run, not live; abort is not available on them")
        # a figure of the target's own (the profile's `server` section names them): ms/s are seconds, % a ratio
        if unit in ("ms", "s"):
            value = value / 1000 if unit == "ms" else value
        elif unit == "%":
            value = value / 100
    elif LATENCY_METRICS.match(metric):
        if unit not in ("ms", "s"):
            raise ValueError(f"latency threshold {expr!r} needs a unit: ms or s")
        value = value / 1000 if unit == "ms" else value
        if metric.startswith("p") and not 0 < float(metric[1:]) < 100:
            raise ValueError(f"percentile in {expr!r} must be between 0 and 100")
        if value > 3600:
            raise ValueError(f"latency limit in {expr!r} is above 1h, the longest latency the histograms record")
    elif metric in RATIO_METRICS:
        if unit not in (None, "%"):
            raise ValueError(f"{metric} is a ratio: give a plain number 0..1 or a percentage, not {unit!r} in {expr!r}")
        value = value / 100 if unit == "%" else value
        if not 0 <= value <= 1:
            raise ValueError(f"ratio in {expr!r} must be within 0..1 (or 0%..100%)")
    elif metric in COUNT_METRICS | RATE_METRICS:
        if unit:
            raise ValueError(f"{metric} takes a plain number, got unit {unit!r} in {expr!r}")
    else:
        known = ["p50", "p95", "p99", "avg", "max", *sorted(RATIO_METRICS | COUNT_METRICS | RATE_METRICS)]
        raise ValueError(f"unknown metric {metric!r} in {expr!r}; expected one of {known}")
    return Threshold(scope=scope, metric=metric, op=cast(Op, op), value=value, abort=abort, grace=grace, source=source, window=window)


class ThresholdEntry(Model):
    expr: str = Field(max_length=200)
    abort: bool = False
    grace: Annotated[Duration, Field(le=86_400)] = 0.0
    during: str | None = Field(default=None, max_length=200)  # a stage name or MM:SS..MM:SS
    after: str | None = Field(default=None, max_length=200)  # a stage name or MM:SS


def unit_of(name: str) -> str:
    """The unit a metric's values are in: ``s``, ``ratio``, ``1/s`` or ``count``."""
    spec = metric(name)
    return spec.unit if spec is not None else "count"


def format_value(name: str, value: float | None) -> str:
    """A metric's value as a person reads it; ``n/a`` when the run could not give it."""
    if value is None:
        return "n/a"
    unit = unit_of(name)
    if unit == "s":
        return f"{value * 1000:.1f}ms"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "1/s":
        return f"{value:.2f}/s"
    return f"{value:g}"
