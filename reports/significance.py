"""Significance tests for ``peakload compare``: is a change real, or the noise of a finite sample?

Pure Python (no numpy/scipy), deterministic (seeded), fast enough for a report build.

Usage::

    ci = percentile_ratio_ci(base_buckets, cur_buckets, 99, seed=7)   # (point, lo, hi, p_value) of cur/base
    diff = proportion_diff_ci(f_base, n_base, f_cur, n_cur)           # (point, lo, hi, p_value) of cur - base
    rate = interval_rate_ratio_ci(base_intervals, cur_intervals)        # (point, lo, hi, p_value) of cur/base

Percentiles: the bootstrap of the ``k``-th order statistic of a resample of ``n`` values from a
run's merged HDR histogram (its bucket counts are the sample) is drawn *exactly* without
resampling ``n`` values: the resample's ``k``-th smallest value is ``F⁻¹(U)`` with
``U ~ Beta(k, n + 1 - k)`` (``F⁻¹`` the histogram's empirical quantile function, monotone, so it
maps the ``k``-th smallest of ``n`` uniforms to the ``k``-th smallest resampled value). One
bootstrap replicate is then one beta draw and one bisection, whatever ``n`` is. The two runs are
resampled independently; the interval is the percentile interval of the replicated ratio.

The bootstrap treats requests as independent draws. Requests of one run are not quite that
(a slow minute slows many), so the interval can be narrower than the run-to-run spread; the
tolerance is what absorbs that: a change is a regression only when it is both significant
and beyond the tolerance.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from itertools import accumulate

__all__ = [
    "ALPHA",
    "RESAMPLES",
    "MIN_TAIL",
    "Interval95",
    "percentile_ratio_ci",
    "percentile_of",
    "proportion_diff_ci",
    "interval_rate_ratio_ci",
    "MIN_INTERVALS",
]

ALPHA = 0.05  # two-sided: 95 % intervals
RESAMPLES = 2000  # bootstrap replicates per figure
MIN_INTERVALS = 10  # a throughput needs this many snapshot intervals in each run to be compared
MIN_TAIL = 10  # a percentile needs this many samples above it in each run to be bootstrapped at all
_Z = 1.959963984540054  # the standard normal's 97.5 % quantile

Interval95 = tuple[float, float, float, float]  # (point, lo, hi, two-sided p-value of "no change")


def _rank(p: float, n: int) -> int:
    """The 1-based rank HdrHistogram (and reports.hdr.percentiles) reads percentile ``p`` at."""
    return min(n, max(1, int(min(p, 100.0) * n / 100 + 0.5)))


def percentile_of(buckets: list[tuple[int, int]], p: float) -> float | None:
    """Percentile ``p`` (0-100) of (value, count) buckets, ascending; None without samples."""
    cum = list(accumulate(c for _, c in buckets))
    if not cum or not cum[-1]:
        return None
    return float(buckets[bisect_left(cum, _rank(p, cum[-1]))][0])


def _replicates(buckets: list[tuple[int, int]], p: float, rng: random.Random, count: int) -> list[float]:
    values = [float(v) for v, _ in buckets]
    cum = list(accumulate(c for _, c in buckets))
    n = cum[-1]
    k = _rank(p, n)
    out = []
    for _ in range(count):
        u = rng.betavariate(k, n + 1 - k) * n
        out.append(values[min(bisect_left(cum, u), len(values) - 1)])
    return out


def _quantile(sorted_values: list[float], q: float) -> float:
    """Linear-interpolated quantile ``q`` (0-1) of sorted values."""
    pos = q * (len(sorted_values) - 1)
    i = int(pos)
    j = min(i + 1, len(sorted_values) - 1)
    return sorted_values[i] + (sorted_values[j] - sorted_values[i]) * (pos - i)


def percentile_ratio_ci(
    base: list[tuple[int, int]], cur: list[tuple[int, int]], p: float, *, seed: int, resamples: int = RESAMPLES
) -> Interval95 | None:
    """Bootstrap 95 % interval of ``cur/base`` at percentile ``p``; None when a side has no sample or a zero percentile."""
    pb, pc = percentile_of(base, p), percentile_of(cur, p)
    if not pb or pc is None:
        return None
    rng = random.Random(seed)
    rb = _replicates(base, p, rng, resamples)
    rc = _replicates(cur, p, rng, resamples)
    ratios = sorted(c / b for b, c in zip(rb, rc, strict=True))
    lo, hi = _quantile(ratios, ALPHA / 2), _quantile(ratios, 1 - ALPHA / 2)
    # the bootstrap's two-sided p-value of "no change" (ratio 1), never below 1/resamples
    below = bisect_left(ratios, 1.0)
    above = len(ratios) - bisect_left(ratios, 1.0 + 1e-12)
    p_value = min(1.0, max(2 * min(below, above) / len(ratios), 1 / len(ratios)))
    return pc / pb, lo, hi, p_value


def _wilson(x: int, n: int) -> tuple[float, float]:
    p = x / n
    denom = 1 + _Z**2 / n
    centre = (p + _Z**2 / (2 * n)) / denom
    half = _Z * math.sqrt(p * (1 - p) / n + _Z**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_diff_ci(x_base: int, n_base: int, x_cur: int, n_cur: int) -> Interval95 | None:
    """95 % interval of the error-ratio difference ``cur - base`` (Newcombe's hybrid score interval, from
    Wilson intervals, sound at zero failures) and the pooled two-proportion z-test's two-sided p-value."""
    if n_base <= 0 or n_cur <= 0:
        return None
    pb, pc = x_base / n_base, x_cur / n_cur
    lb, ub = _wilson(x_base, n_base)
    lc, uc = _wilson(x_cur, n_cur)
    d = pc - pb
    lo = d - math.sqrt((pc - lc) ** 2 + (ub - pb) ** 2)
    hi = d + math.sqrt((uc - pc) ** 2 + (pb - lb) ** 2)
    pooled = (x_base + x_cur) / (n_base + n_cur)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_base + 1 / n_cur))
    p_value = 1.0 if se == 0 else math.erfc(abs(d) / se / math.sqrt(2))
    return d, lo, hi, p_value


def _ratio_estimate(intervals: list[tuple[int, float]]) -> tuple[float, float] | None:
    """Rate Σcount/Σseconds over intervals and the variance of its estimate (linearisation of the ratio
    estimator: the spread of ``count_i - rate * seconds_i`` between intervals)."""
    m = len(intervals)
    secs = sum(t for _, t in intervals)
    if m < 2 or secs <= 0:
        return None
    rate = sum(c for c, _ in intervals) / secs
    mean_t = secs / m
    resid = [c - rate * t for c, t in intervals]
    var = sum(r * r for r in resid) / (m - 1) / (m * mean_t * mean_t)
    return rate, var


def interval_rate_ratio_ci(base: list[tuple[int, float]], cur: list[tuple[int, float]]) -> Interval95 | None:
    """95 % interval of the throughput ratio ``cur/base`` from each run's per-interval (count, seconds): the
    intervals, not the requests, are the sample, so a run's ramp, stalls and idle tail widen it. None when a
    run has fewer than 2 intervals or no request."""
    b, c = _ratio_estimate(base), _ratio_estimate(cur)
    if b is None or c is None or b[0] <= 0 or c[0] <= 0:
        return None
    r = c[0] / b[0]
    se = math.sqrt(b[1] / b[0] ** 2 + c[1] / c[0] ** 2)
    if se == 0:
        return r, r, r, 1.0 if r == 1 else 0.0
    p_value = math.erfc(abs(math.log(r)) / se / math.sqrt(2))
    return r, r * math.exp(-_Z * se), r * math.exp(_Z * se), p_value
