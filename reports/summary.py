"""summary.json: the machine-readable result of a run (schema ``reports/summary.schema.json``).

Usage::

    summary = build_summary(data, results)   # dict, validates against the schema
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from reports.gate import ThresholdResult
from reports.results import RequestTotals, RunData

__all__ = ["SCHEMA_ID", "build_summary", "request_row", "verdict", "EXIT_PASS", "EXIT_FAIL", "EXIT_USAGE", "EXIT_INVALID"]

SCHEMA_ID = "peakload/summary/v1"
EXIT_PASS, EXIT_FAIL, EXIT_USAGE, EXIT_INVALID = 0, 1, 2, 3
PERCENTILES = (50, 90, 95, 99, 99.9)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 3)


def request_row(t: RequestTotals, seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": t.name,
        "method": t.method,
        "requests": t.count,
        "failures": t.failures,
        "error_ratio": round(t.error_ratio, 6),
        "rps": round(t.count / seconds, 3) if seconds > 0 else 0.0,
        "avg_ms": _ms(t.sum_s / t.count) if t.count and t.hdr.get_total_count() else None,
        "max_ms": _ms(t.hdr.get_max_value() / 1e6) if t.hdr.get_total_count() else None,
    }
    pct = t.percentiles(list(PERCENTILES))
    for p in PERCENTILES:
        row[f"p{p:g}_ms".replace(".", "_")] = _ms(pct[p])
    row["status"] = dict(sorted(t.status.items()))
    row["errors"] = dict(sorted(t.errors.items()))
    return row


def verdict(data: RunData, results: list[ThresholdResult]) -> tuple[str, int, str | None]:
    """(status, exit code, reason): invalid (3) beats failed (1) beats passed (0)."""
    invalid = data.outcome.get("invalid")
    if invalid:
        return "invalid", EXIT_INVALID, str(invalid)
    if not data.intervals:
        return "invalid", EXIT_INVALID, "no measurements were recorded"
    if data.cpu_warning:
        return "invalid", EXIT_INVALID, "the load generator was CPU-overloaded (Locust CPU warning): figures are not trustworthy"
    if not data.complete and not data.outcome.get("aborted"):
        return "invalid", EXIT_INVALID, "results incomplete: the run was cut short"
    cap = data.capacity
    if cap and "exit_code" in cap:
        # A capacity run is judged by its knee: stopping at the knee is its purpose, not a failure.
        code = int(cap["exit_code"])
        return {0: "passed", 1: "failed"}.get(code, "invalid"), code, str(cap.get("verdict"))
    failed = [r for r in results if r.passed is False]
    if data.outcome.get("aborted"):
        return "failed", EXIT_FAIL, str(data.outcome["aborted"])
    if failed:
        return "failed", EXIT_FAIL, f"{len(failed)} of {len(results)} thresholds failed"
    return "passed", EXIT_PASS, None


def build_summary(data: RunData, results: list[ThresholdResult]) -> dict[str, Any]:
    seconds = data.duration_s
    status, code, reason = verdict(data, results)
    meta = data.meta
    first = data.intervals[0].t_start if data.intervals else meta.get("started_ts")
    last = data.intervals[-1].t_end if data.intervals else meta.get("ended_ts")
    return {
        "schema": SCHEMA_ID,
        "run_id": data.run_id,
        "profile": meta.get("profile"),
        "target": meta.get("target"),
        "git_revision": meta.get("git_revision"),
        "seed": meta.get("seed"),
        "workers": meta.get("workers", 0),
        "started": _iso(first),
        "ended": _iso(last),
        "duration_s": round(seconds, 3),
        "complete": data.complete,
        "status": status,
        "exit_code": code,
        "reason": reason,
        "latency_basis": data.header.get("latency_basis", "response"),
        "intervals": len(data.intervals),
        "requests": {k: request_row(t, seconds) for k, t in sorted(data.totals.items())},
        "total": request_row(data.all_requests(), seconds),
        "business": dict(sorted(data.business.items())),
        "arrivals": dict(sorted(data.arrivals.items())),
        "reconciliation": data.reconciliation,
        "thresholds": [r.to_dict() for r in results],
        "events": data.events,
        "problems": list(data.problems),
        **({"capacity": data.capacity} if data.capacity is not None else {}),
    }
