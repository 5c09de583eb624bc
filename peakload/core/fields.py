"""Shared building blocks of every config model: the versioned base model, durations, bounded field types.

Usage::

    parse_duration("1m30s")   # 90.0 (finite, at most a year; ValueError otherwise)

    class MySpec(Model):       # frozen, extra fields refused, no inf/nan in float fields
        window: Duration = 60.0
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

__all__ = ["VERSION", "MAX_DURATION_S", "MAX_USERS", "MAX_RATE", "parse_duration", "Duration", "Model", "Name", "Ratio", "Range"]

VERSION = "peakload/v1"

MAX_DURATION_S = 366 * 86400.0  # one year: anything longer is a typo, not a load test
_DURATION_RE = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*(?:(\d+(?:\.\d+)?)s)?\s*(?:(\d+(?:\.\d+)?)ms)?\s*$"
)


def parse_duration(value: Any) -> float:
    """``"1m30s"`` / ``"250ms"`` / ``"2h"`` / ``45`` → seconds (float), finite and at most a year."""
    seconds: float | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and len(value) <= 64:
        m = _DURATION_RE.match(value)
        if m and any(m.groups()):
            d, h, mi, s, ms = (float(g) if g else 0.0 for g in m.groups())
            seconds = d * 86400 + h * 3600 + mi * 60 + s + ms / 1000
    if seconds is None:
        shown = value if not isinstance(value, str) or len(value) <= 64 else value[:60] + "…"
        raise ValueError(f"expected a duration like '30s', '2m' or '250ms', got {shown!r}")
    if not math.isfinite(seconds):
        raise ValueError(f"expected a finite duration, got {value!r}")
    if seconds < 0:
        raise ValueError(f"expected a non-negative duration, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"expected a duration of at most 366d, got {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


class Model(BaseModel):
    # allow_inf_nan=False: `.inf`/`.nan` in YAML are refused by every float field, naming the field
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


Name = Annotated[str, Field(max_length=200)]
# Sane ceilings: far above any real test on one fleet, low enough to catch a typo'd exponent.
MAX_USERS = 10_000_000
MAX_RATE = 10_000_000.0  # journeys (or requests) per second


Ratio = Annotated[float, Field(ge=0, le=1)]


_QUANTILE_KEY = re.compile(r"^p(\d{1,2}(?:\.\d{1,3})?)$")


class Range(Model):
    """A bounded distribution: uniform on ``[min, max]``, or the empirical one its ``quantiles`` give.

    ``quantiles`` (``{p10: 0.4, p50: 0.7, p90: 1.1}``, keys ``p0 < p < p100``)
    are points of the inverse CDF between ``min`` (p0) and ``max`` (p100);
    :meth:`sample` interpolates linearly between them (what ``peakload profile
    fit`` writes from a log's think times and session lengths).
    """

    min: float = Field(ge=0, le=86_400)
    max: float = Field(ge=0, le=86_400)
    quantiles: dict[str, Annotated[float, Field(ge=0, le=86_400)]] | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        last_p, last_v = 0.0, self.min
        for p, v in self._points()[1:-1]:
            if v < last_v:
                raise ValueError(f"quantiles must not decrease: p{p * 100:g} ({v:g}) is below p{last_p * 100:g} ({last_v:g})")
            last_p, last_v = p, v
        if last_v > self.max:
            raise ValueError(f"quantile p{last_p * 100:g} ({last_v:g}) is above max ({self.max:g})")
        return self

    def _points(self) -> list[tuple[float, float]]:
        """(probability, value) from p0 = min to p100 = max."""
        pts = [(0.0, self.min)]
        for key, value in (self.quantiles or {}).items():
            m = _QUANTILE_KEY.match(key)
            if m is None or not 0 < float(m.group(1)) < 100:
                raise ValueError(f"quantile key {key!r}: expected p1..p99 (like p50 or p99.9)")
            pts.append((float(m.group(1)) / 100.0, value))
        pts.sort()
        pts.append((1.0, self.max))
        return pts

    @property
    def mean(self) -> float:
        """The distribution's mean (the trapezoid rule over the inverse CDF)."""
        pts = self._points()
        return sum((p1 - p0) * (v0 + v1) / 2 for (p0, v0), (p1, v1) in zip(pts, pts[1:]))

    def value_at(self, u: float) -> float:
        """The inverse CDF at ``u`` in [0, 1]."""
        if not self.quantiles:
            return self.min + (self.max - self.min) * u
        pts = self._points()
        for (p0, v0), (p1, v1) in zip(pts, pts[1:]):
            if u <= p1:
                return v0 if p1 == p0 else v0 + (v1 - v0) * (u - p0) / (p1 - p0)
        return self.max

    def sample(self, rng: Any) -> float:
        """One draw with ``rng`` (a ``random.Random``)."""
        if not self.quantiles:
            return float(rng.uniform(self.min, self.max))
        return self.value_at(rng.random())

    def sample_int(self, rng: Any) -> int:
        """One whole-number draw: ``randint(min, max)`` when uniform, else the rounded empirical draw."""
        if not self.quantiles:
            return int(rng.randint(int(self.min), int(self.max)))
        return int(math.floor(self.value_at(rng.random()) + 0.5))
