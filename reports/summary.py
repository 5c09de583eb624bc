"""summary.json: the machine-readable result of a run (schema ``reports/summary.schema.json``).

Usage::

    summary = build_summary(data, results)   # a peakload.core.summary.Summary; summary.to_json() is summary.json
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from peakload.core import EXIT_FAIL, EXIT_INVALID, EXIT_PASS
from peakload.core.records import PROFILE_COPY, lost_worker_lines
from peakload.core.steps import STEPS
from peakload.core.summary import (
    SCHEMA_ID,
    TOP_REASONS,
    FailureReason,
    RequestRow,
    ServerFigure,
    ServerSide,
    StageRow,
    StageVerdict,
    Summary,
)
from reports.attribution import run_attribution
from reports.gate import ThresholdResult
from reports.generator import generator_lag, lag_reason
from reports.results import RequestTotals, RunData
from reports.windows import timeline_of, window_data

__all__ = ["SCHEMA_ID", "build_summary", "request_row", "stage_rows", "verdict", "VERDICT_RULES"]

PERCENTILES = (50, 90, 95, 99, 99.9)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 3)


def request_row(t: RequestTotals, seconds: float) -> RequestRow:
    row: dict[str, Any] = {
        "name": t.name,
        "method": t.method,
        "step": t.step,
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
    top = sorted(((n, msg) for msg, n in t.reasons.items() if n > 0), key=lambda nm: (-nm[0], nm[1]))[:TOP_REASONS]
    row["failure_reasons"] = [FailureReason(message=msg, count=n) for n, msg in top]
    return RequestRow(**row)


def verdict(data: RunData, results: list[ThresholdResult]) -> tuple[str, int, str | None, str]:
    """(status, exit code, reason, rule that decided). The first rule that applies decides:
    invalid (3) beats failed (1) beats ungated (0, thresholds: none by design) beats unjudged (3)
    beats passed (0). See ``VERDICT_RULES``."""
    lost = lost_worker_lines(data.end)  # a master that lost a worker mid-run: that worker's share is missing
    invalid = data.outcome.invalid or (f"a load worker was lost mid-run: {'; '.join(lost)}" if lost else None)
    if invalid:
        return "invalid", EXIT_INVALID, str(invalid), "run-invalid"
    if not data.intervals:
        return "invalid", EXIT_INVALID, "no measurements were recorded", "no-measurements"
    if data.all_requests().count == 0:
        crashed = user_errors(data)
        why = f"; the locustfile raised {crashed[0].message} ({crashed[0].count}×)" if crashed else ""
        return "invalid", EXIT_INVALID, f"no requests were measured{why}", "no-measurements"
    capacity_run = bool(data.capacity and "exit_code" in data.capacity)  # judged by its knee; its last step overloads on purpose
    lagging = None if capacity_run else lag_reason(generator_lag(data, results))
    if lagging:  # before the CPU warning: this line names the figure the generator's own lag moved
        return "invalid", EXIT_INVALID, lagging, "generator-lag"
    if data.cpu_warning:
        return (
            "invalid",
            EXIT_INVALID,
            "the load generator was CPU-overloaded (Locust CPU warning): figures are not trustworthy",
            "generator-overloaded",
        )
    if not data.complete and not data.outcome.aborted:
        return "invalid", EXIT_INVALID, "results incomplete: the run was cut short", "incomplete"
    cap = data.capacity
    if cap and "exit_code" in cap:
        # A capacity run is judged by its knee: stopping at the knee is its purpose, not a failure.
        code = int(cap["exit_code"])
        return {0: "passed", 1: "failed"}.get(code, "invalid"), code, str(cap.get("verdict")), "capacity-knee"
    failed = [r for r in results if r.passed is False]
    if data.outcome.aborted:
        return "failed", EXIT_FAIL, data.outcome.aborted, "aborted"
    if failed:
        return "failed", EXIT_FAIL, f"{len(failed)} of {len(results)} thresholds failed", "threshold-failed"
    if data.thresholds_by_design and not results:
        # The deliberate opt-out: the profile says there is nothing to judge, so nothing judged is no accident.
        return "ungated", EXIT_PASS, "no thresholds by design (the profile declares thresholds: none)", "no-thresholds-by-design"
    judged = [r for r in results if r.passed is True]
    if not judged:
        # A verdict needs something judged: no thresholds (or all skipped for lack of data) is not a pass.
        if results:
            why = f"all {len(results)} thresholds were skipped (no data, an empty window, or not offered by this platform)"
        elif not data.has_profile:
            why = (
                f"the results folder has no {PROFILE_COPY} (a plain locust run without PEAKLOAD_PROFILE); set PEAKLOAD_PROFILE to judge it"
            )
        else:
            why = "no thresholds were declared (profile thresholds or an SLO spec)"
        return "unjudged", EXIT_INVALID, f"nothing was judged: {why}", "nothing-judged"
    skipped = len(results) - len(judged)
    note = f"; {skipped} skipped (no data, an empty window, or not offered by this platform)" if skipped else ""
    return "passed", EXIT_PASS, f"{len(judged)} of {len(results)} thresholds passed{note}", "thresholds-passed"


VERDICT_RULES: dict[str, str] = {
    "run-invalid": (
        "the run recorded itself invalid (target unreachable, generator did not stop, Locust crashed, the master lost a worker mid-run)"
    ),
    "no-measurements": "no snapshot interval or no request was recorded",
    "generator-lag": (
        "the generator's own lag (scheduler lateness + response-handling lag at the judged percentile) "
        "is beyond max(5 % of a judged percentile, 5 ms) (reports.generator; not for capacity runs)"
    ),
    "generator-overloaded": "Locust's CPU warning fired: the generator, not the target, was the bottleneck",
    "incomplete": "the snapshot stream has no end line and the run was not aborted",
    "capacity-knee": "a capacity run: its knee decides (capacity.json)",
    "aborted": "an abort threshold stayed breached past its grace and stopped the run",
    "threshold-failed": "at least one threshold failed",
    "no-thresholds-by-design": "the profile declares thresholds: none and nothing else was judged: ungated by design (exit 0)",
    "nothing-judged": (
        "no threshold was judged (none declared, no profile.yaml in the folder, or all skipped: no data, or not offered by this platform)"
    ),
    "thresholds-passed": "every judged threshold passed",
}


def user_errors(data: RunData) -> list[FailureReason]:
    """The end line's ``user_errors`` (exceptions in the locustfile's code), read tolerantly."""
    raw = (data.end or {}).get("user_errors")
    out = []
    for row in raw if isinstance(raw, list) else []:
        if isinstance(row, dict) and isinstance(row.get("message"), str) and type(row.get("count")) is int and row["count"] >= 1:
            out.append(FailureReason(message=row["message"][:300], count=row["count"]))
    return out[:10]


def stage_rows(data: RunData, results: list[ThresholdResult]) -> tuple[list[StageRow], str | None]:
    """Each profile stage's figures on its intervals (midpoint rule, :mod:`reports.windows`) and the verdict
    of the thresholds scoped ``during:`` it; and what offset 0 is. Empty without a profile copy's stages."""
    timeline = timeline_of(data)
    if not timeline.stages or timeline.t0 is None:
        return [], timeline.basis if timeline.t0 is not None else None
    rows = []
    for st in timeline.stages:
        part = window_data(data, timeline.t0, st.start, st.end)
        tot = part.all_requests()
        pct = tot.percentiles([50, 95, 99])
        during = f"during {st.name}"
        mine = [r for r in results if st.name and r.threshold.window is not None and r.threshold.window.text == during]
        if not mine:
            word: StageVerdict = "no thresholds"
        elif any(r.passed is False for r in mine):
            word = "failed"
        elif any(r.passed is True for r in mine):
            word = "passed"
        else:
            word = "not judged"
        rows.append(
            StageRow(
                index=st.index,
                name=st.name,
                start_s=st.start,
                end_s=st.end,
                intervals=len(part.intervals),
                requests=tot.count,
                failures=tot.failures,
                rps=round(tot.count / part.duration_s, 3) if part.intervals else None,
                error_ratio=round(tot.error_ratio, 6) if tot.count else None,
                p50_ms=_ms(pct[50]),
                p95_ms=_ms(pct[95]),
                p99_ms=_ms(pct[99]),
                verdict=word,
                thresholds=[r.threshold.id for r in mine],
            )
        )
    return rows, timeline.basis


def build_summary(data: RunData, results: list[ThresholdResult]) -> Summary:
    seconds = data.duration_s
    status, code, reason, rule = verdict(data, results)
    meta = data.meta
    first = data.intervals[0].t_start if data.intervals else meta.started_ts
    last = data.intervals[-1].t_end if data.intervals else meta.ended_ts
    stages, timeline_start = stage_rows(data, results)
    return Summary(
        run_id=data.run_id,
        profile=meta.profile,
        target=meta.target,
        git_revision=meta.git_revision,
        seed=meta.seed,
        workers=meta.workers,
        dialect=meta.dialect,
        isolated=meta.isolated,
        isolation=meta.isolation,
        not_offered=list(meta.not_offered),
        started=_iso(first),
        ended=_iso(last),
        duration_s=round(seconds, 3),
        complete=data.complete,
        status=status,
        exit_code=code,
        reason=reason,
        decided_by=rule,
        latency_basis=data.header.get("latency_basis", "response"),
        intervals=len(data.intervals),
        requests={k: request_row(t, seconds) for k, t in sorted(data.totals.items())},
        steps={step: request_row(data.step_totals[step], seconds) for step in STEPS if step in data.step_totals},
        total=request_row(data.all_requests(), seconds),
        business=dict(sorted(data.business.items())),
        arrivals=dict(sorted(data.arrivals.items())),
        reconciliation=data.reconciliation,
        thresholds=[r.to_row() for r in results],
        stages=stages,
        timeline_start=timeline_start,
        events=data.events,
        problems=[*data.problems, *lost_worker_lines(data.end)],
        user_errors=user_errors(data),
        capacity=data.capacity,
        generator=generator_lag(data, results),
        server=server_side(data),
        attribution=why.to_json() if (why := run_attribution(data)) is not None else None,
    )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def server_side(data: RunData) -> ServerSide | None:
    """The spread of every server-side figure over the run's intervals (None when the run sampled none)."""
    header = data.server_header
    if not header and not data.server:
        return None
    units = {str(k): str((v or {}).get("unit", "")) for k, v in (header.get("figures") or {}).items() if isinstance(v, dict) or v is None}
    names = list(units) or sorted({n for row in data.server for n in row["figures"]})
    figures: dict[str, ServerFigure] = {}
    for name in names:
        values = [row["figures"][name] for row in data.server if row["figures"].get(name) is not None]
        figures[name] = ServerFigure(
            unit=units.get(name, ""),
            samples=len(values),
            intervals=len(data.server),
            min=round(min(values), 9) if values else None,
            p50=round(_median(values), 9) if values else None,
            max=round(max(values), 9) if values else None,
            last=round(values[-1], 9) if values else None,
        )
    errors = [str(e)[:300] for row in data.server for e in row.get("errors", [])][:10]
    interval = header.get("interval_s")
    return ServerSide(
        source=str(header.get("source", "unknown"))[:100],
        interval_s=float(interval) if isinstance(interval, (int, float)) and interval > 0 else 2.0,
        endpoints=[str(u)[:2000] for u in header.get("endpoints") or [] if isinstance(u, str)][:20],
        prometheus=header.get("prometheus") if isinstance(header.get("prometheus"), str) else None,
        figures=figures,
        errors=errors,
    )
