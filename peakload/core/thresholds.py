"""Thresholds (``p95 < 300ms`` on a scope) and the metric table they are parsed against.

Usage::

    t = parse_threshold("GET /api/home", "p95 < 2s")   # Threshold(metric="p95", value=2.0, ...)
    unit_of("error_ratio")                              # "ratio"
    format_value("p95", 0.2512)                         # "251.2ms"
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Literal, cast

from pydantic import Field

from peakload.core.fields import Duration, Model

__all__ = [
    "Threshold",
    "ThresholdEntry",
    "parse_threshold",
    "LATENCY_METRICS",
    "RATIO_METRICS",
    "COUNT_METRICS",
    "RATE_METRICS",
    "BUSINESS_METRICS",
    "unit_of",
    "format_value",
]

# ---------------------------------------------------------------- thresholds

_THRESHOLD_RE = re.compile(r"^\s*([a-z_]+(?:\d+(?:\.\d+)?)?)\s*(<=|>=|==|<|>)\s*([-+]?\d+(?:\.\d+)?)\s*(ms|s|%)?\s*$")
LATENCY_METRICS = re.compile(r"^(p\d+(?:\.\d+)?|avg|max|min)$")
RATIO_METRICS = {"error_ratio", "dropped_ratio", "payment_success_ratio"}
COUNT_METRICS = {"oversold", "duplicates", "payments_mismatch", "requests", "failures", "dropped"}
RATE_METRICS = {"rps", "orders_per_s"}


Op = Literal["<", "<=", ">", ">=", "=="]


class Threshold(Model):
    """``p95 < 300ms`` on one request name (``scope``), all requests (``all``) or the run (``business``)."""

    scope: str  # "all", "business", or "METHOD /route/template"
    metric: str
    op: Literal["<", "<=", ">", ">=", "=="]
    value: float  # seconds for latency, 0..1 for ratios
    abort: bool = False
    grace: float = 0.0
    source: str = "profile"  # or "slo:<name>"

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
        return f"{self.scope}: {self.expr}"


def parse_threshold(scope: str, expr: str, *, abort: bool = False, grace: float = 0.0, source: str = "profile") -> Threshold:
    """``parse_threshold("GET /api/home", "p95 < 2s")`` → :class:`Threshold`."""
    m = _THRESHOLD_RE.match(expr)
    if not m:
        raise ValueError(f"expected '<metric> <op> <value>' like 'p95 < 300ms', got {expr!r}")
    metric, op, number, unit = m.groups()
    value = float(number)
    if not math.isfinite(value) or len(number) > 30:
        raise ValueError(f"expected a finite number of at most 30 digits in {expr!r}")
    if value < 0:
        raise ValueError(f"{metric} cannot be negative; got {number} in {expr!r}")
    if LATENCY_METRICS.match(metric):
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
    return Threshold(scope=scope, metric=metric, op=cast(Op, op), value=value, abort=abort, grace=grace, source=source)


class ThresholdEntry(Model):
    expr: str = Field(max_length=200)
    abort: bool = False
    grace: Annotated[Duration, Field(le=86_400)] = 0.0


# metrics judged on the whole run (business scope) rather than on request rows
BUSINESS_METRICS = {"orders_per_s", "payment_success_ratio", "oversold", "duplicates", "payments_mismatch", "dropped", "dropped_ratio"}


def unit_of(metric: str) -> str:
    """The unit a metric's values are in: ``s``, ``ratio``, ``1/s`` or ``count``."""
    if LATENCY_METRICS.match(metric):
        return "s"
    if metric in RATIO_METRICS:
        return "ratio"
    if metric in RATE_METRICS:
        return "1/s"
    return "count"


def format_value(metric: str, value: float | None) -> str:
    """A metric's value as a person reads it; ``n/a`` when the run could not give it."""
    if value is None:
        return "n/a"
    unit = unit_of(metric)
    if unit == "s":
        return f"{value * 1000:.1f}ms"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    if unit == "1/s":
        return f"{value:.2f}/s"
    return f"{value:g}"
