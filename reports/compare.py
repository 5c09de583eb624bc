"""Baseline comparison: this run's summary.json against a baseline's, with significance tests.

Usage::

    rows = compare(current_summary, baseline_summary, tolerances,
                   current_samples=samples_of(load_results(run)), baseline_samples=samples_of(load_results(base)))
    regressed = any(r.regression for r in rows)

A figure (p95, p99, error ratio, throughput of one request name) is a *regression* only when its
change is beyond the tolerance **and** significant at 95 % (the interval of the change excludes
no change); *no change* when the interval rules out a change beyond the tolerance in the worse
direction; *improvement* when it is significantly better beyond the tolerance; otherwise
*inconclusive*, with the requests per run that would decide it (``needed``). Percentiles are
bootstrapped from the runs' merged HDR histograms (``reports.significance``); without the
histograms (a baseline given as a bare summary.json) a percentile cannot be tested and is
inconclusive.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any

from peakload.core import CompareSpec
from reports.hdr import nonzero
from reports.results import RunData
from reports.significance import MIN_INTERVALS, MIN_TAIL, interval_rate_ratio_ci, percentile_ratio_ci, proportion_diff_ci

__all__ = ["CompareRow", "Samples", "compare", "format_row", "samples_of", "verdict_of", "measured", "COMPARE_RULES", "VERDICTS"]


@dataclass(frozen=True)
class Samples:
    """What the tests draw from, per request key ("METHOD name"): the merged histogram's (value µs, count)
    buckets, and the (count, seconds) of every snapshot interval of the run (0 where the key had none)."""

    buckets: dict[str, list[tuple[int, int]]]
    intervals: dict[str, list[tuple[int, float]]]


# what a figure's verdict can be; the first four are statistical (see the module docstring)
VERDICTS = (
    "regression",
    "improvement",
    "no change",
    "inconclusive",
    "n/a",
    "new",
    "missing",
    "missing (allowed)",
    "too few samples",
    "unreadable",
)
_MAX_NEEDED = 10**9  # a figure sitting on its tolerance boundary needs more than any run: reported as n/a


@dataclass(frozen=True)
class CompareRow:
    key: str  # request key or threshold id
    metric: str  # p95_ms, p99_ms, error_ratio, rps, threshold, requests
    baseline: float | None
    current: float | None
    change: float | None  # relative for latency/throughput, absolute for error ratio
    verdict: str  # one of VERDICTS
    tolerance: str
    ci: tuple[float, float] | None = None  # 95 % interval of ``change``, same unit
    p_value: float | None = None  # two-sided, of "no change"
    samples: tuple[int, int] | None = None  # requests (baseline, current) the test used
    needed: int | None = None  # inconclusive: requests per run that would decide it (None: cannot say)
    test: str = ""  # which test: bootstrap (percentiles), newcombe (error ratio), intervals (throughput), or why none ran

    @property
    def regression(self) -> bool:
        return self.verdict in ("regression", "missing")

    @property
    def judged(self) -> bool:
        return self.verdict in ("no change", "improvement", "regression", "missing", "inconclusive")

    @property
    def decided(self) -> bool:
        return self.judged and self.verdict != "inconclusive"

    def to_dict(self) -> dict[str, Any]:
        d = {**asdict(self), "regression": self.regression}
        d["ci"] = list(self.ci) if self.ci is not None else None
        d["samples"] = list(self.samples) if self.samples is not None else None
        return d


def samples_of(data: RunData) -> Samples:
    """A loaded run's samples (:class:`Samples`) for :func:`compare`."""
    buckets = {key: nonzero(t.hdr) for key, t in data.totals.items() if t.hdr.get_total_count()}
    per: list[dict[str, int]] = []
    for iv in data.intervals:
        counts: dict[str, int] = {}
        for row in iv.requests:
            key = f"{row['method']} {row['name']}"
            counts[key] = counts.get(key, 0) + row["count"]
        per.append(counts)
    intervals = {key: [(c.get(key, 0), iv.seconds) for c, iv in zip(per, data.intervals, strict=True)] for key in data.totals}
    return Samples(buckets=buckets, intervals=intervals)


def _rel(cur: float | None, base: float | None) -> float | None:
    if cur is None or base is None or base == 0:
        return None
    return (cur - base) / base


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _row_ok(row: Any) -> bool:
    """A summary request row with the fields compare reads, correctly typed (a bad row is not judged)."""
    return (
        isinstance(row, dict)
        and isinstance(row.get("requests"), int)
        and not isinstance(row.get("requests"), bool)
        and row["requests"] >= 0
        and _num(row.get("error_ratio"))
        and all(row.get(k) is None or _num(row.get(k)) for k in ("p95_ms", "p99_ms", "rps"))
    )


def measured(summary: dict[str, Any]) -> bool:
    """True when the summary holds at least one measured request."""
    total = summary.get("total")
    n = total.get("requests") if isinstance(total, dict) else None
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and summary.get("intervals") != 0


def _decide(point: float, lo: float, hi: float, *, worse: float, better: float, neutral: float, up: bool) -> str:
    """The verdict of a change ``point`` with 95 % interval [lo, hi]; ``worse``/``better``: the tolerance bounds,
    ``neutral``: no change (1 for a ratio, 0 for a difference); ``up``: a larger figure is worse."""
    if not up:  # mirror, so "worse" is always "larger"
        return _decide(-point, -hi, -lo, worse=-worse, better=-better, neutral=-neutral, up=True)
    if hi <= worse:  # a change beyond the tolerance is ruled out
        return "improvement" if point < better and hi < neutral else "no change"
    if point > worse and lo > neutral:
        return "regression"
    return "inconclusive"


def _needed(point: float, lo: float, hi: float, *, worse: float, neutral: float, up: bool, n: float, log: bool) -> int | None:
    """Requests per run that would decide an inconclusive figure, its interval shrinking as 1/sqrt(n)."""
    f = math.log if log else float
    try:
        p, lo_, hi_, w, z = f(point), f(lo), f(hi), f(worse), f(neutral)
    except ValueError:
        return None
    if not up:  # mirror, so "worse" is always "larger"
        p, lo_, hi_, w, z = -p, -hi_, -lo_, -w, -z
    # beyond the tolerance: the lower bound must clear no change; within it: the upper bound must come under it
    width, margin = (p - lo_, p - z) if p > w else (hi_ - p, w - p)
    if margin <= 0 or width <= 0:
        return None
    need = math.ceil(n * (width / margin) ** 2)  # n: the runs' effective size, 2 / (1/n_base + 1/n_current)
    return need if need <= _MAX_NEEDED else None


def _n_eff(nb: int, nc: int) -> float:
    """The one per-run size whose interval is as wide as that of runs of ``nb`` and ``nc`` requests."""
    return 2 / (1 / nb + 1 / nc)


def _seed(key: str, metric: str) -> int:
    return zlib.crc32(f"{key}\0{metric}".encode())


def _latency_row(key: str, metric: str, b: dict, c: dict, limit: float, bs: Samples | None, cs: Samples | None) -> CompareRow:
    p = 95.0 if metric == "p95_ms" else 99.0
    base_v, cur_v = b.get(metric), c.get(metric)
    ch = _rel(cur_v, base_v)
    tol = f"+{limit:.0%}"
    nb, nc = b["requests"], c["requests"]
    if ch is None:
        return CompareRow(key, metric, base_v, cur_v, None, "n/a", tol)
    tail = math.ceil(MIN_TAIL / (1 - p / 100))
    if bs is None or cs is None or key not in bs.buckets or key not in cs.buckets:
        return CompareRow(
            key, metric, base_v, cur_v, ch, "inconclusive", tol, samples=(nb, nc), needed=tail if min(nb, nc) < tail else None,
            test="untested: no histograms (compare results folders, not bare summary.json files)",
        )  # fmt: skip
    res = percentile_ratio_ci(bs.buckets[key], cs.buckets[key], p, seed=_seed(key, metric))
    if res is None:
        return CompareRow(key, metric, base_v, cur_v, ch, "n/a", tol, samples=(nb, nc), test="bootstrap: a zero percentile")
    r, lo, hi, pv = res
    verdict = _decide(r, lo, hi, worse=1 + limit, better=1 - limit, neutral=1.0, up=True)
    test = "bootstrap"
    if min(nb, nc) < tail:  # the bootstrap of a percentile with a handful of samples above it is not to be trusted
        verdict, test = "inconclusive", f"bootstrap: fewer than {MIN_TAIL} requests above p{p:g} in a run"
    need = None
    if verdict == "inconclusive":
        need = _needed(r, lo, hi, worse=1 + limit, neutral=1.0, up=True, n=_n_eff(nb, nc), log=True)
        need = max(need, tail) if need is not None else (tail if min(nb, nc) < tail else None)
    return CompareRow(key, metric, base_v, cur_v, ch, verdict, tol, (lo - 1, hi - 1), pv, (nb, nc), need, test)


def _rps_row(key: str, b: dict, c: dict, limit: float, bs: Samples | None, cs: Samples | None) -> CompareRow:
    base_v, cur_v = b.get("rps"), c.get("rps")
    ch = _rel(cur_v, base_v)
    tol = f"-{limit:.0%}"
    nb, nc = b["requests"], c["requests"]
    if ch is None:
        return CompareRow(key, "rps", base_v, cur_v, None, "n/a", tol)
    if bs is None or cs is None or key not in bs.intervals or key not in cs.intervals:
        return CompareRow(
            key, "rps", base_v, cur_v, ch, "inconclusive", tol, samples=(nb, nc),
            test="untested: no snapshot intervals (compare results folders, not bare summary.json files)",
        )  # fmt: skip
    ib, ic = bs.intervals[key], cs.intervals[key]
    res = interval_rate_ratio_ci(ib, ic)
    if res is None:
        return CompareRow(key, "rps", base_v, cur_v, ch, "n/a", tol, samples=(nb, nc), test="intervals: fewer than 2, or no request")
    r, lo, hi, pv = res
    verdict = _decide(r, lo, hi, worse=1 - limit, better=1 + limit, neutral=1.0, up=False)
    test = "intervals"
    if min(len(ib), len(ic)) < MIN_INTERVALS:
        verdict, test = "inconclusive", f"intervals: fewer than {MIN_INTERVALS} snapshot intervals in a run"
    need = None
    if verdict == "inconclusive":
        need = _needed(r, lo, hi, worse=1 - limit, neutral=1.0, up=False, n=_n_eff(nb, nc), log=True)
        if min(len(ib), len(ic)) < MIN_INTERVALS:  # at this rate, MIN_INTERVALS intervals' worth of requests
            floor = math.ceil(MIN_INTERVALS * max(nb / len(ib), nc / len(ic)))
            need = max(need or 0, floor)
    return CompareRow(key, "rps", base_v, cur_v, ch, verdict, tol, (lo - 1, hi - 1), pv, (nb, nc), need, test)


def _failures(row: dict) -> int:
    f = row.get("failures")
    if isinstance(f, int) and not isinstance(f, bool) and 0 <= f <= row["requests"]:
        return f
    return round(row["error_ratio"] * row["requests"])


def _error_row(key: str, b: dict, c: dict, limit: float) -> CompareRow:
    nb, nc = b["requests"], c["requests"]
    tol = f"+{limit:g} abs"
    res = proportion_diff_ci(_failures(b), nb, _failures(c), nc)
    if res is None:
        return CompareRow(key, "error_ratio", b["error_ratio"], c["error_ratio"], None, "n/a", tol)
    d, lo, hi, pv = res
    verdict = _decide(d, lo, hi, worse=limit, better=-limit, neutral=0.0, up=True)
    need = None
    if verdict == "inconclusive":  # the score interval does not shrink as 1/sqrt(n) near zero: search the scale
        need = _error_needed(_failures(b), nb, _failures(c), nc, limit)
    return CompareRow(key, "error_ratio", b["error_ratio"], c["error_ratio"], c["error_ratio"] - b["error_ratio"], verdict, tol, (lo, hi), pv, (nb, nc), need, "newcombe")  # fmt: skip


def _error_needed(xb: int, nb: int, xc: int, nc: int, limit: float) -> int | None:
    """The fewest requests per run (both runs that size, their error ratios as now) that decide the error-ratio figure."""
    pb, pc = xb / nb, xc / nc

    def decided(n: int) -> bool:
        res = proportion_diff_ci(round(pb * n), n, round(pc * n), n)
        return res is not None and _decide(*res[:3], worse=limit, better=-limit, neutral=0.0, up=True) != "inconclusive"

    lo, hi = 1, 2
    while not decided(hi):
        lo, hi = hi, hi * 2
        if hi > _MAX_NEEDED:
            return None
    while hi - lo > 1:  # decided(hi), not decided(lo)
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decided(mid) else (mid, hi)
    return hi


def compare(
    current: dict[str, Any],
    baseline: dict[str, Any],
    tol: CompareSpec,
    *,
    current_samples: Samples | None = None,
    baseline_samples: Samples | None = None,
) -> list[CompareRow]:
    rows: list[CompareRow] = []
    cur_req, base_req = current.get("requests"), baseline.get("requests")
    cur_req = cur_req if isinstance(cur_req, dict) else {}
    base_req = base_req if isinstance(base_req, dict) else {}
    for key in sorted(set(cur_req) | set(base_req)):
        c, b = cur_req.get(key), base_req.get(key)
        if (c is not None and not _row_ok(c)) or (b is not None and not _row_ok(b)):
            rows.append(CompareRow(key, "requests", None, None, None, "unreadable", "a summary row with wrong field types"))
            continue
        if c is None:
            # A request the baseline sent that vanished: the journey changed or a step broke. A regression unless excused.
            allowed = key in tol.allow_missing
            rows.append(
                CompareRow(
                    key,
                    "requests",
                    b["requests"],
                    None,
                    None,
                    "missing (allowed)" if allowed else "missing",
                    "compare.allow_missing" if allowed else "vanished from the run",
                )
            )
            continue
        if b is None:
            rows.append(CompareRow(key, "requests", None, c["requests"], None, "new", ""))
            continue
        if min(c["requests"], b["requests"]) < tol.min_requests:
            rows.append(CompareRow(key, "requests", b["requests"], c["requests"], None, "too few samples", f"≥ {tol.min_requests}"))
            continue
        rows.append(_latency_row(key, "p95_ms", b, c, tol.p95_increase, baseline_samples, current_samples))
        rows.append(_latency_row(key, "p99_ms", b, c, tol.p99_increase, baseline_samples, current_samples))
        rows.append(_rps_row(key, b, c, tol.throughput_decrease, baseline_samples, current_samples))
        rows.append(_error_row(key, b, c, tol.error_ratio_increase))
    base_list = baseline.get("thresholds") if isinstance(baseline.get("thresholds"), list) else []
    cur_list = current.get("thresholds") if isinstance(current.get("thresholds"), list) else []
    base_thr = {t["id"]: t for t in base_list if isinstance(t, dict) and isinstance(t.get("id"), str)}
    for t in cur_list:
        if not isinstance(t, dict):
            continue
        bt = base_thr.get(t.get("id"))
        if bt and bt.get("passed") is True and t.get("passed") is False:
            rows.append(CompareRow(t["id"], "threshold", bt.get("observed"), t.get("observed"), None, "regression", "passed in baseline"))
    return rows


COMPARE_RULES: dict[str, str] = {
    "current-unmeasured": "the current run has no measured request: nothing to compare (exit 3)",
    "baseline-unmeasured": "the baseline has no measured request: nothing to compare against (exit 3)",
    "regression": "a figure got worse beyond its tolerance and significantly (95 %), a baseline request vanished, "
    "or a threshold that passed now fails (exit 1)",
    "nothing-compared": "no request had enough samples (compare.min_requests) on both sides to be judged (exit 3)",
    "inconclusive": "no regression, but a judged figure could not be told apart from a change beyond its tolerance: "
    "more samples needed (exit 3, never a pass)",
    "no-regression": "every judged figure is within its tolerance (its 95 % interval rules a regression out) (exit 0)",
}


def _needed_text(r: CompareRow) -> str:
    return f"≈ {r.needed:,} requests per run" if r.needed is not None else "more requests (how many: n/a)"


def verdict_of(current: dict[str, Any], baseline: dict[str, Any], rows: list[CompareRow]) -> tuple[int, str, str]:
    """(exit code, rule, reason) of a comparison; the first rule that applies decides (``COMPARE_RULES``)."""
    if not measured(current):
        return 3, "current-unmeasured", "the current run has no measurements"
    if not measured(baseline):
        return 3, "baseline-unmeasured", "the baseline has no measurements"
    bad = [r for r in rows if r.regression]
    if bad:
        return 1, "regression", f"{len(bad)} regression(s), first: {bad[0].key} {bad[0].metric} ({bad[0].verdict})"
    if not any(r.judged for r in rows):
        return 3, "nothing-compared", "no request name had enough samples in both runs to compare"
    unsure = [r for r in rows if r.verdict == "inconclusive"]
    if unsure:
        first = max(unsure, key=lambda r: (r.needed is not None, r.needed or 0))
        return (
            3,
            "inconclusive",
            f"{len(unsure)} of {sum(r.judged for r in rows)} figures inconclusive, no regression; "
            f"the most demanding, {first.key} {first.metric}, needs {_needed_text(first)}",
        )
    return 0, "no-regression", f"{sum(r.judged for r in rows)} figures judged, none regressed"


def _pct(v: float, metric: str) -> str:
    return f"{v:+.4f}" if metric == "error_ratio" else f"{v:+.1%}"


def format_row(r: CompareRow) -> str:
    """One line of ``peakload compare``: verdict, figure, change with its 95 % interval and p-value, tolerance."""
    ch = "" if r.change is None else _pct(r.change, r.metric)
    ci = f" [{_pct(r.ci[0], r.metric)}, {_pct(r.ci[1], r.metric)}]" if r.ci is not None else ""
    pv = f" p={r.p_value:.3g}" if r.p_value is not None else ""
    more = ""
    if r.verdict == "inconclusive":
        more = f"; needs {_needed_text(r)}" + (f" — {r.test}" if r.test not in ("bootstrap", "intervals", "newcombe") else "")
    return (
        f"{r.verdict:>12}  {r.key:<45} {r.metric:<12} {r.baseline!s:>10} -> {r.current!s:<10} {ch:>8}{ci}{pv}"
        f" (tolerance {r.tolerance}{more})"
    )
