"""Tiny inline-SVG charts, so report.html needs no network; each point and bar has a ``<title>`` (the browser
shows its value and time on hover), and line charts carry their geometry for the report's inline zoom script.

Usage: ``line_chart("rps", [("rps", [(t, v), ...])], y_unit="/s") -> str``
"""

from __future__ import annotations

import html
import math
import zlib

__all__ = ["line_chart", "bar_chart", "PALETTE"]

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
W, H, L, R, T, B = 900, 260, 60, 270, 24, 34


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * exp:
            return m * exp
    return 10 * exp


def _fmt(v: float) -> str:
    if v >= 100 or v == int(v):
        return f"{v:.0f}"
    return f"{v:.3g}"


def line_chart(
    title: str,
    series: list[tuple[str, list[tuple[float, float]]]],
    *,
    y_unit: str = "",
    markers: list[tuple[float, str]] | None = None,
    chart_id: str = "",
) -> str:
    """Lines over time (x in seconds from the run start); markers are vertical annotations."""
    pts = [p for _, s in series for p in s]
    xmax = max((x for x, _ in pts), default=1.0) or 1.0
    ymax = _nice_max(max((y for _, y in pts), default=0.0))
    pw, ph = W - L - R, H - T - B

    def sx(x: float) -> float:
        return L + pw * x / xmax

    def sy(y: float) -> float:
        return T + ph * (1 - y / ymax)

    cid = html.escape(chart_id or f"chart-{zlib.crc32(title.encode()):08x}")
    # data-* give the inline zoom script (reports/html.py) the plot's geometry: drag across a chart to zoom into a
    # time range, double-click to go back; without script the chart is the same, static
    out = [
        f'<svg class="chart zoomable" id="{cid}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
        f'aria-label="{html.escape(title)}" data-l="{L}" data-t="{T}" data-pw="{pw}" data-ph="{ph}" data-xmax="{xmax:g}">',
        f'<defs><clipPath id="clip-{cid}"><rect x="{L}" y="{T}" width="{pw}" height="{ph}"/></clipPath></defs>',
        f'<text x="{L}" y="16" class="title">{html.escape(title)}</text>',
        f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for i in range(5):
        y = ymax * i / 4
        out.append(
            f'<line x1="{L}" x2="{L + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#e5e5e5"/>'
            f'<text x="{L - 4}" y="{sy(y) + 4:.1f}" text-anchor="end" class="axis">{_fmt(y)}{html.escape(y_unit)}</text>'
        )
    for i in range(6):
        x = xmax * i / 5
        out.append(f'<text x="{sx(x):.1f}" y="{H - 14}" text-anchor="middle" class="axis xtick">{x:.0f}s</text>')
    out.append(f'<g class="zoom" clip-path="url(#clip-{cid})">')
    for i, (x, label) in enumerate(markers or []):
        # labels are staggered over four rows so neighbouring annotations stay readable
        out.append(
            f'<line class="annotation" x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{T}" y2="{T + ph}" stroke="#a0a" stroke-dasharray="4 3" '
            f'vector-effect="non-scaling-stroke"/>'
            f'<text x="{sx(x) + 3:.1f}" y="{T + 12 + 12 * (i % 4)}" class="axis marker-label" fill="#a0a">{html.escape(label[:40])}</text>'
        )
    legend: list[str] = []
    for i, (name, s) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        if s:
            path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in s)
            out.append(
                f'<polyline class="series" fill="none" stroke="{color}" stroke-width="1.8" vector-effect="non-scaling-stroke" points="{path}"/>'
            )
            # one hover target per point: its <title> is the tooltip (value and time), no script needed
            label = html.escape(name)
            out.extend(
                f'<circle class="pt" cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="4" fill="{color}" fill-opacity="0">'
                f"<title>{label}: {_fmt(y)}{html.escape(y_unit)} at T+{x:.1f} s</title></circle>"
                for x, y in s
            )
        ly = T + 12 + 16 * i
        legend.append(
            f'<rect x="{W - R + 8}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{W - R + 22}" y="{ly}" class="legend">{html.escape(name if len(name) <= 40 else "…" + name[-39:])}</text>'
        )
    out.append("</g>")
    out.extend(legend)
    out.append("</svg>")
    return "".join(out)


def bar_chart(title: str, bars: list[tuple[str, float]], *, y_unit: str = "", chart_id: str = "", note: list[str] | None = None) -> str:
    """Vertical bars with labels (distribution, funnel)."""
    ymax = _nice_max(max((v for _, v in bars), default=0.0))
    pw, ph = W - L - 20, H - T - B - 10
    n = max(len(bars), 1)
    bw = pw / n
    out = [
        f'<svg class="chart" id="{html.escape(chart_id)}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{L}" y="16" class="title">{html.escape(title)}</text>',
        f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for i in range(5):
        y = ymax * i / 4
        yy = T + ph * (1 - y / ymax)
        out.append(f'<text x="{L - 4}" y="{yy + 4:.1f}" text-anchor="end" class="axis">{_fmt(y)}{html.escape(y_unit)}</text>')
    for i, (label, v) in enumerate(bars):
        h = ph * v / ymax
        x = L + i * bw
        out.append(
            f'<rect class="bar" x="{x + bw * 0.1:.1f}" y="{T + ph - h:.1f}" width="{bw * 0.8:.1f}" height="{h:.1f}" fill="{PALETTE[0]}">'
            f"<title>{html.escape(label)}: {html.escape(note[i]) if note else _fmt(v) + html.escape(y_unit)}</title></rect>"
        )
        out.append(f'<text x="{x + bw / 2:.1f}" y="{T + ph + 14}" text-anchor="middle" class="axis">{html.escape(label)}</text>')
        if note:
            out.append(
                f'<text x="{x + bw / 2:.1f}" y="{T + ph - h - 4:.1f}" text-anchor="middle" class="axis">{html.escape(note[i])}</text>'
            )
    out.append("</svg>")
    return "".join(out)
