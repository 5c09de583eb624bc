"""Baseline comparison: this run's summary.json against a baseline's.

Usage::

    rows = compare(current_summary, baseline_summary, tolerances)
    regressed = any(r.regression for r in rows)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from peakload.core import CompareSpec

__all__ = ["CompareRow", "compare", "verdict_of", "measured", "COMPARE_RULES"]


@dataclass(frozen=True)
class CompareRow:
    key: str  # request key or threshold id
    metric: str  # p95_ms, p99_ms, error_ratio, rps, threshold
    baseline: float | None
    current: float | None
    change: float | None  # relative for latency/throughput, absolute for error ratio
    verdict: str  # ok | regression | improved | n/a | new | missing | missing (allowed) | too few samples | unreadable
    tolerance: str

    @property
    def regression(self) -> bool:
        return self.verdict in ("regression", "missing")

    @property
    def judged(self) -> bool:
        return self.verdict in ("ok", "improved", "regression", "missing")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "regression": self.regression}


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


def compare(current: dict[str, Any], baseline: dict[str, Any], tol: CompareSpec) -> list[CompareRow]:
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
        for metric, limit, worse_is_up in (
            ("p95_ms", tol.p95_increase, True),
            ("p99_ms", tol.p99_increase, True),
            ("rps", tol.throughput_decrease, False),
        ):
            ch = _rel(c.get(metric), b.get(metric))
            if ch is None:
                verdict = "n/a"
            elif (ch > limit) if worse_is_up else (ch < -limit):
                verdict = "regression"
            elif (ch < -limit) if worse_is_up else (ch > limit):
                verdict = "improved"
            else:
                verdict = "ok"
            sign = "+" if worse_is_up else "-"
            rows.append(CompareRow(key, metric, b.get(metric), c.get(metric), ch, verdict, f"{sign}{limit:.0%}"))
        ch = c["error_ratio"] - b["error_ratio"]
        verdict = "regression" if ch > tol.error_ratio_increase else "improved" if ch < -tol.error_ratio_increase else "ok"
        rows.append(CompareRow(key, "error_ratio", b["error_ratio"], c["error_ratio"], ch, verdict, f"+{tol.error_ratio_increase:g} abs"))
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
    "regression": "a figure got worse beyond its tolerance, a baseline request vanished, or a threshold that passed now fails (exit 1)",
    "nothing-compared": "no request had enough samples on both sides to be judged (exit 3)",
    "no-regression": "every judged figure is within its tolerance (exit 0)",
}


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
    return 0, "no-regression", f"{sum(r.judged for r in rows)} figures judged, none regressed"
