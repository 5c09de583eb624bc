"""Latency histograms: Prometheus bucket edges and a cheap HdrHistogram recorder.

Usage::

    edges = bucket_edges(slo=load_slo_spec("profiles/slo.yaml"))
    hdr = HdrCounts()
    hdr.record_us(12_345)
    blob = hdr.encode()            # base64 text, HdrHistogram V2 wire format
    p99_us = decode_hdr(blob).get_value_at_percentile(99)

``HdrCounts`` records into a real ``HdrHistogram``'s counts array (the
library's own ctypes buffer) with the counts index computed inline (the same
arithmetic as ``hdrh``), because ``HdrHistogram.record_value`` costs about 5x
more per call and runs on every request. The min/max/total the library tracks
per record are found when the histogram is read (:meth:`HdrCounts.to_histogram`,
:meth:`HdrCounts.encode`), so the wire format is the library's own and any
HdrHistogram reader can decode it. Adding an encoded histogram
(:meth:`HdrCounts.add_encoded`, what a master does with every worker push)
decodes into a reused buffer and adds the non-zero range with ``pyhdrh``'s C
loops, instead of building a histogram and walking its 23,552 counters.
"""

from __future__ import annotations

import binascii
import ctypes
import struct
import sys
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pyhdrh
from hdrh.codec import V2_COMPRESSION_COOKIE_BASE, V2_ENCODING_COOKIE_BASE, ext_header_size, get_cookie_base, payload_header_size
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
    "decode_add",
    "read_encoded",
    "Decoded",
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


_WORD = 8  # bytes per counter (64-bit, what V2 decoders expect)
_CHUNK = 1024  # counters compared at once when looking for the non-zero range
_ZEROS = bytes(_CHUNK * _WORD)


def _nonzero_range(counts: ctypes.Array[ctypes.c_uint64]) -> tuple[int, int] | None:
    """(first, last) index of a non-zero counter, None when all are zero; memcmp per 8 KiB, then a strip."""
    raw = ctypes.string_at(ctypes.addressof(counts), len(counts) * _WORD)
    step = _CHUNK * _WORD
    starts = range(0, len(raw), step)
    first = next((k for k in starts if raw[k : k + step] != _ZEROS[: len(raw) - k]), None)
    if first is None:
        return None
    last = next(k for k in reversed(starts) if raw[k : k + step] != _ZEROS[: len(raw) - k])
    head, tail = raw[first : first + step], raw[last : last + step]
    lo = (first + len(head) - len(head.lstrip(b"\0"))) // _WORD
    hi = (last + len(tail.rstrip(b"\0")) - 1) // _WORD
    return lo, hi


class HdrCounts:
    """HdrHistogram counts recorded with a few integer operations; read as a real ``HdrHistogram``.

    Not thread-safe (meant for one gevent hub). Values are microseconds;
    negative values count as 0 and values above 1 h as 1 h, so nothing recorded
    is silently lost. ``counts`` is the histogram's own counts array (64-bit);
    :meth:`StatsStore.record` inlines :meth:`record_us` on it (same arithmetic,
    see :func:`counts_index`) to save a call.
    """

    __slots__ = ("_hist", "counts", "_view")

    def __init__(self) -> None:
        self._hist = new_hdr()
        self.counts: ctypes.Array[ctypes.c_uint64] = self._hist.counts
        self._view = memoryview(self.counts).cast("B").cast("Q")

    @property
    def total(self) -> int:
        """Number of recorded values."""
        span = _nonzero_range(self.counts)
        return sum(self._view[span[0] : span[1] + 1]) if span else 0

    def record_us(self, us: int) -> None:
        """Count one value in microseconds (int)."""
        self.counts[counts_index(us)] += 1

    def add_histogram(self, hist: HdrHistogram) -> None:
        """Add the counts of an ``HdrHistogram`` with the contract settings."""
        _check_settings(hist.significant_figures, hist.lowest_trackable_value, hist.highest_trackable_value, hist.counts_len)
        if not hist.total_count:
            return
        lo = hist.get_counts_array_index(hist.get_min_value())
        hi = min(hist.get_counts_array_index(hist.get_max_value()), COUNTS_LEN - 1)
        if hist.word_size == _WORD:
            pyhdrh.add_array(ctypes.addressof(self.counts) + lo * _WORD, ctypes.addressof(hist.counts) + lo * _WORD, hi - lo + 1, _WORD)
        else:  # 2- or 4-byte counters: by element
            mine, theirs = self.counts, hist.counts
            for i in range(lo, hi + 1):
                mine[i] += theirs[i]

    def add_encoded(self, blob: str | bytes) -> None:
        """Add a base64 blob produced by :meth:`encode` (or any HdrHistogram V2 encoder with the contract settings)."""
        read_encoded(blob).add_to(self.counts)

    def add(self, other: HdrCounts) -> None:
        """Add another ``HdrCounts`` in place."""
        span = _nonzero_range(other.counts)
        if span is not None:
            lo, hi = span
            pyhdrh.add_array(ctypes.addressof(self.counts) + lo * _WORD, ctypes.addressof(other.counts) + lo * _WORD, hi - lo + 1, _WORD)

    def to_histogram(self) -> HdrHistogram:
        """The ``HdrHistogram`` holding these counts, its min/max/total brought up to date (for percentiles or encoding).

        It is this recorder's own histogram, not a copy: read it, do not record into it.
        """
        hist, span = self._hist, _nonzero_range(self.counts)
        if span is None:
            hist.min_value, hist.max_value, hist.total_count = sys.maxsize, 0, 0
        else:
            hist.set_internal_tacking_values(span[0], span[1], sum(self._view[span[0] : span[1] + 1]))
        return hist

    def encode(self) -> str:
        """Base64 HdrHistogram V2 blob (text, JSON-safe)."""
        return self.to_histogram().encode().decode("ascii")

    def percentile_us(self, percentile: float) -> int:
        """Value at ``percentile`` (0..100) in microseconds (HdrHistogram semantics)."""
        return self.to_histogram().get_value_at_percentile(percentile)


def _check_settings(digits: int, lowest: int, highest: int, counts_len: int | None = None) -> None:
    if (digits, lowest, highest) != (HDR_SIGNIFICANT_FIGURES, HDR_LOWEST_US, HDR_HIGHEST_US) or counts_len not in (None, COUNTS_LEN):
        raise ValueError(
            f"hdr settings differ: expected lowest={HDR_LOWEST_US} highest={HDR_HIGHEST_US} digits={HDR_SIGNIFICANT_FIGURES}, "
            f"got lowest={lowest} highest={highest} digits={digits}"
        )


_EXTERNAL = struct.Struct(">II")  # hdrh.codec.ExternalHeader: cookie, length of the zlib part
_PAYLOAD = struct.Struct(">IIIIQQd")  # hdrh.codec.PayloadHeader
assert _EXTERNAL.size == ext_header_size and _PAYLOAD.size == payload_header_size
_POOL: list[ctypes.Array[ctypes.c_uint64]] = []  # zeroed counts buffers to decode into (a decode allocates no 188 KB array)
_POOL_MAX = 256


def _payload(blob: str | bytes) -> bytes:
    """The decompressed V2 payload of a base64 blob, its headers checked (contract settings); else ValueError."""
    try:
        raw = binascii.a2b_base64(blob, strict_mode=True)
        cookie, length = _EXTERNAL.unpack_from(raw)
        if get_cookie_base(cookie) != V2_COMPRESSION_COOKIE_BASE or length != len(raw) - ext_header_size:
            raise ValueError("bad compression header")
        data = zlib.decompress(raw[ext_header_size:])
        cookie, payload_len, _offset, digits, lowest, highest, _ratio = _PAYLOAD.unpack_from(data)
    except (ValueError, binascii.Error, struct.error, zlib.error) as exc:
        raise ValueError(f"not an encoded histogram: {exc}") from None
    if get_cookie_base(cookie) != V2_ENCODING_COOKIE_BASE or payload_header_size + payload_len > len(data):
        raise ValueError("not an encoded histogram: bad payload header")
    _check_settings(digits, lowest, highest)
    return data


class Decoded:
    """An encoded histogram decoded and checked, not yet added anywhere (see :func:`read_encoded`)."""

    __slots__ = ("_counts", "total", "lo", "hi")

    def __init__(self, counts: ctypes.Array[ctypes.c_uint64], total: int, lo: int, hi: int) -> None:
        self._counts: ctypes.Array[ctypes.c_uint64] | None = counts
        self.total, self.lo, self.hi = total, lo, hi

    def add_to(self, counts: ctypes.Array[ctypes.c_uint64]) -> None:
        """Add into ``counts`` (64-bit, COUNTS_LEN), once: the decode buffer goes back to the pool."""
        src = self._counts
        if src is None:
            raise RuntimeError("this decoded histogram was added already")
        if len(counts) != COUNTS_LEN:
            raise ValueError(f"expected a counts array of {COUNTS_LEN}, got {len(counts)}")
        self._counts = None
        if self.total:
            n = self.hi - self.lo + 1
            at = ctypes.addressof(src) + self.lo * _WORD
            pyhdrh.add_array(ctypes.addressof(counts) + self.lo * _WORD, at, n, _WORD)
            ctypes.memset(at, 0, n * _WORD)
        if len(_POOL) < _POOL_MAX:
            _POOL.append(src)


def read_encoded(blob: str | bytes) -> Decoded:
    """Decode a base64 HdrHistogram blob into a pooled buffer, checked through; add it later with ``add_to``.

    Raises ValueError for anything that is not a V2 histogram with the contract settings. A caller
    that must merge all or nothing (``StatsStore.merge_delta``) decodes every blob first.
    """
    data = _payload(blob)
    buf = _POOL.pop() if _POOL else (ctypes.c_uint64 * COUNTS_LEN)()
    try:
        res = pyhdrh.decode(data, payload_header_size, ctypes.addressof(buf), COUNTS_LEN, _WORD)
    except (ValueError, TypeError, OverflowError) as exc:
        ctypes.memset(buf, 0, COUNTS_LEN * _WORD)
        _POOL.append(buf)
        raise ValueError(f"not an encoded histogram: {exc}") from None
    total, lo, hi = res["total"], res["min_nonzero_index"], res["max_nonzero_index"]
    if not total or lo < 0:
        return Decoded(buf, 0, -1, -1)
    return Decoded(buf, total, lo, hi)


def decode_add(target: HdrHistogram, blob: str | bytes) -> None:
    """Add an encoded histogram into ``target`` (a contract ``HdrHistogram``), keeping its min/max/total.

    Same result as ``target.decode_and_add(blob)``, 10-50x faster for the sparse per-interval
    histograms of a snapshot file. Raises ValueError for a payload that is not a histogram
    with the contract settings (1 µs .. 1 h, 3 significant digits).
    """
    _check_settings(target.significant_figures, target.lowest_trackable_value, target.highest_trackable_value, target.counts_len)
    d = read_encoded(blob)
    total, lo, hi = d.total, d.lo, d.hi
    d.add_to(target.counts)
    if not total:
        return
    target.min_value = min(target.min_value, target.get_value_from_index(lo))
    target.max_value = max(target.max_value, target.get_highest_equivalent_value(target.get_value_from_index(hi)))
    target.total_count += total


def counts_index(us: int) -> int:
    """Index of ``us`` in the counts array (clamped to 0..1 h), as ``hdrh`` computes it."""
    if us > HDR_HIGHEST_US:
        us = HDR_HIGHEST_US
    elif us < 0:
        us = 0
    b = (us | MASK).bit_length() - SHIFT
    return ((b + 1) << HALF_MAG) + (us >> (b + UNIT_MAG)) - HALF_COUNT
