"""promtool on the generated rules: syntax check, and unit tests of every burn-rate alert on synthetic burns."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import dash_promtool_cases as cases
import pytest
import yaml

from dashboards.promql import format_number
from dashboards.slo_model import (
    PAGE_CONDITIONS,
    TICKET_CONDITIONS,
    RulesModel,
    to_model,
    validate,
)
from peakload.core import SLOSpec, load_slo_spec

PROMTOOL_DIR = Path(__file__).resolve().parent / "promtool"


def _run(promtool: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd, timeout=300, check=False)


@pytest.mark.parametrize("rules", ["dashboards/generated/slo.rules.yaml", "tests/golden/slo.rules.yaml"])
def test_promtool_check_rules_accepts_the_generated_files(promtool: str, root: Path, rules: str) -> None:
    path = root / rules
    expected = sum(len(g["rules"]) for g in yaml.safe_load(path.read_text())["groups"])
    result = _run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {expected} rules found" in result.stdout


def test_committed_promtool_tests_match_the_spec(slo_spec: SLOSpec, golden) -> None:
    files = cases.build_all(slo_spec)
    for name, text in files.items():
        golden(PROMTOOL_DIR / name, text)
    committed = {str(p.relative_to(PROMTOOL_DIR)) for p in PROMTOOL_DIR.rglob("*.yaml")}
    assert committed == set(files), f"stale files in {PROMTOOL_DIR}: {sorted(committed - set(files))}"


def test_per_slo_rule_files_are_the_groups_of_the_generated_file(root: Path) -> None:
    full = {g["name"]: g for g in yaml.safe_load((root / "dashboards/generated/slo.rules.yaml").read_text())["groups"]}
    seen = set()
    for path in sorted((PROMTOOL_DIR / "rules").glob("*.rules.yaml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            assert group == full[group["name"]], f"{path.name}: group {group['name']} differs from the generated file"
            seen.add(group["name"])
    assert seen == set(full)


def test_every_alert_has_a_firing_and_a_silent_case(root: Path) -> None:
    alerts = {
        (r["alert"], r["labels"]["severity"])
        for g in yaml.safe_load((root / "dashboards/generated/slo.rules.yaml").read_text())["groups"]
        for r in g["rules"]
        if "alert" in r
    }
    fires, silent = set(), set()
    for path in PROMTOOL_DIR.glob("*.test.yaml"):
        severity_under_test = path.name.split(".")[1]
        for test in yaml.safe_load(path.read_text())["tests"]:
            for check in test["alert_rule_test"]:
                got = {a["exp_labels"]["severity"] for a in check["exp_alerts"]}
                for severity in got:
                    fires.add((check["alertname"], severity))
                if severity_under_test not in got:
                    silent.add((check["alertname"], severity_under_test))
    assert alerts, "no alerts in the generated rules"
    assert alerts <= fires, f"alerts never shown firing: {sorted(alerts - fires)}"
    assert alerts <= silent, f"alerts never shown silent below their rate: {sorted(alerts - silent)}"


def _promtool_test(promtool: str, files: list[Path], cwd: Path) -> dict[str, str]:
    """Run ``promtool test rules`` on the files, two processes at a time; file → its output (SUCCESS or FAILED)."""
    halves = [files[0::2], files[1::2]]
    procs = [
        subprocess.Popen(
            [promtool, "test", "rules", *[f.name for f in half]], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for half in halves
        if half
    ]
    text = "".join(p.communicate(timeout=300)[0] for p in procs)
    out: dict[str, str] = {}
    for chunk in re.split(r"(?m)^Unit Testing:\s+", text)[1:]:
        name, _, rest = chunk.partition("\n")
        out[name.strip()] = rest
    return out


def test_burn_rate_alerts_fire_above_and_stay_silent_below_their_rates(promtool: str) -> None:
    files = sorted(PROMTOOL_DIR.glob("*.test.yaml"))
    assert len(files) >= 2
    results = _promtool_test(promtool, files, PROMTOOL_DIR)
    assert set(results) == {f.name for f in files}
    failed = {name: out for name, out in results.items() if "SUCCESS" not in out}
    assert not failed, "\n".join(f"{n}:\n{o[:3000]}" for n, o in failed.items())


MUTATIONS = (1.11, 0.89)  # just outside the cases' ±10 % brackets


def write_mutants(model: RulesModel, out: Path, mutations: tuple[float, ...] = MUTATIONS) -> dict[str, str]:
    """One rules file per SLO × burn-rate factor × mutation, with the one case that brackets it; test file → that case.

    A factor raised must fail the burn above it (no longer fires that
    condition), a factor lowered the burn below it (now fires). Only the
    alert's expression changes: its description keeps the true factor.
    """
    (out / "rules").mkdir(parents=True, exist_ok=True)
    expected: dict[str, str] = {}
    for slo in model.slos:
        if slo.server is None:
            continue  # no alerts
        rules = (PROMTOOL_DIR / "rules" / f"{slo.name}.rules.yaml").read_text()
        for severity, conds in (("page", PAGE_CONDITIONS), ("ticket", TICKET_CONDITIONS)):
            if severity == "page" and not slo.page:
                continue
            committed = yaml.safe_load((PROMTOOL_DIR / f"{slo.name}.{severity}.test.yaml").read_text())
            for cond in conds:
                threshold = f"({format_number(cond.factor)} * {slo.budget_text})"
                assert rules.count(threshold) == 2, f"{slo.name}: {threshold} is not in the long and the short window"
                for mutation in mutations:
                    case = next(c for c in cases.CASES if c.condition == cond and c.fires == (mutation > 1))
                    name = f"{slo.name}: {case.name}"
                    stem = f"{slo.name}.{cond.long}-{cond.short}.x{mutation:g}"
                    mutated = f"({format_number(cond.factor * mutation)} * {slo.budget_text})"
                    (out / "rules" / f"{stem}.rules.yaml").write_text(rules.replace(threshold, mutated))
                    tests = [t for t in committed["tests"] if t["name"] == name]
                    assert len(tests) == 1, f"no case {name!r} in {slo.name}.{severity}.test.yaml"
                    doc = {**committed, "rule_files": [f"rules/{stem}.rules.yaml"], "tests": tests}
                    (out / f"{stem}.test.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1_000_000, allow_unicode=True))
                    expected[f"{stem}.test.yaml"] = name
    return expected


def test_the_alert_tests_catch_any_factor_more_than_10_percent_off(promtool: str, slo_spec: SLOSpec, tmp_path: Path) -> None:
    # Mutation check: each of the four factors of every SLO, x1.11 and x0.89, must fail the case that brackets it.
    expected = write_mutants(to_model(validate(slo_spec)), tmp_path)
    assert len(expected) == 2 * sum(4 if slo.page else 2 for slo in slo_spec.slos if slo.requests)
    results = _promtool_test(promtool, sorted(tmp_path.glob("*.test.yaml")), tmp_path)
    assert set(results) == set(expected)
    survivors = {
        mutant: f"{case!r} did not fail:\n{results[mutant][:2000]}"
        for mutant, case in expected.items()
        if not ("FAILED" in results[mutant] and f"name: {case}," in results[mutant] and "got:" in results[mutant])
    }
    assert not survivors, "\n".join(f"{m}: {why}" for m, why in survivors.items())


def test_route_regex_matches_templates_literally(promtool: str, root: Path, tmp_path: Path) -> None:
    """``.``, ``+`` and ``{}`` in route templates must match themselves only (golden spec, search-latency)."""
    rules = root / "tests/golden/slo.rules.yaml"
    spec = load_slo_spec(root / "tests/golden/slo.in.yaml")
    assert spec.slos[1].name == "search-latency"

    def series(route: str, good: int, total: int) -> list[dict[str, str]]:
        labels = f'method="GET",route="{route}",traffic="shadow"'
        return [
            {"series": f'storefront_http_request_duration_seconds_bucket{{{labels},le="0.25"}}', "values": f"0+{good}x10"},
            {"series": f"storefront_http_request_duration_seconds_count{{{labels}}}", "values": f"0+{total}x10"},
        ]

    doc = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    *series("/api/v1.2/search+suggest/{term}", 90, 100),  # in the SLO: 10 % slow
                    *series("/api/v1x2/search+suggest/{term}", 0, 100),  # '.' must not match 'x'
                    *series("/api/v1.2/searchhsuggest/{term}", 0, 100),  # '+' is not a quantifier
                    *series("/api/search", 100, 100),  # in the SLO: all fast
                ],
                "promql_expr_test": [
                    {
                        "expr": 'round(slo:sli_error:ratio_rate5m{slo="search-latency"}, 0.0001)',
                        "eval_time": "10m",
                        "exp_samples": [{"labels": '{service="shop",slo="search-latency",window="5m"}', "value": 0.05}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "escaping.test.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = _run(promtool, "test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
