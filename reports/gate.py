"""The CI gate: thresholds evaluated against saved results, and live (abort).

Usage::

    results = evaluate(thresholds, data)          # after the run
    live = LiveGate(thresholds); live.feed(interval) -> abort reason | None

A threshold's scope is ``all``, ``business``, a request key
(``"GET /api/products/{sku}"``), a bare route (every method of it) or a journey
step (``step:checkout``: that step's requests, whatever the platform names them).

What the run's platform does not offer (``run.json`` ``not_offered``: journey steps
and books fields) is not judged: a threshold on such a step, or a business metric
that needs such a step or books field, is skipped as n/a — never passed, never failed.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from peakload.core import BUSINESS_METRICS, METRICS, Threshold, format_value, unit_of
from peakload.core.records import EVENTS, RUN_JSON, RunMeta, read_json_lines, read_json_object
from peakload.core.steps import step_scope
from peakload.core.summary import ThresholdRow
from peakload.core.thresholds import SERVER_SCOPE
from reports.results import Interval, RequestTotals, RunData
from reports.windows import Timeline, inside, timeline_of, window_data

__all__ = ["ThresholdResult", "evaluate", "observe", "not_offered_by", "LiveGate", "NOT_OFFERED"]

NOT_OFFERED = "n/a (not offered by this platform)"

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
}


@dataclass(frozen=True)
class ThresholdResult:
    threshold: Threshold
    observed: float | None
    passed: bool | None  # None = skipped (no data for an SLO-derived threshold, or not offered by the platform)
    message: str
    span: tuple[float, float | None] | None = None  # a scoped threshold's window: offsets (s) from the run's start
    unit: str | None = None  # a server figure's unit (s, ratio, 1/s; else count); None: the metric's own

    def to_row(self) -> ThresholdRow:
        t = self.threshold
        return ThresholdRow(
            id=t.id,
            scope=t.scope,
            metric=t.metric,
            op=t.op,
            limit=t.value,
            unit=self.unit or unit_of(t.metric),  # type: ignore[arg-type]
            observed=self.observed,
            passed=self.passed,
            abort=t.abort,
            source=t.source,
            message=self.message,
            window=t.window.text if t.window is not None else None,
            window_start_s=self.span[0] if self.span is not None else None,
            window_end_s=self.span[1] if self.span is not None else None,
        )


def _scope_rows(scope: str, data: RunData) -> list[RequestTotals]:
    step = step_scope(scope)
    if step is not None:
        return [data.step_totals[step]] if step in data.step_totals else []
    totals = data.totals
    if scope == "all":
        return list(totals.values())
    if scope in totals:
        return [totals[scope]]
    return [t for t in totals.values() if t.name == scope]


def _merge(rows: list[RequestTotals]) -> RequestTotals:
    if len(rows) == 1:
        return rows[0]
    merged = RequestTotals(name="merged", method="")
    for r in rows:
        merged.merge(r)
    return merged


def _request_metric(metric: str, row: RequestTotals, seconds: float) -> float | None:
    if metric == "requests":
        return float(row.count)
    if metric == "failures":
        return float(row.failures)
    if metric == "error_ratio":
        return row.error_ratio if row.count else None
    if metric == "rps":
        return row.count / seconds if seconds > 0 else None
    if not row.count or row.hdr.get_total_count() == 0:
        return None
    if metric == "avg":
        return row.sum_s / row.count
    if metric == "max":
        return row.hdr.get_max_value() / 1e6
    if metric == "min":
        return row.hdr.get_min_value() / 1e6
    return row.percentile(float(metric[1:]))


def _business_metric(metric: str, data: RunData) -> tuple[float | None, str]:
    b, rec = data.business, data.reconciliation
    if metric == "orders_per_s":
        return (b.get("orders", 0) / data.duration_s if data.duration_s else None), ""
    if metric == "payment_success_ratio":
        paid = b.get("payments_success", 0)
        tried = paid + b.get("payments_declined", 0) + b.get("payments_error", 0)
        return (paid / tried if tried else None), ""
    if metric in ("dropped", "dropped_ratio"):
        scheduled, dropped = data.arrivals.get("scheduled", 0), data.arrivals.get("dropped", 0)
        if not scheduled:
            return None, "no arrivals were scheduled (a closed-model run has no dropped arrivals to judge)"
        return (float(dropped) if metric == "dropped" else dropped / scheduled), ""
    if rec is None or "error" in rec:
        why = (rec or {}).get("error", "the target gave no reconciliation")
        return None, f"no reconciliation: {why}"
    spec = METRICS.get(metric)
    fields = spec.reconciled if spec is not None else ()
    if not fields:
        return None, f"{metric} is not a business metric"
    if metric == "duplicates" and rec.get("gateway_checked") is False:
        # duplicate_charges come from the payment gateway's own ledger; unasked, they are unknown, not 0
        return None, "the payment gateway's ledger was not checked (gateway_checked: false): duplicate charges unknown"
    missing = [f for f in fields if not isinstance(rec.get(f), int) or isinstance(rec.get(f), bool)]
    if missing:
        # a figure the target cannot give is n/a, never 0
        return None, f"the reconciliation has no {missing[0]}"
    if metric == "payments_mismatch":
        return float(abs(rec["payments_succeeded"] - rec["orders_paid"])), ""
    return float(sum(rec[f] for f in fields)), ""


def not_offered_by(t: Threshold, not_offered: tuple[str, ...] | list[str]) -> str | None:
    """What of ``not_offered`` keeps ``t`` from being judged (a step, a books field, the metric), or None.

    Usage: ``not_offered_by(parse_threshold("step:pay", "p95 < 1s"), ("pay",))`` → ``"pay"``.
    """
    if not not_offered:
        return None
    gone = set(not_offered)
    step = step_scope(t.scope)
    if step is not None and step in gone:
        return step
    if t.scope == "business" or t.metric in BUSINESS_METRICS:
        spec = METRICS.get(t.metric)
        needs = (t.metric, *spec.reconciled, *spec.steps) if spec is not None else (t.metric,)
        return next((n for n in needs if n in gone), None)
    return None


_ROW_UNITS = {"s": "s", "ratio": "ratio", "1/s": "1/s"}


def server_unit(metric: str, data: RunData) -> str:
    """A server figure's unit as a threshold row gives it (``s``, ``ratio``, ``1/s``, else ``count``)."""
    fig = (data.server_header.get("figures") or {}).get(metric)
    unit = fig.get("unit", "") if isinstance(fig, dict) else ""
    return _ROW_UNITS.get(unit, "count")


def _format_server(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "s":
        return f"{value * 1000:.1f}ms"
    if unit == "ratio":
        return f"{value * 100:.3g}%"
    return f"{value:.4g}" + ("/s" if unit == "1/s" else "")


def _server_metric(t: Threshold, data: RunData) -> tuple[float | None, str]:
    """A server figure judged in every interval: the worst interval's value against the limit
    (the largest for ``<``/``<=``, the smallest for ``>``/``>=``, the farthest for ``==``)."""
    known = set(data.server_header.get("figures") or {}) | {n for r in data.server for n in r["figures"]}
    if not known:
        return None, "the run sampled no server-side figures (the profile's `server` section names them)"
    if t.metric not in known:
        return None, f"no server figure {t.metric!r}; the run sampled {', '.join(sorted(known))}"
    values = [v for r in data.server if (v := r["figures"].get(t.metric)) is not None]
    if not values:
        return None, f"server figure {t.metric!r} was n/a in every interval"
    if t.op in ("<", "<="):
        return max(values), ""
    if t.op in (">", ">="):
        return min(values), ""
    return max(values, key=lambda v: abs(v - t.value)), ""


def observe(t: Threshold, data: RunData) -> tuple[float | None, str]:
    """The observed value for one threshold (seconds / ratio / count), and why it is None
    (:data:`NOT_OFFERED` when the platform does not offer what it needs)."""
    if t.scope == SERVER_SCOPE:
        return _server_metric(t, data)
    if not_offered_by(t, data.meta.not_offered) is not None:
        return None, NOT_OFFERED
    if t.scope == "business" or t.metric in BUSINESS_METRICS:
        return _business_metric(t.metric, data)
    rows = _scope_rows(t.scope, data)
    if not rows:
        step = step_scope(t.scope)
        return None, f"no requests named {t.scope!r}" if step is None else f"no requests for step {step!r}"
    value = _request_metric(t.metric, _merge(rows), data.duration_s)
    return value, "" if value is not None else "no samples"


def _windowed(t: Threshold, data: RunData, timeline: Timeline) -> tuple[RunData | None, tuple[float, float | None] | None, str]:
    """The part of the run a scoped threshold is judged on, its span (offsets), or why there is none."""
    assert t.window is not None
    span = timeline.span(t.window)
    if isinstance(span, str):
        return None, None, span
    if timeline.t0 is None:
        return None, span, "no interval was recorded"
    if t.metric in BUSINESS_METRICS and (spec := METRICS.get(t.metric)) is not None and spec.reconciled:
        return None, span, "the books are reconciled once per run, not per window"
    part = window_data(data, timeline.t0, *span)
    if part.all_requests().count == 0 and not (t.metric in ("dropped", "dropped_ratio") and part.arrivals.get("scheduled")):
        return None, span, f"no requests in the window ({_span_text(span)})"
    return part, span, ""


def _span_text(span: tuple[float, float | None]) -> str:
    start, end = span
    return f"{start:g}s..{'end' if end is None else f'{end:g}s'}"


def evaluate(thresholds: list[Threshold], data: RunData) -> list[ThresholdResult]:
    """Evaluate every threshold: on the whole run, or a scoped one on exactly its window's intervals
    (:mod:`reports.windows`). A window without requests is not judged (``passed`` None), never passed."""
    out = []
    timeline = timeline_of(data) if any(t.window is not None for t in thresholds) else None
    for t in thresholds:
        span: tuple[float, float | None] | None = None
        judged_on = data
        if t.window is not None:
            assert timeline is not None
            part, span, why = _windowed(t, data, timeline)
            if part is None:
                out.append(ThresholdResult(t, None, None, f"not judged: {why}", span))
                continue
            judged_on = part
        value, why = observe(t, judged_on)
        if value is None and t.window is not None:
            out.append(ThresholdResult(t, None, None, f"not judged: {why}", span))
            continue
        if value is None:
            # What the platform does not offer is n/a, whoever asked; an SLO-derived threshold on a
            # request (or step) the profile never sends is skipped; one the profile asked for explicitly
            # fails without data.
            skipped = why == NOT_OFFERED or (t.source.startswith("slo:") and why.startswith(("no requests", "no samples")))
            out.append(ThresholdResult(t, None, None if skipped else False, f"{'skipped' if skipped else 'failed'}: {why}"))
            continue
        ok = _OPS[t.op](value, t.value)
        rel = "within" if ok else "breaks"
        if t.scope == SERVER_SCOPE:
            unit = server_unit(t.metric, data)
            where = f" {t.window.text} ({_span_text(span)})" if t.window is not None and span else ""
            message = f"worst interval{where}: {_format_server(value, unit)}, {rel} limit {t.metric} {t.op} {_format_server(t.value, unit)}"
            out.append(ThresholdResult(t, value, ok, message, span, unit=unit))
            continue
        where = f" {t.window.text} ({_span_text(span)}, {len(judged_on.intervals)} intervals)" if t.window is not None and span else ""
        out.append(
            ThresholdResult(
                t,
                value,
                ok,
                f"observed {format_value(t.metric, value)}{where} {rel} limit {t.metric} {t.op} {format_value(t.metric, t.value)}",
                span,
            )
        )
    return out


class LiveGate:
    """Evaluates ``abort`` thresholds as intervals arrive (like k6 ``abortOnFail`` + ``delayAbortEval``).

    A threshold must stay breached for its ``grace`` seconds of run time before
    the gate asks to abort. A scoped threshold (``during:``/``after:``) is judged live on
    the intervals inside its window only (the same midpoint rule as after the run), so it
    can abort only while its window runs; that needs ``run_dir`` (the profile copy names the
    stages, ``events.jsonl``/``run.json`` the schedule start). Without ``run_dir`` scoped
    thresholds are not live: they are judged after the run only.
    """

    def __init__(self, thresholds: list[Threshold], *, run_dir: Path | None = None) -> None:
        aborts = [t for t in thresholds if t.abort]
        self.thresholds = [t for t in aborts if t.window is None]
        self.scoped = [t for t in aborts if t.window is not None] if run_dir is not None else []
        self.run_dir = run_dir
        self.data = RunData(path=Path("."))  # a live window: nothing is read from disk
        self._parts: dict[str, RunData] = {t.id: RunData(path=Path(".")) for t in self.scoped}
        self._timeline: Timeline | None = None
        self._breached_since: dict[str, float] = {}

    def _resolve(self, first: Interval) -> Timeline:
        """The run's timeline, read from ``run_dir`` until the schedule's own start is known."""
        tl = self._timeline
        if tl is None or (tl.basis == "the first interval's start" and len(self.data.intervals) <= 5):
            assert self.run_dir is not None
            probe = RunData(path=self.run_dir, intervals=[first])
            probe.meta = RunMeta.from_json(read_json_object(self.run_dir / RUN_JSON, []), []) or RunMeta()
            probe.events = [ev for ev in read_json_lines(self.run_dir / EVENTS, []) if isinstance(ev, dict)]
            tl = self._timeline = timeline_of(probe)
        return tl

    def _check(self, t: Threshold, d: RunData, interval: Interval) -> str | None:
        value, _ = observe(t, d)
        if value is None or _OPS[t.op](value, t.value):
            self._breached_since.pop(t.id, None)
            return None
        since = self._breached_since.setdefault(t.id, interval.t_start)
        now = interval.t_end
        if now - since >= t.grace:
            return f"threshold {t.id!r} breached for {now - since:.0f}s (grace {t.grace:g}s): observed {format_value(t.metric, value)}"
        return None

    def feed(self, interval: Interval) -> str | None:
        """Add one interval; return the abort reason once a threshold stayed breached past its grace."""
        if not self.thresholds and not self.scoped:
            return None
        d = self.data
        d.add_interval(interval)
        for t in self.thresholds:
            reason = self._check(t, d, interval)
            if reason is not None:
                return reason
        if self.scoped:
            tl = self._resolve(d.intervals[0])
            for t in self.scoped:
                assert t.window is not None
                span = tl.span(t.window)
                if isinstance(span, str) or tl.t0 is None or not inside(interval, tl.t0, *span):
                    continue
                part = self._parts[t.id]
                part.add_interval(interval)
                reason = self._check(t, part, interval)
                if reason is not None:
                    return reason
        return None
