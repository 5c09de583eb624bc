"""Generate promtool unit tests (synthetic burns) for the burn-rate alerts of an SLO spec.

For every SLO and each of the four burn-rate conditions there is a burn 10 %
above the condition's factor (the alert must fire) and one 10 % below it (the
alert must not fire), plus a burn that has already stopped (the 5m window
resets the page). A factor more than 10 % off either way in the rules fails a
case: too high, the burn above it no longer fires that condition; too low, the
burn below it does. Where another condition of the same alert also holds (a
ticket's 1d&2h at 3.3x implies 3d&6h above 1x), the alert's ``$value`` — the
long-window ratio of the first condition that holds — tells them apart, and
the cases check it. Expected alerts come from an independent oracle: exact
error ratios of the scheduled traffic over each window, compared with the SRE
Workbook factors. The oracle refuses cases that sit within a few percent of a
threshold, so float rounding can't decide them.

Rules are evaluated per SLO (``promtool/rules/<slo>.rules.yaml``, the SLO's own
groups rendered by the same renderer; a test checks they equal the groups of
the full file): promtool's cost grows with every rule in the file, data or not.
Page cases sample every minute and evaluate every 5m; ticket cases (up to 3d of
history) sample every 10m and evaluate every 30m.

Usage (from the repo root)::

    .venv/bin/python tests/dashboards/dash_promtool_cases.py  # rewrites tests/dashboards/promtool/
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboards.rules import render_rules  # noqa: E402
from dashboards.slo_model import (  # noqa: E402
    PAGE_CONDITIONS,
    SLI_WINDOWS,
    TICKET_CONDITIONS,
    BurnCondition,
    SLOModel,
    to_model,
    validate,
)
from peakload.core import SLOSpec, load_slo_spec  # noqa: E402

OUT_DIR = Path(__file__).resolve().parent / "promtool"
PER_MINUTE = 1000.0  # requests per minute across the SLO's routes
MARGIN = 0.04  # every compared ratio must be at least 4 % away from its threshold
H, D = 60, 1440
WINDOW_MIN = {"5m": 5, "30m": 30, "1h": H, "2h": 2 * H, "6h": 6 * H, "1d": D, "3d": 3 * D}


BRACKET = 0.10  # burns at factor × (1 ± BRACKET)


@dataclass(frozen=True)
class Case:
    name: str
    phases: tuple[tuple[int, float], ...]  # (minutes, error ratio as a multiple of the budget)
    severity: str  # the alert under test
    fires: bool  # must it fire (True) or stay silent (False) at the end?
    condition: BurnCondition | None = None  # the condition whose factor the case brackets


def _bracket(severity: str, speed: str, cond: BurnCondition, lead: tuple[int, int], burn: int, burn_text: str) -> tuple[Case, Case]:
    """A burn 10 % above ``cond.factor`` that fires and one 10 % below that does not (``lead`` clean minutes first)."""
    above, below = cond.factor * (1 + BRACKET), cond.factor * (1 - BRACKET)
    rule = f"{cond.long} & {cond.short} > {cond.factor:g}x"

    def phases(clean: int, multiple: float) -> tuple[tuple[int, float], ...]:
        return ((clean, 0.0), (burn, multiple)) if clean else ((burn, multiple),)

    return (
        Case(f"{severity} {speed} burn: {above:g}x budget for {burn_text} fires ({rule})", phases(lead[0], above), severity, True, cond),
        Case(
            f"{severity} {speed} burn: {below:g}x budget for {burn_text} does not {severity} (not {rule})",
            phases(lead[1], below),
            severity,
            False,
            cond,
        ),
    )


_PAGE_FAST, _PAGE_SLOW = PAGE_CONDITIONS
_TICKET_FAST, _TICKET_SLOW = TICKET_CONDITIONS
CASES = (
    *_bracket("page", "fast", _PAGE_FAST, (8 * H, 8 * H), 65, "65m"),
    Case("page fast burn that stopped 10m ago does not page (5m window reset)", ((8 * H, 0), (H, 20), (10, 0)), "page", False),
    *_bracket("page", "slow", _PAGE_SLOW, (H, H), 6 * H + 5, "6h5m"),
    # below 3x over 1d, 2 clean days keep the 3d ratio under 1x too
    *_bracket("ticket", "fast", _TICKET_FAST, (2 * H, 2 * D), D + 30, "1d30m"),
    *_bracket("ticket", "slow", _TICKET_SLOW, (0, 0), 3 * D + 30, "3d30m"),
)
# severity → (sample interval, evaluation interval) in minutes
TIMING = {"page": (1, 5), "ticket": (10, 30)}


def _bad_per_minute(case: Case, budget: float) -> list[float]:
    """Error ratio of each minute 1..N (minute k covers samples k-1 → k)."""
    out: list[float] = []
    for minutes, multiple in case.phases:
        out += [multiple * budget] * minutes
    return out


def _ratio(ratios: list[float], t: int, window: int) -> float:
    start = max(0, t - window)
    chunk = ratios[start:t]
    return sum(chunk) / len(chunk)  # equal traffic every minute


def _humanize_percentage(value: float) -> str:
    text = f"{value * 100:.4g}%"
    for wobble in (1 - 1e-9, 1 + 1e-9):  # float noise in Prometheus must not change the text
        if f"{value * wobble * 100:.4g}%" != text:
            raise ValueError(f"ratio {value!r} sits on a rounding edge of humanizePercentage; pick other numbers")
    return text


def expected_alerts(slo: SLOModel, case: Case) -> dict[str, str | None]:
    """severity → $value text of the firing alert, or None when silent."""
    ratios = _bad_per_minute(case, slo.budget)
    t = len(ratios)
    out: dict[str, str | None] = {}
    for severity, conds in (("page", PAGE_CONDITIONS), ("ticket", TICKET_CONDITIONS)):
        value = None
        for cond in conds:
            threshold = cond.factor * slo.budget
            long_r = _ratio(ratios, t, WINDOW_MIN[cond.long])
            short_r = _ratio(ratios, t, WINDOW_MIN[cond.short])
            for r in (long_r, short_r):
                if abs(r - threshold) < MARGIN * threshold:
                    raise ValueError(f"{slo.name}: case {case.name!r}: ratio {r:.6g} too close to {threshold:.6g}")
            if value is None and long_r > threshold and short_r > threshold:
                value = long_r
        if severity == "page" and not slo.page:
            value = None
        out[severity] = None if value is None else _humanize_percentage(value)
    return out


def _num(x: float) -> str:
    return f"{round(x, 6):.15g}"


def _values(increments: list[float]) -> str:
    """promtool expanding notation for a counter starting at 0 with the given per-minute increments."""
    segments: list[str] = []
    total, i = 0.0, 0
    first = True
    while i < len(increments):
        j = i
        while j < len(increments) and increments[j] == increments[i]:
            j += 1
        inc, n = increments[i], j - i
        if first:
            segments.append(f"0+{_num(inc)}x{n}")
            first = False
        else:
            start = total + inc
            segments.append(f"{_num(start)}+{_num(inc)}x{n - 1}")
        total += inc * n
        i = j
    return " ".join(segments)


def _series(slo: SLOModel, case: Case, step: int) -> list[dict[str, str]]:
    per_minute = _bad_per_minute(case, slo.budget)
    # one ratio per sample interval (phases are whole multiples of it)
    ratios = [sum(per_minute[i : i + step]) / step for i in range(0, len(per_minute), step)]
    # Every (method, route) pair gets traffic; real and shadow traffic both count,
    # so a single pair is split across both and several pairs alternate.
    pairs = [
        (method, route, traffic)
        for i, (method, route) in enumerate(slo.requests)
        for traffic in (("real", "shadow") if len(slo.requests) == 1 else (("real", "shadow")[i % 2],))
    ]
    per = PER_MINUTE * step / len(pairs)
    good = [per * (1 - r) for r in ratios]
    bad = [per * r for r in ratios]
    total = [per] * len(ratios)
    zero, all_ = [0.0] * len(ratios), [per] * len(ratios)
    method0, route0 = slo.requests[0]
    other_method = "DELETE" if method0 != "DELETE" else "PATCH"
    # Traffic the SLO must not count: a route outside it, a longer route sharing
    # its prefix, and another method on one of its routes — all of it failing.
    noise = [(method0, "/api/noise"), (method0, route0 + "/x"), (other_method, route0)]
    out: list[dict[str, str]] = []

    def add(series: str, incs: list[float]) -> None:
        out.append({"series": series, "values": _values(incs)})

    for method, route, traffic in (*pairs, *((m_, r_, "shadow") for m_, r_ in noise)):
        is_noise = (method, route) in noise
        labels = f'method="{method}",route="{route}",traffic="{traffic}"'
        if slo.kind == "availability":
            add(f'storefront_http_requests_total{{{labels},status_class="2xx"}}', zero if is_noise else good)
            add(f'storefront_http_requests_total{{{labels},status_class="5xx"}}', all_ if is_noise else bad)
        else:
            add(f'storefront_http_request_duration_seconds_bucket{{{labels},le="{slo.threshold_le}"}}', zero if is_noise else good)
            add(f"storefront_http_request_duration_seconds_count{{{labels}}}", all_ if is_noise else total)
    return out


def build_test_file(slo: SLOModel, severity_under_test: str, annotations: dict[str, dict[str, str]]) -> str:
    """One promtool test file; ``annotations`` are the alert templates (severity → annotations) from the rules."""
    step, every = TIMING[severity_under_test]
    tests = []
    for case in CASES:
        if case.severity != severity_under_test:
            continue
        minutes = sum(m for m, _ in case.phases)
        if any(m % step for m, _ in case.phases) or minutes % every:
            raise ValueError(f"case {case.name!r}: phases must be multiples of {step}m and end on the {every}m evaluation grid")
        expected = expected_alerts(slo, case)
        under_test = expected[case.severity] is not None
        if under_test != case.fires:
            raise ValueError(f"{slo.name}: case {case.name!r} expected fires={case.fires}, oracle says {under_test}")
        exp_alerts = []
        for severity in ("page", "ticket"):
            value = expected[severity]
            if value is None:
                continue
            # Only $value is templated at alert time; the rest is the rules' own text.
            templated = {k: v.replace("{{ $value | humanizePercentage }}", value) for k, v in annotations[severity].items()}
            exp_alerts.append(
                {
                    "exp_labels": {"severity": severity, "slo": slo.name, "service": slo.service},
                    "exp_annotations": templated,
                }
            )
        tests.append(
            {
                "name": f"{slo.name}: {case.name}",
                "interval": f"{step}m",
                "input_series": _series(slo, case, step),
                "alert_rule_test": [{"eval_time": f"{minutes}m", "alertname": slo.alert_name, "exp_alerts": exp_alerts}],
            }
        )
    order = [f"peakload-slo-{slo.name}-{g}" for g in ("sli", "client-sli", "meta", "alerts")]
    doc = {"rule_files": [f"rules/{slo.name}.rules.yaml"], "evaluation_interval": f"{every}m", "group_eval_order": order, "tests": tests}
    header = f"# generated by tests/dashboards/dash_promtool_cases.py for SLO {slo.name!r} — do not edit\n"
    return header + yaml.safe_dump(doc, sort_keys=False, width=1_000_000, allow_unicode=True)


def build_all(spec: SLOSpec) -> dict[str, str]:
    """relative path → text of every promtool test file (and per-SLO rules file) for ``spec``."""
    model = to_model(validate(spec))
    assert set(WINDOW_MIN) == set(SLI_WINDOWS)
    out: dict[str, str] = {}
    for slo in model.slos:
        rules = render_rules(replace(model, slos=(slo,)))
        out[f"rules/{slo.name}.rules.yaml"] = rules
        if slo.server is None:
            continue  # steps only: no server-side SLI, so no burn-rate alert to test
        annotations = {
            r["labels"]["severity"]: r["annotations"] for g in yaml.safe_load(rules)["groups"] for r in g["rules"] if "alert" in r
        }
        for severity in ("page", "ticket"):
            if severity == "page" and not slo.page:
                continue  # no page alert exists for this SLO
            out[f"{slo.name}.{severity}.test.yaml"] = build_test_file(slo, severity, annotations)
    return out


if __name__ == "__main__":
    files = build_all(load_slo_spec(ROOT / "profiles" / "slo.yaml"))
    for name, text in files.items():
        (OUT_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (OUT_DIR / name).write_text(text, encoding="utf-8")
        print(OUT_DIR / name)
