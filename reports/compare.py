"""Baseline comparison: this run's summary.json against a baseline's.

Usage::

    rows = compare(current_summary, baseline_summary, tolerances)
    regressed = any(r.regression for r in rows)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from peakload.config import CompareSpec

__all__ = ["CompareRow", "compare"]


@dataclass(frozen=True)
class CompareRow:
    key: str  # request key or threshold id
    metric: str  # p95_ms, p99_ms, error_ratio, rps, threshold
    baseline: float | None
    current: float | None
    change: float | None  # relative for latency/throughput, absolute for error ratio
    verdict: str  # ok | regression | improved | new | missing | too few samples
    tolerance: str

    @property
    def regression(self) -> bool:
        return self.verdict == "regression"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _rel(cur: float | None, base: float | None) -> float | None:
    if cur is None or base is None or base == 0:
        return None
    return (cur - base) / base


def compare(current: dict[str, Any], baseline: dict[str, Any], tol: CompareSpec) -> list[CompareRow]:
    rows: list[CompareRow] = []
    cur_req, base_req = current.get("requests", {}), baseline.get("requests", {})
    for key in sorted(set(cur_req) | set(base_req)):
        c, b = cur_req.get(key), base_req.get(key)
        if c is None or b is None:
            rows.append(CompareRow(key, "requests", b and b["requests"], c and c["requests"], None, "missing" if c is None else "new", ""))
            continue
        if min(c["requests"], b["requests"]) < tol.min_requests:
            rows.append(CompareRow(key, "requests", b["requests"], c["requests"], None, "too few samples", f"≥ {tol.min_requests}"))
            continue
        for metric, limit, worse_is_up in (("p95_ms", tol.p95_increase, True), ("p99_ms", tol.p99_increase, True), ("rps", tol.throughput_decrease, False)):
            ch = _rel(c.get(metric), b.get(metric))
            if ch is None:
                verdict = "ok"
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
    base_thr = {t["id"]: t for t in baseline.get("thresholds", [])}
    for t in current.get("thresholds", []):
        bt = base_thr.get(t["id"])
        if bt and bt["passed"] is True and t["passed"] is False:
            rows.append(CompareRow(t["id"], "threshold", bt["observed"], t["observed"], None, "regression", "passed in baseline"))
    return rows
