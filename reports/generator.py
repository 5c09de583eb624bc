"""The generator's own lag in a results folder: its figures, and the rule that makes a run invalid.

A load generator that is late to send, or slow to take a finished response off
the socket, adds its own time to every latency it reports. The snapshots carry
two histograms per interval (``generator``, docs/contracts.md §5):
``scheduler_lateness`` (open model: actual send of a journey's first request −
its intended instant) and ``response_handling_lag`` (the gevent loop's lag, a
10 ms timer's overshoot: the proxy for how long a readable response waits to
have its time recorded). See docs/open-model.md, "A generator that knows when it lies".

The rule (verdict ``generator-lag``): for every judged percentile threshold
``pP`` (a request name, a step, ``all``), the generator's lag at the same
percentile — scheduler lateness pP + response-handling lag pP, what the judged
pP moves by when the generator's lag and the latency rank together (the sum of
quantiles of comonotone parts; the two lags are summed the same way) — must stay
within ``max(TOLERANCE_RATIO × the judged figure, TOLERANCE_FLOOR_S)``. Beyond
it the run is invalid (exit 3) with one line naming the figure. A capacity run
is judged by its knee (its last step overloads on purpose): its lag is reported,
not judged.

Usage::

    lag = generator_lag(data, results)     # a peakload.core.summary.GeneratorLag, or None without samples
    reason = lag_reason(lag)               # the one line when a check failed, else None
"""

from __future__ import annotations

import html
import math
from typing import Any

from hdrh.histogram import HdrHistogram

from peakload.core.records import GENERATOR_KINDS, SNAPSHOTS
from peakload.core.summary import GeneratorLag, LagCheck, LagFigures, Summary
from peakload.core.thresholds import LATENCY_METRICS
from reports.charts import line_chart
from reports.gate import ThresholdResult
from reports.hdr import decode_add, percentiles
from reports.results import RunData, new_histogram

__all__ = [
    "TOLERANCE_RATIO",
    "TOLERANCE_FLOOR_S",
    "LAG_LABELS",
    "lag_histograms",
    "lag_timeline",
    "generator_lag",
    "lag_reason",
    "lag_markdown",
    "lag_html",
]

# 5 %: above the 2-4 % by which a burst of ~600 responses after a stall moved the reported p90 (issue 13),
# below the error the measurement-truth tests allow (3-4 %) plus that margin. 5 ms: an idle gevent loop's timer
# overshoots by up to ~1 ms (libev's resolution) and a lone scheduling hiccup by a few ms; below that floor a
# "lag" is noise of the clock, not of the generator.
TOLERANCE_RATIO = 0.05
TOLERANCE_FLOOR_S = 0.005
LAG_LABELS = {"scheduler_lateness": "scheduler lateness", "response_handling_lag": "response-handling lag"}


def lag_histograms(data: RunData) -> dict[str, HdrHistogram]:
    """Each generator lag merged over the run (only kinds with samples); an unreadable histogram is a problem line."""
    out: dict[str, HdrHistogram] = {}
    for iv in data.intervals:
        for kind, row in iv.generator.items():
            hist = out.get(kind)
            if hist is None:
                hist = out[kind] = new_histogram()
            try:
                decode_add(hist, row["hdr"])
            except Exception as exc:  # a corrupt histogram must not sink the report
                data.problems.append(f"{SNAPSHOTS}: interval {iv.seq} generator {kind}: unreadable histogram ({exc.__class__.__name__})")
    return {k: out[k] for k in GENERATOR_KINDS if k in out and out[k].get_total_count()}


def lag_timeline(data: RunData) -> dict[str, list[tuple[float, float]]]:
    """Per interval (x = seconds since the first interval's start): each generator lag's p99 in ms."""
    out: dict[str, list[tuple[float, float]]] = {}
    if not data.intervals:
        return out
    t0 = data.intervals[0].t_start
    for iv in data.intervals:
        for kind, row in iv.generator.items():
            hist = new_histogram()
            try:
                decode_add(hist, row["hdr"])
            except Exception:  # listed once by lag_histograms
                continue
            p99 = percentiles(hist, [99])[99]
            if p99 is not None:
                out.setdefault(kind, []).append((iv.t_end - t0, p99 / 1000))
    return {k: out[k] for k in GENERATOR_KINDS if k in out}


def _percentile(hist: HdrHistogram | None, p: float) -> float | None:
    if hist is None:
        return None
    v = percentiles(hist, [p])[p]
    return None if v is None else v / 1e6


def _ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 3)


def _figures(hist: HdrHistogram | None) -> LagFigures | None:
    if hist is None:
        return None
    return LagFigures(
        samples=hist.get_total_count(),
        p50_ms=_ms(_percentile(hist, 50)),
        p99_ms=_ms(_percentile(hist, 99)),
        max_ms=_ms(hist.get_max_value() / 1e6),
    )


def generator_lag(data: RunData, results: list[ThresholdResult]) -> GeneratorLag | None:
    """The run's generator-lag figures and one check per judged percentile threshold; None when no lag was measured."""
    hists = lag_histograms(data)
    if not hists:
        return None
    checks = []
    for r in results:
        t = r.threshold
        if r.passed is None or r.observed is None or not LATENCY_METRICS.match(t.metric) or not t.metric.startswith("p"):
            continue
        p = float(t.metric[1:])
        q = p  # the judged percentile: the lag at the rank the threshold looks at
        parts = {kind: _percentile(hists.get(kind), q) for kind in GENERATOR_KINDS}
        lag = sum(v for v in parts.values() if v is not None)
        allowed = max(TOLERANCE_RATIO * r.observed, TOLERANCE_FLOOR_S)
        checks.append(
            LagCheck(
                threshold=t.id,
                scope=t.scope,
                metric=t.metric,
                judged_ms=round(r.observed * 1000, 3),
                lag_percentile=q,
                scheduler_lateness_ms=_ms(parts["scheduler_lateness"]),
                response_handling_lag_ms=_ms(parts["response_handling_lag"]),
                lag_ms=round(lag * 1000, 3),
                allowed_ms=round(allowed * 1000, 3),
                share=round(lag / r.observed, 6) if r.observed > 0 else None,
                within=lag <= allowed,
            )
        )
    return GeneratorLag(
        scheduler_lateness=_figures(hists.get("scheduler_lateness")),
        response_handling_lag=_figures(hists.get("response_handling_lag")),
        tolerance_ratio=TOLERANCE_RATIO,
        tolerance_floor_ms=TOLERANCE_FLOOR_S * 1000,
        checks=checks,
    )


def _dur(ms: float) -> str:
    return f"{ms / 1000:.3g} s" if ms >= 1000 else f"{ms:.3g} ms"


def lag_reason(lag: GeneratorLag | None) -> str | None:
    """One line naming the figure when the generator's lag is beyond the tolerance of a judged percentile, else None.

    Usage: ``lag_reason(summary.generator)`` → ``"the generator's own lag (scheduler lateness p99 180 ms + ...) is 12 % of ..."``
    """
    if lag is None:
        return None
    beyond = [c for c in lag.checks if not c.within]
    if not beyond:
        return None
    worst = max(beyond, key=lambda c: (math.inf if c.share is None else c.share, c.lag_ms))
    q = f"p{worst.lag_percentile:g}"
    parts: list[Any] = [
        f"{LAG_LABELS[kind]} {q} {_dur(v)}"
        for kind, v in (("scheduler_lateness", worst.scheduler_lateness_ms), ("response_handling_lag", worst.response_handling_lag_ms))
        if v is not None
    ]
    figure = " + ".join(parts) + (f" = {_dur(worst.lag_ms)}" if len(parts) > 1 else "")
    share = "more than all" if worst.share is None else f"{worst.share * 100:.0f} %"
    more = f" (and {len(beyond) - 1} more judged figure{'s' if len(beyond) > 2 else ''})" if len(beyond) > 1 else ""
    return (
        f"the generator's own lag ({figure}) is {share} of the judged {worst.metric} of {worst.scope} ({_dur(worst.judged_ms)}): "
        f"beyond {lag.tolerance_ratio * 100:g} % (floor {lag.tolerance_floor_ms:g} ms){more}"
    )


# ---------------------------------------------------------------- in the reports (pure renderers)


def _cell(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _rows(lag: GeneratorLag) -> list[tuple[str, str, LagFigures | None]]:
    return [
        ("scheduler lateness", "a journey's start (= its first send) − its intended instant", lag.scheduler_lateness),
        ("response-handling lag", "the gevent loop's lag (a 10 ms timer's overshoot), the proxy", lag.response_handling_lag),
    ]


def _check_text(c: LagCheck) -> str:
    share = "n/a" if c.share is None else f"{c.share * 100:.1f} %"
    verdict = "within" if c.within else "BEYOND"
    return (
        f"{c.scope}: judged {c.metric} {_dur(c.judged_ms)}; generator lag p{c.lag_percentile:g} {_dur(c.lag_ms)} ({share}) "
        f"{verdict} the allowed {_dur(c.allowed_ms)}"
    )


def lag_markdown(summary: Summary) -> list[str]:
    """The report's "Generator lag" section (Markdown lines); nothing when the run did not measure it."""
    lag = summary.generator
    if lag is None:
        return []
    out = [
        "",
        "### Generator lag (the generator's own time, not the shop's)",
        "",
        "| figure | what | samples | p50 ms | p99 ms | max ms |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, what, f in _rows(lag):
        if f is None:
            out.append(f"| {label} | {what} | 0 | n/a | n/a | n/a |")
        else:
            out.append(f"| {label} | {what} | {f.samples} | {_cell(f.p50_ms)} | {_cell(f.p99_ms)} | {_cell(f.max_ms)} |")
    out += ["", f"Tolerance: max({lag.tolerance_ratio * 100:g} % of a judged percentile, {lag.tolerance_floor_ms:g} ms)."]
    out += [f"- {'✅' if c.within else '❌'} {_check_text(c)}" for c in lag.checks]
    return out


def lag_html(summary: Summary, data: RunData) -> str:
    """The report's "Generator lag" section (HTML: a table, the checks, a chart of each lag's p99 per interval)."""
    lag = summary.generator
    if lag is None:
        return ""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(label)}</td><td>{e(what)}</td><td>{0 if f is None else f.samples}</td>"
        + "".join(f"<td>{_cell(None if f is None else getattr(f, k))}</td>" for k in ("p50_ms", "p99_ms", "max_ms"))
        + "</tr>"
        for label, what, f in _rows(lag)
    )
    checks = "".join(f'<li class="{"ok" if c.within else "bad"}">{e(_check_text(c))}</li>' for c in lag.checks)
    series = [(LAG_LABELS[k] + " p99", pts) for k, pts in lag_timeline(data).items()]
    chart = line_chart("Generator lag p99 per interval (ms)", series, y_unit="ms", chart_id="chart-generator-lag") if series else ""
    return (
        '<h2>Generator lag</h2><table id="generator-lag"><tr><th>figure</th><th>what</th><th>samples</th>'
        f"<th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>{rows}</table>"
        f"<p>Tolerance: max({lag.tolerance_ratio * 100:g} % of a judged percentile, {lag.tolerance_floor_ms:g} ms).</p>"
        f'<ul id="generator-lag-checks">{checks}</ul>{chart}'
    )
