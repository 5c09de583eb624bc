"""Latency histograms: Prometheus bucket edges and a cheap HdrHistogram recorder.

Usage::

    edges = bucket_edges(slo=load_slo_spec("profiles/slo.yaml"))
    hdr = HdrCounts()
    hdr.record_us(12_345)
    blob = hdr.encode()            # base64 text, HdrHistogram V2 wire format
    p99_us = decode_hdr(blob).get_value_at_percentile(99)

``HdrCounts`` keeps the HdrHistogram counts array as a plain Python list and
computes the counts index inline (the same arithmetic as ``hdrh``), because
``HdrHistogram.record_value`` costs about 5x more per call and runs on every
request. ``encode()`` builds a real ``HdrHistogram`` only at drain time, so the
wire format is the library's own and any HdrHistogram reader can decode it.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import compress
from typing import TYPE_CHECKING

from hdrh.histogram import HdrHistogram

if TYPE_CHECKING:
    from peakload.core import SLOSpec

__all__ = [
    "HDR_LOWEST_US",
    "HDR_HIGHEST_US",
    "HDR_SIGNIFICANT_FIGURES",
    "DEFAULT_BUCKETS",
    "bucket_edges",
    "HdrCounts",
    "counts_index",
    "new_hdr",
    "decode_hdr",
]

# contracts §5: 1 µs .. 1 h, 3 significant digits
HDR_LOWEST_US = 1
HDR_HIGHEST_US = 3_600_000_000
HDR_SIGNIFICANT_FIGURES = 3

# Prometheus' defaults, denser where shop pages live (100 ms .. 3 s), plus the
# SLO thresholds in profiles/slo.yaml (0.3 s, 2 s) so the SLO recording rules
# work even when the spec cannot be read.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
    0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 5.0, 7.5, 10.0,
)  # fmt: skip


def bucket_edges(*, slo: SLOSpec | None = None, extra: Iterable[float] = ()) -> tuple[float, ...]:
    """Sorted histogram upper bounds in seconds: defaults ∪ SLO latency thresholds ∪ ``extra``.

    Usage: ``bucket_edges(slo=spec)`` → ``(0.005, ..., 0.3, ..., 2.0, ..., 10.0)``
    """
    edges = set(DEFAULT_BUCKETS)
    if slo is not None:
        edges.update(float(t) for t in slo.latency_thresholds())
    edges.update(float(e) for e in extra)
    bad = [e for e in edges if not e > 0 or e == float("inf")]
    if bad:
        raise ValueError(f"bucket edges must be finite and > 0 seconds, got {sorted(bad)}")
    return tuple(sorted(edges))


def new_hdr() -> HdrHistogram:
    """An empty HdrHistogram with the contract settings (µs, 1..3.6e9, 3 digits)."""
    return HdrHistogram(HDR_LOWEST_US, HDR_HIGHEST_US, HDR_SIGNIFICANT_FIGURES)


def decode_hdr(blob: str | bytes) -> HdrHistogram:
    """Decode a base64 blob from a snapshot (``hdr`` field) into an HdrHistogram (µs)."""
    return HdrHistogram.decode(blob.encode("ascii") if isinstance(blob, str) else blob)


# The counts-array geometry of the contract histogram (what hdrh derives in __init__).
_TEMPLATE = new_hdr()
COUNTS_LEN: int = _TEMPLATE.counts_len
MASK: int = _TEMPLATE.sub_bucket_mask
UNIT_MAG: int = _TEMPLATE.unit_magnitude
HALF_MAG: int = _TEMPLATE.sub_bucket_half_count_magnitude
HALF_COUNT: int = _TEMPLATE.sub_bucket_half_count
SHIFT: int = UNIT_MAG + HALF_MAG + 1  # bucket index = bit_length - SHIFT
del _TEMPLATE


class HdrCounts:
    """HdrHistogram counts in a Python list; record is a few integer operations.

    Not thread-safe (meant for one gevent hub). Values are microseconds;
    negative values count as 0 and values above 1 h as 1 h, so nothing recorded
    is silently lost. :meth:`StatsStore.record` inlines :meth:`record_us` on
    ``counts`` (same arithmetic, see :func:`counts_index`) to save a call.
    """

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: list[int] = [0] * COUNTS_LEN

    @property
    def total(self) -> int:
        """Number of recorded values."""
        return sum(self.counts)

    def record_us(self, us: int) -> None:
        """Count one value in microseconds (int)."""
        self.counts[counts_index(us)] += 1

    def add_histogram(self, hist: HdrHistogram) -> None:
        """Add the counts of an ``HdrHistogram`` with the contract settings."""
        if hist.counts_len != COUNTS_LEN or hist.unit_magnitude != UNIT_MAG or hist.sub_bucket_half_count_magnitude != HALF_MAG:
            raise ValueError(
                "hdr settings differ: expected lowest=1 highest=3600000000 digits=3, "
                f"got lowest={hist.lowest_trackable_value} highest={hist.highest_trackable_value} digits={hist.significant_figures}"
            )
        if not hist.total_count:
            return
        top = hist.get_counts_array_index(hist.get_max_value()) + 1
        mine, theirs = self.counts, hist.counts[:top]
        for i in compress(range(top), theirs):
            mine[i] += theirs[i]

    def add_encoded(self, blob: str | bytes) -> None:
        """Add a base64 blob produced by :meth:`encode` (or any HdrHistogram encoder)."""
        self.add_histogram(decode_hdr(blob))

    def add(self, other: HdrCounts) -> None:
        """Add another ``HdrCounts`` in place."""
        mine, theirs = self.counts, other.counts
        for i in compress(range(COUNTS_LEN), theirs):
            mine[i] += theirs[i]

    def to_histogram(self) -> HdrHistogram:
        """A real ``HdrHistogram`` with these counts (for percentiles or encoding)."""
        hist = new_hdr()
        counts = self.counts
        used = list(compress(range(COUNTS_LEN), counts))  # indexes of non-zero counts, at C speed
        if used:
            dest = hist.counts
            for i in used:
                dest[i] = counts[i]
            hist.set_internal_tacking_values(used[0], used[-1], sum(counts))
        return hist

    def encode(self) -> str:
        """Base64 HdrHistogram V2 blob (text, JSON-safe)."""
        return self.to_histogram().encode().decode("ascii")

    def percentile_us(self, percentile: float) -> int:
        """Value at ``percentile`` (0..100) in microseconds (HdrHistogram semantics)."""
        return self.to_histogram().get_value_at_percentile(percentile)


def counts_index(us: int) -> int:
    """Index of ``us`` in the counts array (clamped to 0..1 h), as ``hdrh`` computes it."""
    if us > HDR_HIGHEST_US:
        us = HDR_HIGHEST_US
    elif us < 0:
        us = 0
    b = (us | MASK).bit_length() - SHIFT
    return ((b + 1) << HALF_MAG) + (us >> (b + UNIT_MAG)) - HALF_COUNT
