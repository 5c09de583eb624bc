"""Fast reads of an HdrHistogram (the pure-Python library walks every counter).

Usage: ``percentiles(h, [50, 95, 99]) -> {50: µs, ...}`` — same values as
``h.get_value_at_percentile`` but one pass over the non-zero counters only.
"""

from __future__ import annotations

import re
from array import array

from hdrh.histogram import HdrHistogram

__all__ = ["nonzero", "percentiles"]

_RUNS = re.compile(rb"[^\x00]+")


def _nonzero_index(h: HdrHistogram) -> tuple[list[int], array]:
    # Only the counters between the recorded min and max can be non-zero.
    if not h.get_total_count():
        return [], array("Q")
    lo = h.get_counts_array_index(h.get_min_value())
    hi = min(h.get_counts_array_index(h.get_max_value()) + 1, h.counts_len)
    raw = memoryview(h.counts).cast("B")[lo * 8:hi * 8].tobytes()
    counts = array("Q", raw)
    idx: list[int] = []
    last = -1
    for m in _RUNS.finditer(raw):
        for i in range(m.start() // 8, (m.end() - 1) // 8 + 1):
            if i > last:
                idx.append(i)
                last = i
    return idx, counts


def _value(h: HdrHistogram, lo: int, i: int) -> int:
    return h.get_highest_equivalent_value(h.get_value_from_index(lo + i))


def nonzero(h: HdrHistogram) -> list[tuple[int, int]]:
    """(value µs at the top of the bucket, count) for every non-empty bucket, ascending."""
    idx, counts = _nonzero_index(h)
    lo = h.get_counts_array_index(h.get_min_value()) if idx else 0
    return [(_value(h, lo, i), counts[i]) for i in idx if counts[i]]


def percentiles(h: HdrHistogram, ps: list[float]) -> dict[float, int | None]:
    total = h.get_total_count()
    if not total:
        return {p: None for p in ps}
    targets = sorted((max(1, int(min(p, 100.0) / 100.0 * total + 0.5)), p) for p in ps)
    out: dict[float, int | None] = {}
    running = 0
    k = 0
    idx, counts = _nonzero_index(h)
    lo = h.get_counts_array_index(h.get_min_value())
    nxt = targets[0][0]
    for i in idx:
        running += counts[i]
        if running < nxt:
            continue
        value = _value(h, lo, i)
        while k < len(targets) and running >= targets[k][0]:
            out[targets[k][1]] = value
            k += 1
        if k == len(targets):
            break
        nxt = targets[k][0]
        if k == len(targets):
            break
    return out
