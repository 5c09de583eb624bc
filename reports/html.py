"""report.html: one self-contained file (inline CSS + SVG, no scripts, no network).

Usage: ``render_html(summary, data, compare_rows=None) -> str``
"""

from __future__ import annotations

import datetime as dt
import html
import math
from typing import Any

from peakload.core.steps import STEPS
from peakload.core.summary import Summary
from reports.charts import bar_chart, line_chart
from reports.compare import CompareRow
from reports.generator import lag_html
from reports.hdr import nonzero
from reports.results import RunData

__all__ = ["render_html"]
CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.pass{color:#080}.fail{color:#b00;font-weight:600}.skip{color:#888}
.banner{padding:8px 12px;border-radius:4px;margin:8px 0}.passed{background:#e6f4e6}.failed{background:#fbe3e3}.invalid{background:#fff3cd}.unjudged{background:#eee}.ungated{background:#eef}
td.msg{text-align:left;font-family:ui-monospace,monospace;font-size:12px;word-break:break-word}
.problems{background:#fff3cd;padding:6px 12px}svg .title{font-weight:600;font-size:13px}svg .axis,svg .legend{font-size:11px}
code{background:#f3f3f3;padding:0 3px}svg circle.pt:hover{fill-opacity:1}"""


_BANNER = {"ungated": "NO THRESHOLDS (by design)"}  # other statuses: their name in capitals


def _e(v: Any) -> str:
    return html.escape(str(v))


def _markers(data: RunData) -> list[tuple[float, str]]:
    if not data.intervals:
        return []
    t0 = data.intervals[0].t_start
    out = []
    for ev in data.events:
        try:
            out.append((float(ev["t"]) - t0, str(ev.get("name") or ev.get("kind") or "event")))
        except (KeyError, TypeError, ValueError):
            continue
    return out


def _distribution(data: RunData) -> str:
    h = data.all_requests().hdr
    total = h.get_total_count()
    if not total:
        return "<p>No latency samples.</p>"
    edges_ms = [1, 2, 5, 10, 25, 50, 100, 250, 300, 500, 1000, 2000, 5000, 10000, math.inf]
    counts = [0] * len(edges_ms)
    for value, count in nonzero(h):
        v_ms = value / 1000
        for i, edge in enumerate(edges_ms):
            if v_ms <= edge:
                counts[i] += count
                break
    labels = [f"≤{e:g}" if e != math.inf else ">10000" for e in edges_ms]
    return bar_chart(
        "Latency distribution (ms, all requests)",
        [(lbl, 100.0 * c / total) for lbl, c in zip(labels, counts)],
        y_unit="%",
        chart_id="chart-distribution",
    )


def _funnel(data: RunData, not_offered: list[str]) -> str:
    b = data.business
    stages = [
        ("views", "product", b.get("product_views", 0)),
        ("cart adds", "cart_add", b.get("cart_adds", 0)),
        ("orders", "checkout", b.get("orders", 0)),
        ("paid", "pay", b.get("payments_success", 0)),
    ]
    # a stage the platform does not offer is left out and named, not drawn as a measured 0
    steps = [(k, v) for k, step, v in stages if step not in not_offered]
    missing = [k for k, step, _ in stages if step in not_offered]
    if not any(v for _, v in steps):
        return "<p>No funnel events were recorded.</p>"
    top = steps[0][1] or 1
    notes = [f"{v} ({100.0 * v / top:.1f}%)" for _, v in steps]
    title = "Funnel: " + " → ".join(k for k, _ in steps)
    chart = bar_chart(title, [(k, float(v)) for k, v in steps], chart_id="chart-funnel", note=notes)
    if missing:
        chart += f'<p id="funnel-not-offered">{_e(", ".join(missing))}: not offered by this platform (n/a)</p>'
    return chart


def _threshold_table(summary: Summary) -> str:
    if not summary.thresholds:  # a sentence, not a table with only its header
        if summary.status == "ungated":
            return '<p id="thresholds" class="skip">No thresholds by design (the profile declares <code>thresholds: none</code>).</p>'
        return '<p id="thresholds" class="skip">No thresholds declared (profile thresholds or an SLO spec): nothing was judged.</p>'
    rows = []
    for t in summary.thresholds:
        cls, word = {True: ("pass", "pass"), False: ("fail", "FAIL"), None: ("skip", "skip")}[t.passed]
        rows.append(
            f'<tr><td class="{cls}">{word}</td><td><code>{_e(t.scope)}</code></td><td><code>{_e(t.id.split(": ", 1)[-1])}</code></td>'
            f'<td style="text-align:left">{_e(t.message)}</td><td>{_e(t.source)}</td><td>{"abort" if t.abort else ""}</td></tr>'
        )
    return (
        '<table id="thresholds"><tr><th>result</th><th>scope</th><th>threshold</th><th>observed</th><th>source</th><th></th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _clock(seconds: float) -> str:
    whole = int(round(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _stage_table(summary: Summary) -> str:
    """Each profile stage's window, verdict and figures (the intervals whose midpoint lies inside it)."""

    def f(v: float | None, fmt: str = "{:.1f}") -> str:
        return "n/a" if v is None else fmt.format(v)

    word = {"passed": ("pass", "pass"), "failed": ("fail", "FAIL"), "not judged": ("skip", "not judged"), "no thresholds": ("skip", "—")}
    rows = []
    for st in summary.stages:
        cls, text = word[st.verdict]
        rows.append(
            f"<tr><td><code>{_e(st.label)}</code></td><td>{_clock(st.start_s)}..{_clock(st.end_s)}</td>"
            f'<td class="{cls}" title="{_e("; ".join(st.thresholds))}">{_e(text)}</td><td>{st.intervals}</td><td>{st.requests}</td>'
            f"<td>{f(None if st.error_ratio is None else st.error_ratio * 100, '{:.2f}%')}</td><td>{f(st.rps)}</td>"
            f"<td>{f(st.p50_ms)}</td><td>{f(st.p95_ms)}</td><td>{f(st.p99_ms)}</td></tr>"
        )
    return (
        f"<p>Offsets from the run's start ({_e(summary.timeline_start)}); an interval belongs to the stage its midpoint falls in.</p>"
        '<table id="stages"><tr><th>stage</th><th>window</th><th>verdict</th><th>intervals</th><th>requests</th><th>errors</th>'
        "<th>rps</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th></tr>" + "".join(rows) + "</table>"
    )


def _event_rows(summary: Summary, data: RunData) -> str:
    """Events with their time as an offset from the run's start (T+12.5 s, the charts' x axis) and as UTC clock time."""
    t0 = data.intervals[0].t_start if data.intervals else None
    rows = []
    for ev in summary.events:
        try:
            t = float(ev["t"])
        except (KeyError, TypeError, ValueError):
            rel, clock = "n/a", "n/a"
        else:
            rel = "n/a" if t0 is None else f"T{'+' if t >= t0 else '−'}{abs(t - t0):.1f} s"
            clock = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S.%f")[:-3] + " UTC"
        rows.append(
            f"<tr><td>{_e(rel)}</td><td>{_e(clock)}</td><td>{_e(ev.get('kind'))}</td><td>{_e(ev.get('name'))}</td>"
            f'<td style="text-align:left">{_e(ev.get("detail"))}</td></tr>'
        )
    return "".join(rows)


def _request_table(summary: Summary) -> str:
    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}"

    rows = []
    for key, r in [*summary.requests.items(), ("all", summary.total)]:
        rows.append(
            f"<tr><td><code>{_e(key)}</code></td><td>{r.requests}</td><td>{r.failures}</td><td>{r.error_ratio * 100:.2f}%</td>"
            f"<td>{r.rps:.1f}</td><td>{f(r.p50_ms)}</td><td>{f(r.p95_ms)}</td><td>{f(r.p99_ms)}</td><td>{f(r.max_ms)}</td></tr>"
        )
    return (
        '<table id="requests"><tr><th>request</th><th>count</th><th>failures</th><th>errors</th><th>rps</th><th>p50 ms</th><th>p95 ms</th>'
        "<th>p99 ms</th><th>max ms</th></tr>" + "".join(rows) + "</table>"
    )


def _reason_tables(summary: Summary) -> str:
    """One table per request that failed: its most frequent failure messages and their counts."""
    parts = []
    for i, (key, r) in enumerate((k, r) for k, r in summary.requests.items() if r.failure_reasons):
        body = "".join(f'<tr><td>{fr.count}</td><td class="msg">{_e(fr.message)}</td></tr>' for fr in r.failure_reasons)
        parts.append(
            f'<h3><code>{_e(key)}</code>: {r.failures} failures</h3><table class="reasons" id="reasons-{i}">'
            f"<tr><th>count</th><th>message</th></tr>{body}</table>"
        )
    if summary.user_errors:
        body = "".join(f'<tr><td>{e.count}</td><td class="msg">{_e(e.message)}</td></tr>' for e in summary.user_errors)
        parts.append(
            f'<h3>Errors raised in the locustfile</h3><table class="reasons" id="user-errors"><tr><th>count</th><th>exception</th></tr>{body}</table>'
        )
    return "".join(parts)


def _step_table(summary: Summary) -> str:
    """Totals per journey step (a step the platform does not offer: n/a), in journey order."""

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.1f}"

    rows = []
    for step in STEPS:
        r = summary.steps.get(step)
        if r is not None:
            rows.append(
                f"<tr><td><code>{_e(step)}</code></td><td>{r.requests}</td><td>{r.failures}</td><td>{r.error_ratio * 100:.2f}%</td>"
                f"<td>{r.rps:.1f}</td><td>{f(r.p50_ms)}</td><td>{f(r.p95_ms)}</td><td>{f(r.p99_ms)}</td></tr>"
            )
        elif step in summary.not_offered:
            rows.append(f"<tr><td><code>{_e(step)}</code></td>" + "<td>n/a</td>" * 7 + "</tr>")
    return (
        '<table id="steps"><tr><th>step</th><th>count</th><th>failures</th><th>errors</th><th>rps</th><th>p50 ms</th><th>p95 ms</th>'
        "<th>p99 ms</th></tr>" + "".join(rows) + "</table>"
    )


def _compare_table(rows: list[CompareRow]) -> str:
    body = []
    for r in rows:
        if r.metric == "requests" and r.verdict == "too few samples":
            continue
        cls = "fail" if r.regression else "pass" if r.verdict in ("no change", "improvement") else "skip"
        fmt = "{:+.4f}" if r.metric == "error_ratio" else "{:+.1%}"
        ch = "" if r.change is None else fmt.format(r.change)
        ci = "n/a" if r.ci is None else f"{fmt.format(r.ci[0])} .. {fmt.format(r.ci[1])}"
        pv = "n/a" if r.p_value is None else f"{r.p_value:.3g}"
        needs = "" if r.verdict != "inconclusive" else ("n/a" if r.needed is None else f"{r.needed:,} per run")
        body.append(
            f"<tr><td><code>{_e(r.key)}</code></td><td>{_e(r.metric)}</td><td>{_e(r.baseline)}</td><td>{_e(r.current)}</td>"
            f"<td>{ch}</td><td>{_e(ci)}</td><td>{_e(pv)}</td><td>{_e(r.tolerance)}</td>"
            f'<td class="{cls}" title="{_e(r.test)}">{_e(r.verdict)}</td><td>{_e(needs)}</td></tr>'
        )
    head = (
        '<table id="compare"><tr><th>request</th><th>metric</th><th>baseline</th><th>current</th><th>change</th>'
        "<th>95 % interval</th><th>p-value</th><th>tolerance</th><th>verdict</th><th>requests needed</th></tr>"
    )
    return head + "".join(body) + "</table>"


def _capacity_table(c: dict[str, Any]) -> str:
    rows = []
    for st in c.get("steps", []):

        def ms(v: Any) -> str:
            return "n/a" if v is None else f"{v:.0f}"

        cls, word = ("pass", "ok") if st.get("passed") else ("fail", "KNEE: " + "; ".join(st.get("messages", [])[:1]))
        rows.append(
            f"<tr><td>{_e(st.get('step'))}</td><td>{_e(st.get('rate'))}</td><td>{_e(st.get('requests'))}</td>"
            f"<td>{st.get('rps', 0):.1f}</td><td>{ms(st.get('p95_ms'))}</td><td>{ms(st.get('p99_ms'))}</td>"
            f"<td>{_e(st.get('dropped'))}</td><td class='{cls}' style='text-align:left'>{_e(word)}</td></tr>"
        )
    head = (
        f'<p id="capacity-verdict"><b>{_e(c.get("verdict", ""))}</b> — highest sustainable rate '
        f"{_e(c.get('highest_sustainable_rate'))}/s; first failing threshold: {_e(c.get('first_failing_threshold') or 'none')}</p>"
    )
    why = c.get("attribution")
    if isinstance(why, dict) and why.get("side"):
        evidence = "; ".join(str(e) for e in why.get("evidence") or []) or "no saturation signal in the client, server or generator figures"
        head += f'<p id="capacity-attribution">Which side saturated: <b>{_e(why["side"])}</b> — {_e(evidence)}</p>'
    return head + (
        '<table id="capacity"><tr><th>step</th><th>rate/s</th><th>requests</th><th>rps</th><th>p95 ms</th><th>p99 ms</th>'
        "<th>dropped</th><th>result</th></tr>" + "".join(rows) + "</table>"
    )


# how a server-side figure's unit is charted: (scale, axis unit); one chart per axis unit, on the client charts' time axis
_SERVER_AXES: dict[str, tuple[float, str]] = {"s": (1000.0, "ms"), "ratio": (100.0, "%"), "1/s": (1.0, "/s")}


def _server_charts(s: Summary, data: RunData, marks: list[tuple[float, str]]) -> list[str]:
    """The target's own figures (server.jsonl) under the client-side charts, on the same time axis, and their spread."""
    if s.server is None:
        return []
    t0 = data.intervals[0].t_start if data.intervals else (data.server[0]["t_start"] if data.server else 0.0)
    by_axis: dict[str, list[tuple[str, list[tuple[float, float]]]]] = {}
    for name, fig in s.server.figures.items():
        scale, axis = _SERVER_AXES.get(fig.unit, (1.0, fig.unit))
        points = [(row["t_end"] - t0, row["figures"][name] * scale) for row in data.server if row["figures"].get(name) is not None]
        if points:
            by_axis.setdefault(axis, []).append((name, points))
    parts = [f"<h2 id='server-side'>Server side <small>({_e(s.server.source)}, every {s.server.interval_s:g} s)</small></h2>"]
    for axis, series in by_axis.items():
        title = "Server side: " + ", ".join(n for n, _ in series) + (f" ({axis})" if axis else "")
        parts.append(line_chart(title, series, y_unit=axis, markers=marks, chart_id=f"chart-server-{_e(axis or 'value')}"))

    def shown(v: float | None, unit: str) -> str:
        if v is None:
            return "n/a"
        scale, axis = _SERVER_AXES.get(unit, (1.0, unit))
        return f"{v * scale:.4g} {_e(axis)}".strip()

    rows = "".join(
        f"<tr><td><code>{_e(n)}</code></td><td>{f.samples}/{f.intervals}</td>"
        + "".join(f"<td>{shown(v, f.unit)}</td>" for v in (f.min, f.p50, f.max, f.last))
        + "</tr>"
        for n, f in s.server.figures.items()
    )
    parts.append(
        "<table id='server-figures'><tr><th>figure</th><th>intervals with a value</th><th>min</th><th>median</th><th>max</th>"
        f"<th>last</th></tr>{rows}</table>"
    )
    if s.server.errors:
        parts.append("<p>Sampling errors (those intervals are n/a): " + "; ".join(_e(e) for e in s.server.errors[:3]) + "</p>")
    return parts


# Drag across a time chart to zoom into that span (the lines, points and markers stretch, the time ticks are
# relabelled); double-click to go back. Inline, no library, no network; without it the charts are static.
ZOOM_JS = """
(function () {
  document.querySelectorAll("svg.zoomable").forEach(function (svg) {
    var L = +svg.dataset.l, T = +svg.dataset.t, PW = +svg.dataset.pw, PH = +svg.dataset.ph, XMAX = +svg.dataset.xmax;
    var g = svg.querySelector("g.zoom"), ticks = svg.querySelectorAll("text.xtick"), view = [0, XMAX], start = null, band = null;
    if (!g || !(XMAX > 0)) return;
    function frac(e) {
      var r = svg.getBoundingClientRect(), px = (e.clientX - r.left) * svg.viewBox.baseVal.width / r.width;
      return Math.max(0, Math.min(1, (px - L) / PW));
    }
    function show(a, b) {
      view = [a, b];
      var k = XMAX / (b - a), tx = L - (L + PW * a / XMAX) * k;
      if (a <= 0 && b >= XMAX) g.removeAttribute("transform"); else g.setAttribute("transform", "translate(" + tx + ",0) scale(" + k + ",1)");
      ticks.forEach(function (t, i) { var v = a + (b - a) * i / (ticks.length - 1); t.textContent = (b - a < 10 ? v.toFixed(1) : v.toFixed(0)) + "s"; });
      svg.classList.toggle("zoomed", !(a <= 0 && b >= XMAX));
    }
    svg.addEventListener("mousedown", function (e) {
      start = frac(e);
      band = document.createElementNS(svg.namespaceURI, "rect");
      band.setAttribute("y", T); band.setAttribute("height", PH); band.setAttribute("fill", "rgba(31,119,180,0.15)");
      band.setAttribute("x", L + PW * start); band.setAttribute("width", 0);
      svg.appendChild(band); e.preventDefault();
    });
    svg.addEventListener("mousemove", function (e) {
      if (start === null) return;
      var f = frac(e); band.setAttribute("x", L + PW * Math.min(start, f)); band.setAttribute("width", PW * Math.abs(f - start));
    });
    window.addEventListener("mouseup", function (e) {
      if (start === null) return;
      var f = frac(e), lo = Math.min(start, f), hi = Math.max(start, f), span = view[1] - view[0];
      start = null; band.remove();
      if (hi - lo > 0.01) show(view[0] + span * lo, view[0] + span * hi);
    });
    svg.addEventListener("dblclick", function () { show(0, XMAX); });
  });
})();
"""


def render_html(summary: Summary, data: RunData, compare_rows: list[CompareRow] | None = None, *, baseline_id: str = "") -> str:
    s = summary
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>peakload {_e(s.run_id)}</title><style>{CSS}</style></head><body>",
        f"<h1>peakload run <code>{_e(s.run_id)}</code></h1>",
        f'<div class="banner {s.status}" id="verdict"><b>{_e(_BANNER.get(s.status, s.status.upper()))}</b> (exit {s.exit_code})'
        f"{' — ' + _e(s.reason) if s.reason else ''}"
        f' <span id="decided-by">(decided by rule <code>{_e(s.decided_by)}</code>)</span></div>',
        f"<p>Profile <b>{_e(s.profile)}</b> · target <code>{_e(s.target)}</code> · {_e(s.started)} → {_e(s.ended)} "
        f"({s.duration_s:.0f} s, {s.intervals} intervals) · git {_e(s.git_revision)} · latency basis: {_e(s.latency_basis)}</p>",
    ]
    if s.problems:
        parts.append(
            '<div class="problems" id="problems"><b>Incomplete or unreadable results</b><ul>'
            + "".join(f"<li>{_e(p)}</li>" for p in s.problems)
            + "</ul></div>"
        )
    if s.dialect is not None:
        writes = {True: "isolated (tagged test traffic)", False: "NOT isolated: real orders in the shop", None: "unknown"}[s.isolated]
        writes += f" ({s.isolation})" if s.isolation else ""
        parts.append(f'<p id="platform">Platform dialect <code>{_e(s.dialect)}</code>; the run\'s writes: {_e(writes)}</p>')
    if s.not_offered:
        parts.append(
            '<p id="not-offered"><b>Not offered by this platform</b> (n/a, not measured): '
            + ", ".join(f"<code>{_e(n)}</code>" for n in s.not_offered)
            + "</p>"
        )
    parts += ["<h2>Thresholds</h2>", _threshold_table(s)]
    if s.attribution is not None:
        parts.append(f"<p id='attribution'>Which side saturated under the peak load: <b>{_e(s.attribution.get('text', 'n/a'))}</b></p>")
    parts.append(lag_html(s, data))  # empty when the run did not measure the generator's lag
    if s.stages:
        parts += ["<h2>Stages</h2>", _stage_table(s)]
    if compare_rows is not None:
        n = sum(r.regression for r in compare_rows)
        b = s.baseline or {}
        parts += [
            f"<h2>Against baseline <code>{_e(baseline_id)}</code>: {n} regression(s)</h2>",
            f'<p id="compare-verdict">{_e(b.get("reason"))} (decided by rule <code>{_e(b.get("decided_by"))}</code>)</p>',
            _compare_table(compare_rows),
        ]
    if data.intervals:
        tl = data.timeline
        marks = _markers(data)
        parts += [
            "<h2>Load</h2>",
            "<p class='hint'>Hover a point for its value; drag across a time chart to zoom into that span, double-click to go back.</p>",
            line_chart("Users and requests per second", [("users", tl["users"]), ("rps", tl["rps"])], markers=marks, chart_id="chart-load"),
            "<h2>Latency over time</h2>",
            line_chart(
                "All requests: p50 / p95 / p99 (ms)",
                [(p, tl[p]) for p in ("p50", "p95", "p99")],
                y_unit="ms",
                markers=marks,
                chart_id="chart-latency",
            ),
            line_chart(
                "p95 per request name (ms)", sorted(tl["p95_by_name"].items()), y_unit="ms", markers=marks, chart_id="chart-latency-names"
            ),
            *(
                [
                    line_chart(
                        "Arrivals per second: target, scheduled, dropped",
                        [("target", tl["target_rate"]), ("scheduled", tl["arrivals"]), ("dropped", tl["dropped"])],
                        y_unit="/s",
                        markers=marks,
                        chart_id="chart-arrivals",
                    )
                ]
                if tl["arrivals"]
                else []
            ),
            "<h2>Errors</h2>",
            line_chart("Error rate (%)", [("errors", tl["errors"])], y_unit="%", markers=marks, chart_id="chart-errors"),
        ]
        parts += _server_charts(s, data, marks)
    else:
        parts.append("<p>No intervals were recorded: no time charts.</p>")
    parts += [
        "<h2>Latency distribution</h2>",
        _distribution(data),
        "<h2>Funnel</h2>",
        _funnel(data, s.not_offered),
        "<h2>Requests</h2>",
        _request_table(s),
    ]
    reasons = _reason_tables(s)
    if reasons:
        parts += ['<h2 id="failure-reasons">Failure reasons</h2>', reasons]
    if s.steps:
        parts += ["<h2>By journey step</h2>", _step_table(s)]
    if s.capacity:
        parts += ["<h2>Capacity</h2>", _capacity_table(s.capacity)]
    rec = s.reconciliation
    if rec:
        parts += [
            "<h2>Reconciliation</h2>",
            "<table id='reconciliation'>"
            + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rec.items() if k != "skus")
            + "</table>",
        ]
    if s.events:
        parts += [
            "<h2>Events</h2><p>T+ is seconds from the first measured interval (the charts' time axis).</p>"
            "<table id='events'><tr><th>time from start</th><th>clock (UTC)</th><th>kind</th><th>name</th><th>detail</th></tr>"
            + _event_rows(s, data)
            + "</table>"
        ]
    parts.append(f"<script>{ZOOM_JS}</script>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
