"""Dashboards as code: committed JSON equals the builder output, and what a user relies on holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from dashboards import (
    DASHBOARD_FILES,
    DashboardBuildError,
    build_dashboards,
    metric_names,
    write_dashboards,
)
from dashboards.grafana_kit import DATASOURCE_UID, RUN_JOIN
from dashboards.prometheus import panel_queries
from peakload.core import SLOSpec


def _panels(board: dict) -> list[dict]:
    out = []
    for p in board["panels"]:
        out.append(p)
        out.extend(p.get("panels") or [])
    return out


@pytest.fixture(scope="module")
def boards(slo_spec: SLOSpec) -> dict[str, dict]:
    return {name: json.loads(text) for name, text in build_dashboards(slo_spec).items()}


def test_committed_dashboards_equal_the_builder_output(root: Path, slo_spec: SLOSpec, golden) -> None:
    texts = build_dashboards(slo_spec)
    assert tuple(texts) == DASHBOARD_FILES
    for name, text in texts.items():
        golden(root / "dashboards/generated" / name, text)


def test_builds_are_deterministic(slo_spec: SLOSpec) -> None:
    assert build_dashboards(slo_spec) == build_dashboards(slo_spec)


def test_write_dashboards_writes_every_file(tmp_path: Path, slo_spec: SLOSpec) -> None:
    paths = write_dashboards(slo_spec, tmp_path / "out")
    assert [p.name for p in paths] == list(DASHBOARD_FILES)
    assert all(json.loads(p.read_text())["uid"].startswith("peakload-") for p in paths)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DashboardBuildError, match="could not write dashboards"):
        write_dashboards(slo_spec, blocker / "sub")


def test_every_panel_reads_the_datasource_variable_defaulting_to_the_provisioned_one(boards: dict[str, dict]) -> None:
    for name, board in boards.items():
        variables = {v["name"]: v for v in board["templating"]["list"]}
        ds = variables["datasource"]
        assert ds["type"] == "datasource" and ds["query"] == "prometheus"
        assert ds["current"]["value"] == DATASOURCE_UID
        for panel in _panels(board):
            if panel["type"] == "row":
                continue
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, f"{name}: {panel['title']}"
            assert panel["targets"], f"{name}: {panel['title']} has no query"


def test_uids_titles_and_ids_are_stable_and_unique(boards: dict[str, dict]) -> None:
    assert {b["uid"] for b in boards.values()} == {"peakload-load-test", "peakload-slo", "peakload-platform"}
    for board in boards.values():
        ids = [p["id"] for p in _panels(board)]
        assert ids == list(range(1, len(ids) + 1))
        titles = [p["title"] for p in _panels(board) if p["type"] != "row"]
        assert len(titles) == len(set(titles)), board["uid"]


def test_load_test_queries_are_filtered_by_run(boards: dict[str, dict]) -> None:
    board = boards["load-test.json"]
    run_var = next(v for v in board["templating"]["list"] if v["name"] == "run_id")
    assert run_var["query"] == "label_values(peakload_run_info, run_id)"
    for panel in _panels(board):
        for target in panel.get("targets") or []:
            if "peakload_" in target["expr"]:
                assert target["expr"].count(RUN_JOIN) == target["expr"].count("peakload_") - target["expr"].count("peakload_run_info"), (
                    panel["title"]
                )


def test_load_test_has_red_latency_quantiles_arrivals_errors_and_business(boards: dict[str, dict]) -> None:
    exprs = " ".join(t["expr"] for p in _panels(boards["load-test.json"]) for t in p.get("targets") or [])
    for phi in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({phi}, sum by (le, method, name)" in exprs
    for metric in (
        metric_names.TARGET_ARRIVAL_RATE,
        metric_names.ARRIVALS,
        metric_names.USERS,
        metric_names.WORKERS,
        metric_names.ORDERS,
        metric_names.PAYMENTS,
        metric_names.FLASH_SALE_ATTEMPTS,
        "slo:client_current_burn_rate:ratio",
    ):
        assert metric in exprs
    assert "sum by (error_type)" in exprs


def test_load_test_shows_rate_and_p95_by_journey_step(boards: dict[str, dict]) -> None:
    panels = {p["title"]: [t["expr"] for t in p.get("targets") or []] for p in _panels(boards["load-test.json"])}
    (rate,) = panels["Requests/s by journey step"]
    (p95,) = panels["Latency p95 by journey step"]
    assert rate.startswith(f'sum by (step) (rate({metric_names.REQUESTS}{{name=~"$name",step!=""}}')
    assert p95.startswith("histogram_quantile(0.95, sum by (le, step) (rate(peakload_request_duration_seconds_bucket{")
    assert 'step!=""' in p95 and RUN_JOIN in rate and RUN_JOIN in p95  # journey steps only, of the chosen run


def test_an_slo_of_steps_only_gets_a_row_of_the_load_generators_view(slo_spec: SLOSpec) -> None:
    steps_only = slo_spec.slos[3].model_copy(update={"requests": []})
    board = json.loads(build_dashboards(slo_spec.model_copy(update={"slos": [steps_only]}))["slo.json"])
    exprs = " ".join(t["expr"] for p in _panels(board) for t in p.get("targets") or [] if "checkout-availability" in p["title"])
    assert 'slo:client_sli_error:ratio_rate5m{slo="checkout-availability"}' in exprs
    assert "slo:sli_error" not in exprs and "slo:period_error_budget_remaining" not in exprs  # no server-side series exist for it


def test_slo_dashboard_has_a_row_per_slo_and_follows_the_spec(slo_spec: SLOSpec, boards: dict[str, dict]) -> None:
    rows = [p["title"] for p in boards["slo.json"]["panels"] if p["type"] == "row"]
    assert rows[0] == "All SLOs"
    assert [r.split(" — ")[0] for r in rows[1:]] == [s.name for s in slo_spec.slos]
    assert "checkout-availability — availability, objective 99.95%" in rows
    assert "product-page-latency — latency < 0.3s, objective 99%" in rows
    changed = slo_spec.model_copy(update={"slos": [slo_spec.slos[3].model_copy(update={"objective": 99.8})]})
    text = build_dashboards(changed)["slo.json"]
    assert 'slo:sli_error:ratio_rate1h{slo=\\"checkout-availability\\"} / 0.002' in text
    assert "home-first-screen" not in text


def test_platform_dashboard_covers_resources_business_and_real_vs_shadow_funnel(boards: dict[str, dict]) -> None:
    panels = {p["title"]: p for p in _panels(boards["platform.json"])}
    for title in (
        "Requests/s by route",
        "5xx ratio by route",
        "DB pool connections in use",
        "Cache hit ratio",
        "Payments/s by outcome",
        "Flash-sale stock",
        "Oversell attempts rejected (time range)",
    ):
        assert title in panels
    real = [t["expr"] for t in panels["Funnel — real shoppers (time range)"]["targets"]]
    shadow = [t["expr"] for t in panels["Funnel — shadow / load test (time range)"]["targets"]]
    assert [t["legendFormat"] for t in panels["Funnel — real shoppers (time range)"]["targets"]] == [
        "product views",
        "cart adds",
        "orders",
        "paid",
    ]
    assert all('traffic="real"' in e for e in real) and all('traffic="shadow"' in e for e in shadow)


def test_every_metric_in_a_panel_is_a_contract_metric_or_a_recorded_rule(root: Path, boards: dict[str, dict]) -> None:
    contract = set()
    for name in metric_names.__all__:
        value = getattr(metric_names, name)
        if isinstance(value, str):
            contract |= {value, value + "_bucket", value + "_count", value + "_sum"}
    rules = yaml.safe_load((root / "dashboards/generated/slo.rules.yaml").read_text())
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    allowed = contract | recorded | {"ALERTS"}
    variables = {"run_id": ".*", "name": ".*", "route": ".*", "traffic": ".*"}
    for name, board in boards.items():
        for title, expr in panel_queries(board, variables):
            used = set(re.findall(r"\b((?:peakload|storefront)_\w+|slo:\w+:\w+|ALERTS)\b", expr))
            assert used, f"{name} / {title}: no metric in {expr}"
            assert used <= allowed, f"{name} / {title}: unknown metrics {sorted(used - allowed)}"


def test_panel_queries_substitutes_variables_and_names_the_panel_of_an_unknown_one(boards: dict[str, dict]) -> None:
    board = boards["platform.json"]
    queries = panel_queries(board, {"route": "/api/home", "traffic": "real", "__rate_interval": "1m"})
    by_title = dict(queries)
    assert (
        by_title["Requests/s by route"]
        == 'sum by (method, route) (rate(storefront_http_requests_total{route=~"/api/home",traffic=~"real"}[1m]))'
    )
    assert all("$" not in expr for _, expr in queries)
    with pytest.raises(DashboardBuildError, match=r"panel 'Requests/s by route': no value for variable \$route"):
        panel_queries(board, {"traffic": "real"})
