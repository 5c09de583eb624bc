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


class Range(Model):
    min: float = Field(ge=0, le=86_400)
    max: float = Field(ge=0, le=86_400)

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if self.max < self.min:
            raise ValueError(f"max ({self.max}) must be >= min ({self.min})")
        return self
