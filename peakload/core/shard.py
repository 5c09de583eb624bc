"""Shards: several Locust masters that share one arrival schedule (``--shard I/N``, ``--start-at``).

A *shard* is one Locust master and its workers. Shard ``I`` of ``N`` (0-based:
``0/3``, ``1/3``, ``2/3``) with ``W`` local workers gives its worker ``w`` the
global slot ``I + N·w`` of ``N·W`` (:meth:`Shard.slot`): the shard takes the
arrivals ``k ≡ I (mod N)`` of the global schedule and its workers take every
``W``-th of those, so the union over every shard and worker is the global
schedule, arrival for arrival, whatever ``W`` each shard has. Every shard starts
its schedule at one wall-clock instant (``--start-at``).

Usage::

    shard = parse_shard("1/3")                  # Shard(index=1, of=3); ValueError with a one-line message
    shard.slot(worker=0, workers=2)             # (1, 6): the slot and slot count of local worker 0
    t0 = parse_start_at("2026-12-03T10:50:00Z") # epoch seconds; check_start_at(t0) refuses the past and > 24 h ahead
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Shard",
    "parse_shard",
    "parse_start_at",
    "check_start_at",
    "MAX_SHARDS",
    "MAX_START_AHEAD_S",
    "START_PAST_SLACK_S",
]

MAX_SHARDS = 10_000
MAX_START_AHEAD_S = 24 * 3600.0
START_PAST_SLACK_S = 1.0  # clocks and a slow shell: a start this little in the past is still "now"

_SHARD_RE = re.compile(r"^\s*(\d{1,9})\s*/\s*(\d{1,9})\s*$")


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (0-based) of ``of`` masters sharing one schedule."""

    index: int
    of: int

    def __post_init__(self) -> None:
        if not 1 <= self.of <= MAX_SHARDS or not 0 <= self.index < self.of:
            raise ValueError(f"expected a shard I/N with 0 <= I < N <= {MAX_SHARDS}, got {self.index}/{self.of}")

    def __str__(self) -> str:
        return f"{self.index}/{self.of}"

    def slot(self, *, worker: int, workers: int) -> tuple[int, int]:
        """The global ``(slot, of)`` of local worker ``worker`` of ``workers`` (``I + N·w`` of ``N·W``)."""
        if not 0 <= worker < workers:
            raise ValueError(f"worker must be within 0..{workers - 1}, got {worker}")
        return self.index + self.of * worker, self.of * workers

    def to_json(self) -> dict[str, int]:
        return {"index": self.index, "of": self.of}

    @classmethod
    def from_json(cls, data: Any) -> Shard | None:
        """A run.json ``shard`` object, or None when it is not one."""
        if not isinstance(data, dict):
            return None
        index, of = data.get("index"), data.get("of")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (index, of)):
            return None
        try:
            return cls(index=index, of=of)  # type: ignore[arg-type]
        except ValueError:
            return None


def parse_shard(text: str) -> Shard:
    """``"I/N"`` (0-based: the shards of 3 are 0/3, 1/3 and 2/3) -> :class:`Shard`; ValueError in one line.

    Usage: ``parse_shard("2/3")`` -> ``Shard(index=2, of=3)``; ``parse_shard("3/3")`` is refused (0-based).
    """
    m = _SHARD_RE.match(text)
    if m is None:
        raise ValueError(f"expected I/N, a 0-based shard index and the shard count (0/3, 1/3, 2/3), got {text[:40]!r}")
    index, of = int(m.group(1)), int(m.group(2))
    if of < 1:
        raise ValueError(f"expected at least 1 shard (I/N with N >= 1), got {text.strip()!r}")
    if of > MAX_SHARDS:
        raise ValueError(f"expected at most {MAX_SHARDS} shards, got {of}")
    if index == of:
        raise ValueError(f"shard indexes are 0-based (0/{of} .. {of - 1}/{of}), got {index}/{of}; the last shard is {of - 1}/{of}")
    if index > of:
        raise ValueError(f"expected a shard index below the shard count (0/{of} .. {of - 1}/{of}), got {index}/{of}")
    return Shard(index=index, of=of)


def parse_start_at(text: str) -> float:
    """An ISO-8601 instant with its offset (``2026-12-03T10:50:00Z``, ``...+01:00``) or epoch seconds -> epoch seconds.

    A time without an offset is refused: every shard must read the same instant, whatever its host's zone.
    """
    raw = text.strip()
    try:
        value = float(raw)
    except ValueError:
        pass
    else:
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"expected epoch seconds > 0 or an ISO-8601 UTC instant, got {raw[:40]!r}")
        return value
    try:
        when = dt.datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"expected an ISO-8601 UTC instant like 2026-12-03T10:50:00Z or epoch seconds, got {raw[:40]!r}") from None
    if when.tzinfo is None:
        raise ValueError(f"expected an instant with its zone (Z or +00:00), got {raw[:40]!r} (every shard must read the same instant)")
    return when.timestamp()


def check_start_at(at: float, *, now: float | None = None) -> float:
    """``at`` (epoch s) if it lies from 1 s ago to 24 h ahead; ValueError otherwise."""
    now = time.time() if now is None else now
    iso = dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if at < now - START_PAST_SLACK_S:
        raise ValueError(f"{iso} is {now - at:.1f}s in the past; expected a start in the future (every shard waits for it)")
    if at > now + MAX_START_AHEAD_S:
        raise ValueError(f"{iso} is {(at - now) / 3600:.1f} h ahead; expected at most 24 h ahead")
    return at
