"""Fast reads of an HdrHistogram (the pure-Python library walks every counter).

Usage: ``percentiles(h, [50, 95, 99]) -> {50: µs, ...}`` — same values as
``h.get_value_at_percentile`` but one pass over the non-zero counters only.
``decode_add`` (adding an encoded histogram in C) lives in exporters.histogram,
which the master's merge uses too; it is re-exported here.
"""

from __future__ import annotations

from array import array
from itertools import compress

from hdrh.histogram import HdrHistogram

from exporters.histogram import decode_add

__all__ = ["nonzero", "percentiles", "decode_add"]


def _nonzero_index(h: HdrHistogram) -> tuple[list[int], array]:
    """Indices (relative to the min value's index) of non-zero counters, and the counters of that range."""
    # Only the counters between the recorded min and max can be non-zero.
    if not h.get_total_count():
        return [], array("Q")
    lo = h.get_counts_array_index(h.get_min_value())
    hi = min(h.get_counts_array_index(h.get_max_value()) + 1, h.counts_len)
    counts = array("Q")
    counts.frombytes(memoryview(h.counts).cast("B")[lo * 8 : hi * 8])
    return list(compress(range(len(counts)), counts)), counts


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
    # HdrHistogram's own rank, to the float operation: p / 100 * total rounds differently
    # (N=5000, p99.99 gave the second-largest value instead of the largest)
    targets = sorted((max(1, int(min(p, 100.0) * total / 100 + 0.5)), p) for p in ps)
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
