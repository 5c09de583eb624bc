"""Run history: every run folder under a results root, in time order, as a table and a self-contained HTML trend.

Usage::

    h = scan_history(Path("results"), profile="singles-day")   # reads each <root>/<run>/summary.json
    print(render_table(h))                                      # one line a run
    Path("trend.html").write_text(render_history_html(h))       # inline SVG, no script, no network
    json.dumps(h.to_json())

Reads saved summaries only (``peakload report FOLDER`` writes one for a folder that has none). A folder
that cannot be read (no summary.json, truncated, not a peakload summary, another schema) is listed in
``skipped`` with the reason; it never stops the scan. A figure a summary does not hold is ``None``
(shown "n/a", never 0).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peakload.core import ConfigError
from peakload.core.inputs import MAX_RESULTS_BYTES, read_json
from peakload.core.records import RUN_JSON, SNAPSHOTS, SUMMARY_JSON
from peakload.core.summary import SCHEMA_ID

__all__ = ["HistoryRun", "History", "scan_history", "render_table", "render_history_html"]


@dataclass(frozen=True)
class HistoryRun:
    """One run's headline figures (the ``total`` row of its summary.json)."""

    folder: str
    run_id: str
    started: str | None
    git_revision: str | None
    profile: str | None
    status: str | None  # passed | failed | invalid | unjudged | ungated
    exit_code: int | None
    decided_by: str | None
    requests: int | None
    rps: float | None
    error_ratio: float | None
    p95_ms: float | None
    p99_ms: float | None
    baseline: str | None = None  # the --baseline comparison's rule (regression, no-regression, inconclusive, ...)


@dataclass(frozen=True)
class History:
    root: str
    profile: str | None
    runs: list[HistoryRun] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (folder, why)

    def to_json(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "profile": self.profile,
            "runs": [asdict(r) for r in self.runs],
            "skipped": [{"folder": f, "reason": why} for f, why in self.skipped],
        }


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def _num(v: Any, *, lo: float = 0.0, hi: float = math.inf) -> float | None:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and lo <= v <= hi:
        return float(v)
    return None


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None


def _when(started: str | None) -> float | None:
    """Epoch seconds of an ISO-8601 time (the summary's ``started``), None when it is not one."""
    if started is None:
        return None
    try:
        t = dt.datetime.fromisoformat(started.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()


def _run(folder: Path) -> HistoryRun | str:
    """A run folder's figures, or why it is skipped."""
    path = folder / SUMMARY_JSON
    if not path.is_file():
        if (folder / RUN_JSON).is_file() or (folder / SNAPSHOTS).is_file():
            return f"no {SUMMARY_JSON} (a run still going, or killed; `peakload report {folder}` builds it)"
        return f"not a results folder (no {SUMMARY_JSON}, {RUN_JSON} or {SNAPSHOTS})"
    try:
        s = read_json(path, what="summary", max_bytes=MAX_RESULTS_BYTES)
    except ConfigError as exc:
        return str(exc)
    if not isinstance(s, dict) or s.get("schema") != SCHEMA_ID:
        return f"{SUMMARY_JSON}: not a peakload summary (expected schema {SCHEMA_ID})"
    total = s.get("total") if isinstance(s.get("total"), dict) else {}
    base = s.get("baseline") if isinstance(s.get("baseline"), dict) else {}
    code = s.get("exit_code")
    return HistoryRun(
        folder=folder.name,
        run_id=_str(s.get("run_id")) or folder.name,
        started=_str(s.get("started")) if _when(_str(s.get("started"))) is not None else None,
        git_revision=_str(s.get("git_revision")),
        profile=_str(s.get("profile")),
        status=_str(s.get("status")),
        exit_code=code if code in (0, 1, 2, 3) and not isinstance(code, bool) else None,
        decided_by=_str(s.get("decided_by")),
        requests=_int(total.get("requests")),
        rps=_num(total.get("rps")),
        error_ratio=_num(total.get("error_ratio"), hi=1.0),
        p95_ms=_num(total.get("p95_ms")),
        p99_ms=_num(total.get("p99_ms")),
        baseline=_str(base.get("decided_by")),
    )


def scan_history(root: Path, *, profile: str | None = None) -> History:
    """Every folder directly under ``root`` (hidden ones aside), runs in time order (start unknown: last, by id)."""
    runs: list[HistoryRun] = []
    skipped: list[tuple[str, str]] = []
    for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        try:
            if not folder.is_dir():
                continue
            got = _run(folder)
        except OSError as exc:
            got = f"unreadable: {exc.strerror or exc}"
        if isinstance(got, str):
            skipped.append((folder.name, got))
        elif profile is None or got.profile == profile:
            runs.append(got)
    runs.sort(key=lambda r: (_when(r.started) is None, _when(r.started) or 0.0, r.run_id))
    return History(root=str(root), profile=profile, runs=runs, skipped=skipped)


# ------------------------------------------------------------------ rendering


def _f(v: float | int | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def _verdict(r: HistoryRun) -> str:
    return "n/a" if r.status is None else f"{r.status} ({_f(r.exit_code, 'd')})"


_COLUMNS = ("run", "started", "git", "profile", "verdict", "requests", "rps", "errors", "p95 ms", "p99 ms", "vs baseline")


def _cells(r: HistoryRun) -> tuple[str, ...]:
    return (
        r.run_id,
        r.started or "n/a",
        (r.git_revision or "n/a")[:12],
        r.profile or "n/a",
        _verdict(r),
        _f(r.requests, "d"),
        _f(r.rps, ".1f"),
        "n/a" if r.error_ratio is None else f"{r.error_ratio:.2%}",
        _f(r.p95_ms, ".1f"),
        _f(r.p99_ms, ".1f"),
        r.baseline or "",
    )


def render_table(h: History) -> str:
    """A fixed-width table, one run a line, oldest first; then the skipped folders."""
    rows = [_COLUMNS, *(_cells(r) for r in h.runs)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines += [f"skipped {folder}: {why}" for folder, why in h.skipped]
    return "\n".join(lines)


_STATUS_COLOUR = {"passed": "#2ca02c", "failed": "#d62728", "invalid": "#7f7f7f", "unjudged": "#ff7f0e", "ungated": "#1f77b4"}
W, H, L, R, T, B = 900, 220, 64, 150, 24, 40


def _e(v: Any) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _nice(v: float) -> float:
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    return next(m * exp for m in (1, 2, 2.5, 5, 10) if v <= m * exp)


def _trend(title: str, runs: list[HistoryRun], series: list[tuple[str, str, Any]], unit: str, chart_id: str) -> str:
    """One SVG line chart over the runs (x: run in time order); each point's ``<title>`` says run, time, revision, value."""
    values = [get(r) for _, _, get in series for r in runs]
    top = _nice(max((v for v in values if v is not None), default=0.0))
    n = len(runs)
    pw, ph = W - L - R, H - T - B

    def x(i: int) -> float:
        return L + (pw * i / (n - 1) if n > 1 else pw / 2)

    def y(v: float) -> float:
        return T + ph * (1 - v / top)

    out = [
        f'<svg class="trend" id="{_e(chart_id)}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{_e(title)}">',
        f'<text x="{L}" y="16" font-weight="bold">{_e(title)}</text>',
        f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>',
    ]
    for k in range(5):
        v = top * k / 4
        out.append(f'<text x="{L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:g}{_e(unit)}</text>')
    step = max(1, math.ceil(n / 12))
    for i, r in enumerate(runs):
        colour = _STATUS_COLOUR.get(r.status or "", "#000")
        if i % step == 0 or i == n - 1:
            out.append(
                f'<text x="{x(i):.1f}" y="{H - B + 16}" text-anchor="middle" font-size="10">#{i + 1} {_e((r.git_revision or "")[:7])}</text>'
            )
        out.append(f'<rect x="{x(i) - 4:.1f}" y="{H - B + 22}" width="8" height="8" fill="{colour}"><title>{_e(r.run_id)}: {_e(_verdict(r))}</title></rect>')  # fmt: skip
    for k, (name, colour, get) in enumerate(series):
        pts = [(i, get(r)) for i, r in enumerate(runs)]
        known = [(i, v) for i, v in pts if v is not None]
        if len(known) > 1:
            path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in known)
            out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for i, v in known:
            r = runs[i]
            tip = f"{name} {v:g}{unit} — {r.run_id}, {r.started or 'start n/a'}, git {r.git_revision or 'n/a'}, {_verdict(r)}"
            out.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="4" fill="{colour}"><title>{_e(tip)}</title></circle>')
        out.append(f'<text x="{W - R + 10}" y="{T + 14 + 16 * k}" fill="{colour}" font-size="12">{_e(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def render_history_html(h: History) -> str:
    """One HTML file, no script and no network: the trends of p95/p99, error ratio and throughput, and the table."""
    runs = h.runs
    head = "".join(f"<th>{_e(c)}</th>" for c in _COLUMNS)
    body = "".join(
        f'<tr class="{_e(r.status)}">' + "".join(f"<td>{_e(c)}</td>" for c in _cells(r)) + "</tr>" for r in runs
    )  # fmt: skip
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>peakload history — {_e(h.profile or h.root)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse;font-size:13px}"
        "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}td:nth-child(-n+5),th{text-align:left}"
        "tr.failed td:nth-child(5){color:#b00}tr.passed td:nth-child(5){color:#080}svg{display:block;margin:12px 0}</style>",
        "</head><body>",
        f"<h1>Run history: <code>{_e(h.root)}</code>" + (f", profile <code>{_e(h.profile)}</code>" if h.profile else "") + "</h1>",
        f'<p id="count">{len(runs)} run(s) in time order' + (f", {len(h.skipped)} folder(s) skipped" if h.skipped else "") + ".</p>",
    ]
    if runs:
        parts += [
            _trend(
                "latency (all requests)",
                runs,
                [("p95", "#1f77b4", lambda r: r.p95_ms), ("p99", "#d62728", lambda r: r.p99_ms)],
                " ms",
                "latency",
            ),  # fmt: skip
            _trend(
                "error ratio",
                runs,
                [("errors", "#d62728", lambda r: None if r.error_ratio is None else 100 * r.error_ratio)],
                " %",
                "errors",
            ),  # fmt: skip
            _trend("throughput", runs, [("rps", "#2ca02c", lambda r: r.rps)], "/s", "throughput"),
            "<p>Squares under each chart: the run's verdict (green passed, red failed, orange unjudged, grey invalid, blue ungated).</p>",
        ]
    parts.append(f'<table id="history"><tr>{head}</tr>{body}</table>')
    if h.skipped:
        parts.append('<h2>Skipped folders</h2><ul id="skipped">' + "".join(f"<li><code>{_e(f)}</code>: {_e(w)}</li>" for f, w in h.skipped) + "</ul>")  # fmt: skip
    parts.append("</body></html>\n")
    return "".join(parts)
