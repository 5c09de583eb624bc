"""A real Prometheus with the generated rules scrapes fake storefront + load-generator targets;
every panel query of every dashboard must parse and return data, and the SLIs must match the counts."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import dash_fake_targets as fake
import pytest

from dashboards import DASHBOARD_FILES, PrometheusError
from dashboards.prometheus import (
    panel_queries,
    query,
    running_prometheus,
    wait_for_data,
)

VARIABLES = {"run_id": ".*", "name": ".*", "route": ".*", "traffic": ".*"}
KNOWN_PREFIXES = ("peakload_", "storefront_")


@pytest.fixture(scope="module")
def prometheus(root: Path, tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed (Debian: apt-get install --no-install-recommends prometheus; CI installs it)")
    with fake.FakeTargets() as targets:
        work = tmp_path_factory.mktemp("prometheus")
        with running_prometheus(
            work,
            jobs={"storefront": [targets.storefront], "peakload": [targets.loadgen]},
            rule_files=[root / "dashboards/generated/slo.rules.yaml"],
        ) as prom:
            # Data for rate() needs two scrapes; SLO budgets need a rule evaluation after that.
            wait_for_data(prom.url, "count(up == 1) == 2", timeout=15)
            wait_for_data(prom.url, "sum(rate(peakload_requests_total[30s])) > 0", timeout=15)
            wait_for_data(prom.url, "count(slo:period_error_budget_remaining:ratio) == 5", timeout=15)
            wait_for_data(prom.url, "count(slo:client_current_burn_rate:ratio) == 5", timeout=15)
            yield prom, targets


def _value(result: list[dict]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


def test_query_reports_promql_syntax_errors(prometheus) -> None:
    prom, _ = prometheus
    with pytest.raises(PrometheusError, match=r"bad_data"):
        query(prom.url, "sum(rate(x[5m])")


def test_every_panel_query_of_every_dashboard_parses_and_returns_data(prometheus, root: Path) -> None:
    prom, targets = prometheus
    exposed = set()
    for family in (*targets.storefront_metrics.registry.collect(), *targets.loadgen_metrics.registry.collect()):
        exposed.update(sample.name for sample in family.samples)
    checked, empty = 0, []
    for name in DASHBOARD_FILES:
        board = json.loads((root / "dashboards/generated" / name).read_text())
        for title, expr in panel_queries(board, VARIABLES):
            raw = {tok for tok in _identifiers(expr) if tok.startswith(KNOWN_PREFIXES)}
            assert raw <= exposed, f"{name} / {title}: metrics not in the contract exposition: {sorted(raw - exposed)}"
            result = query(prom.url, expr)  # raises on a parse error
            checked += 1
            if not result:
                empty.append(f"{name} / {title}: {expr}")
    assert checked > 60
    assert not empty, "panels without data:\n" + "\n".join(empty)


def _identifiers(expr: str) -> set[str]:
    import re

    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))


def test_server_side_slis_match_the_scraped_counts(prometheus) -> None:
    prom, _ = prometheus
    checkout = _value(query(prom.url, 'slo:sli_error:ratio_rate5m{slo="checkout-availability"}'))
    assert checkout == pytest.approx(fake.CHECKOUT_5XX_RATIO, rel=1e-6)
    product = _value(query(prom.url, 'slo:sli_error:ratio_rate5m{slo="product-page-latency"}'))
    assert product == pytest.approx(fake.PRODUCT_SLOW_RATIO, rel=1e-6)
    assert _value(query(prom.url, 'slo:sli_error:ratio_rate5m{slo="browse-availability"}')) == 0  # no 5xx series: 0, not "no data"
    burn = _value(query(prom.url, 'slo:current_burn_rate:ratio{slo="checkout-availability"}'))
    assert burn == pytest.approx(fake.CHECKOUT_5XX_RATIO / 0.0005, rel=1e-6)  # 1 % against a 0.05 % budget = 20x


def test_client_side_sli_ignores_4xx_answers(prometheus) -> None:
    prom, _ = prometheus
    client = _value(query(prom.url, 'slo:client_sli_error:ratio_rate5m{slo="checkout-availability"}'))
    assert client == pytest.approx(fake.CHECKOUT_5XX_RATIO, rel=1e-6)


def test_client_side_slis_select_by_journey_step_not_by_route(prometheus) -> None:
    # POST /api/orders also carries step flash_checkout, all 5xx and 5 s slow: the checkout SLOs name
    # steps [checkout, pay] and [checkout], so none of it may reach their client-side SLIs
    prom, _ = prometheus
    latency = _value(query(prom.url, 'slo:client_sli_error:ratio_rate5m{slo="checkout-latency"}'))
    assert latency == 0
    by_step = query(prom.url, 'sum by (step) (rate(peakload_request_failures_total{name="/api/orders",error_type="http_5xx"}[1m]))')
    assert {r["metric"]["step"] for r in by_step if float(r["value"][1]) > 0} == {"checkout", fake.OTHER_STEP}


def test_page_alert_fires_for_a_20x_burn(prometheus) -> None:
    prom, _ = prometheus
    # 1 % 5xx on checkout is 20x the budget over every window Prometheus has data for.
    firing = wait_for_data(prom.url, 'ALERTS{alertname="CheckoutAvailabilityErrorBudgetBurn",alertstate="firing"}', timeout=15)
    assert {a["metric"]["severity"] for a in firing} == {"page", "ticket"}
    assert not query(prom.url, 'ALERTS{slo="browse-availability"}')


def test_run_filter_selects_only_the_chosen_run(prometheus, root: Path) -> None:
    prom, _ = prometheus
    board = json.loads((root / "dashboards/generated/load-test.json").read_text())
    users = dict(panel_queries(board, {**VARIABLES, "run_id": fake.RUN_ID}))["Users"]
    assert _value(query(prom.url, users)) == 20
    other = dict(panel_queries(board, {**VARIABLES, "run_id": "some-other-run"}))["Users"]
    assert query(prom.url, other) == []


def test_stop_leaves_no_process(root: Path, tmp_path: Path) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus not installed")
    with running_prometheus(tmp_path, jobs={"none": []}) as prom:
        assert query(prom.url, "vector(1)")[0]["value"][1] == "1"
    assert prom.process.poll() is not None
    deadline = time.monotonic() + 5
    with pytest.raises(PrometheusError):
        while time.monotonic() < deadline:
            query(prom.url, "vector(1)", timeout=1)
            time.sleep(0.1)
