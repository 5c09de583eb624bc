"""summary.md: a short report for a CI job summary or a PR comment.

Usage: ``render_markdown(summary, compare_rows=None) -> str``
"""

from __future__ import annotations

import re

from peakload.core.steps import STEPS
from peakload.core.summary import Summary
from reports.compare import CompareRow
from reports.generator import lag_markdown

__all__ = ["render_markdown"]

_ICON = {True: "✅ pass", False: "❌ fail", None: "➖ skip"}
_HEAD = {
    "passed": "✅ PASSED",
    "failed": "❌ FAILED",
    "invalid": "⚠️ INVALID",
    "unjudged": "➖ UNJUDGED",
    "ungated": "➖ NO THRESHOLDS (by design)",
}
# Markdown (and the HTML GitHub allows in it) that a failure message must not start: escaped with a backslash
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&#!])")
_SPACE = re.compile(r"\s+")


def _md_text(text: str) -> str:
    """Arbitrary text (a failure message) as literal Markdown inside a table cell: one line, nothing interpreted."""
    return _MD_SPECIAL.sub(r"\\\1", _SPACE.sub(" ", text).strip())


def _md_code(text: str) -> str:
    """A request name in a code span inside a table cell (a ``|`` still ends the cell unless escaped)."""
    return "`" + _SPACE.sub(" ", text).replace("`", "'").replace("|", "\\|") + "`"


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f}"


_STAGE = {"passed": "✅ pass", "failed": "❌ fail", "not judged": "➖ not judged", "no thresholds": "no thresholds"}


def _clock(seconds: float) -> str:
    """Offset from the run's start as MM:SS (the ``during: MM:SS..MM:SS`` syntax)."""
    whole = int(round(seconds))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _no_thresholds(s: Summary) -> str:
    """The sentence that replaces an empty thresholds table."""
    if s.status == "ungated":
        return "No thresholds by design (the profile declares `thresholds: none`)."
    return "No thresholds declared (profile thresholds or an SLO spec): nothing was judged."


def render_markdown(summary: Summary, compare_rows: list[CompareRow] | None = None) -> str:
    s = summary
    head = _HEAD[s.status]
    out = [f"## peakload run `{s.run_id}` — {head}", ""]
    out.append(
        f"Profile **{s.profile}** against `{s.target}`, {s.duration_s:.0f} s, "
        f"{s.total.requests} requests, {s.total.error_ratio * 100:.2f} % errors. "
        f"Latency basis: {s.latency_basis}."
    )
    if s.dialect is not None:
        writes = {True: "isolated (tagged test traffic)", False: "NOT isolated: real orders in the shop", None: "unknown"}[s.isolated]
        writes += f" ({s.isolation})" if s.isolation else ""
        out += ["", f"Platform dialect `{s.dialect}`; the run's writes: {writes}."]
    if s.reason:
        out += ["", f"**Reason:** {s.reason} (decided by rule `{s.decided_by}`)"]
    if s.problems:
        out += ["", "**Problems reading the results:**", *[f"- {p}" for p in s.problems]]
    if s.not_offered:
        out += ["", "**Not offered by this platform** (n/a, not measured): " + ", ".join(f"`{n}`" for n in s.not_offered)]
    out += ["", "### Thresholds", ""]
    if s.thresholds:
        out += ["| result | scope | threshold | observed | source |", "|---|---|---|---|---|"]
        for t in s.thresholds:
            out.append(f"| {_ICON[t.passed]} | `{t.scope}` | `{t.id.split(': ', 1)[-1]}` | {t.message} | {t.source} |")
    else:
        out.append(_no_thresholds(s))
    if s.stages:
        out += ["", f"### Stages (offsets from {s.timeline_start})", ""]
        out += [
            "| stage | window | verdict | requests | errors | rps | p50 ms | p95 ms | p99 ms |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for st in s.stages:
            errors = "n/a" if st.error_ratio is None else f"{st.error_ratio * 100:.2f} %"
            rps = "n/a" if st.rps is None else f"{st.rps:.1f}"
            out.append(
                f"| {_md_code(st.label)} | {_clock(st.start_s)}..{_clock(st.end_s)} | {_STAGE[st.verdict]} | {st.requests} | {errors} | "
                f"{rps} | {_ms(st.p50_ms)} | {_ms(st.p95_ms)} | {_ms(st.p99_ms)} |"
            )
    out += lag_markdown(s)
    out += ["", "### Requests", "", "| request | count | errors | rps | p50 ms | p95 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|---:|"]
    for key, r in s.requests.items():
        out.append(
            f"| `{key}` | {r.requests} | {r.error_ratio * 100:.2f} % | {r.rps:.1f} | {_ms(r.p50_ms)} | {_ms(r.p95_ms)} | {_ms(r.p99_ms)} |"
        )
    if s.steps:
        out += [
            "",
            "### By journey step",
            "",
            "| step | count | errors | rps | p50 ms | p95 ms | p99 ms |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for step in STEPS:
            row = s.steps.get(step)
            if row is not None:
                out.append(
                    f"| `{step}` | {row.requests} | {row.error_ratio * 100:.2f} % | {row.rps:.1f} | "
                    f"{_ms(row.p50_ms)} | {_ms(row.p95_ms)} | {_ms(row.p99_ms)} |"
                )
            elif step in s.not_offered:
                out.append(f"| `{step}` | n/a | n/a | n/a | n/a | n/a | n/a |")
    reasons = [(key, fr) for key, r in s.requests.items() for fr in r.failure_reasons]
    if reasons:
        out += ["", "### Failure reasons", "", "| request | count | message |", "|---|---:|---|"]
        out += [f"| {_md_code(key)} | {fr.count} | {_md_text(fr.message)} |" for key, fr in reasons]
    if s.user_errors:
        out += ["", "### Errors raised in the locustfile", "", "| count | exception |", "|---:|---|"]
        out += [f"| {e.count} | {_md_text(e.message)} |" for e in s.user_errors]
    if s.attribution is not None:
        out += ["", f"**Which side saturated under the peak load:** {s.attribution.get('text', 'n/a')}"]
    if s.server is not None:
        out += ["", f"### Server side ({s.server.source}, every {s.server.interval_s:g} s)", ""]
        out += ["| figure | unit | intervals with a value | min | median | max |", "|---|---|---:|---:|---:|---:|"]
        for name, f in s.server.figures.items():
            cells = " | ".join("n/a" if v is None else f"{v:.4g}" for v in (f.min, f.p50, f.max))
            out.append(f"| `{name}` | {f.unit or '—'} | {f.samples}/{f.intervals} | {cells} |")
    rec = s.reconciliation
    if rec and "error" not in rec:
        out += [
            "",
            f"**Reconciliation:** orders {rec.get('orders_created')}, paid {rec.get('orders_paid')}, "
            f"payments {rec.get('payments_succeeded')}, oversold {rec.get('oversold_units')}, "
            f"duplicate orders {rec.get('duplicate_orders')}, duplicate charges {rec.get('duplicate_charges')}",
        ]
    if compare_rows:
        bad = [r for r in compare_rows if r.regression]
        unsure = [r for r in compare_rows if r.verdict == "inconclusive"]
        out += ["", f"### Against baseline: {len(bad)} regression(s), {len(unsure)} inconclusive", ""]
        if s.baseline and s.baseline.get("reason"):
            out += [f"{s.baseline['reason']} (exit {s.baseline.get('exit_code')}; decided by `{s.baseline.get('decided_by')}`)", ""]
        if bad or unsure:
            out += [
                "| verdict | request | metric | baseline | current | change | 95 % interval | p | requests needed |",
                "|---|---|---|---:|---:|---:|---|---:|---:|",
            ]
            for r in bad + unsure:
                fmt = "{:+.4f}" if r.metric == "error_ratio" else "{:+.1%}"
                ch = "" if r.change is None else fmt.format(r.change)
                ci = "n/a" if r.ci is None else f"{fmt.format(r.ci[0])} .. {fmt.format(r.ci[1])}"
                pv = "n/a" if r.p_value is None else f"{r.p_value:.3g}"
                need = "" if r.verdict != "inconclusive" else "n/a" if r.needed is None else f"{r.needed:,} per run"
                out.append(f"| {r.verdict} | `{r.key}` | {r.metric} | {r.baseline} | {r.current} | {ch} | {ci} | {pv} | {need} |")
    return "\n".join(out) + "\n"
