"""What Prometheus scrapes: exact exposition text for known records, and promtool's verdict."""

from __future__ import annotations

import shutil
import subprocess
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters.histogram import DEFAULT_BUCKETS, bucket_edges
from exporters.prometheus import METRIC_NAMES, PeakloadCollector, start_metrics_server
from exporters.stats import StatsStore

EXPECTED = """\
# HELP peakload_requests_total Requests completed by the load generator.
# TYPE peakload_requests_total counter
peakload_requests_total{method="POST",name="/api/orders",status_class="none",step=""} 1.0
peakload_requests_total{method="POST",name="/api/orders",status_class="4xx",step=""} 1.0
peakload_requests_total{method="GET",name="/api/products/{sku}",status_class="2xx",step=""} 2.0
peakload_requests_total{method="GET",name="/api/products/{sku}",status_class="5xx",step=""} 1.0
# HELP peakload_request_failures_total Failed requests by bounded error type.
# TYPE peakload_request_failures_total counter
peakload_request_failures_total{error_type="http_4xx",method="POST",name="/api/orders",step=""} 1.0
peakload_request_failures_total{error_type="http_5xx",method="POST",name="/api/orders",step=""} 0.0
peakload_request_failures_total{error_type="timeout",method="POST",name="/api/orders",step=""} 1.0
peakload_request_failures_total{error_type="connection",method="POST",name="/api/orders",step=""} 0.0
peakload_request_failures_total{error_type="body_check",method="POST",name="/api/orders",step=""} 0.0
peakload_request_failures_total{error_type="other",method="POST",name="/api/orders",step=""} 0.0
peakload_request_failures_total{error_type="http_4xx",method="GET",name="/api/products/{sku}",step=""} 0.0
peakload_request_failures_total{error_type="http_5xx",method="GET",name="/api/products/{sku}",step=""} 1.0
peakload_request_failures_total{error_type="timeout",method="GET",name="/api/products/{sku}",step=""} 0.0
peakload_request_failures_total{error_type="connection",method="GET",name="/api/products/{sku}",step=""} 0.0
peakload_request_failures_total{error_type="body_check",method="GET",name="/api/products/{sku}",step=""} 0.0
peakload_request_failures_total{error_type="other",method="GET",name="/api/products/{sku}",step=""} 0.0
# HELP peakload_request_duration_seconds Request latency seen by the load generator.
# TYPE peakload_request_duration_seconds histogram
peakload_request_duration_seconds_bucket{le="0.1",method="POST",name="/api/orders",step=""} 0.0
peakload_request_duration_seconds_bucket{le="0.3",method="POST",name="/api/orders",step=""} 0.0
peakload_request_duration_seconds_bucket{le="2.0",method="POST",name="/api/orders",step=""} 1.0
peakload_request_duration_seconds_bucket{le="+Inf",method="POST",name="/api/orders",step=""} 2.0
peakload_request_duration_seconds_count{method="POST",name="/api/orders",step=""} 2.0
peakload_request_duration_seconds_sum{method="POST",name="/api/orders",step=""} 12.0
peakload_request_duration_seconds_bucket{le="0.1",method="GET",name="/api/products/{sku}",step=""} 1.0
peakload_request_duration_seconds_bucket{le="0.3",method="GET",name="/api/products/{sku}",step=""} 2.0
peakload_request_duration_seconds_bucket{le="2.0",method="GET",name="/api/products/{sku}",step=""} 2.0
peakload_request_duration_seconds_bucket{le="+Inf",method="GET",name="/api/products/{sku}",step=""} 3.0
peakload_request_duration_seconds_count{method="GET",name="/api/products/{sku}",step=""} 3.0
peakload_request_duration_seconds_sum{method="GET",name="/api/products/{sku}",step=""} 2.875
# HELP peakload_users Running simulated users.
# TYPE peakload_users gauge
peakload_users 20.0
# HELP peakload_workers Connected load generator workers (1 when not distributed).
# TYPE peakload_workers gauge
peakload_workers 2.0
# HELP peakload_target_arrivals_per_second Arrival rate the traffic shape asks for (absent in closed-model runs).
# TYPE peakload_target_arrivals_per_second gauge
peakload_target_arrivals_per_second 12.5
# HELP peakload_arrivals_total Journey arrivals scheduled (open model).
# TYPE peakload_arrivals_total counter
peakload_arrivals_total 40.0
# HELP peakload_dropped_arrivals_total Arrivals that found no free user.
# TYPE peakload_dropped_arrivals_total counter
peakload_dropped_arrivals_total 3.0
# HELP peakload_orders_total Orders created by simulated shoppers.
# TYPE peakload_orders_total counter
peakload_orders_total 4.0
# HELP peakload_payments_total Payment attempts by outcome.
# TYPE peakload_payments_total counter
peakload_payments_total{outcome="success"} 3.0
peakload_payments_total{outcome="declined"} 1.0
peakload_payments_total{outcome="error"} 0.0
# HELP peakload_flash_sale_attempts_total Flash-sale purchase attempts by outcome.
# TYPE peakload_flash_sale_attempts_total counter
peakload_flash_sale_attempts_total{outcome="won"} 1.0
peakload_flash_sale_attempts_total{outcome="sold_out"} 5.0
peakload_flash_sale_attempts_total{outcome="error"} 0.0
# HELP peakload_product_views_total Product pages viewed by simulated shoppers.
# TYPE peakload_product_views_total counter
peakload_product_views_total 2.0
# HELP peakload_cart_adds_total Items added to carts by simulated shoppers.
# TYPE peakload_cart_adds_total counter
peakload_cart_adds_total 0.0
# HELP peakload_run_info The run this generator is driving.
# TYPE peakload_run_info gauge
peakload_run_info{profile="smoke",run_id="20251126T000000Z-ab12"} 1.0
"""


def _known_store() -> StatsStore:
    store = StatsStore(edges=(0.1, 0.3, 2.0))
    store.record("/api/products/{sku}", "GET", 0.05, 200)
    store.record("/api/products/{sku}", "GET", 0.3, 200)  # exactly on an edge: le="0.3" includes it
    store.record("/api/products/{sku}", "GET", 2.525, 503, "http_5xx")
    store.record("/api/orders", "POST", 2.0, 409, "http_4xx")
    store.record("/api/orders", "POST", 10.0, None, "timeout")
    for key, n in {
        "product_views": 2,
        "orders": 4,
        "payments_success": 3,
        "payments_declined": 1,
        "flash_won": 1,
        "flash_sold_out": 5,
    }.items():
        store.add_business(key, n)
    store.add_arrivals(scheduled=40, dropped=3)
    store.users, store.workers, store.target_rate = 20, 2, 12.5
    return store


def _exposition(store: StatsStore) -> str:
    registry = CollectorRegistry()
    registry.register(PeakloadCollector(store, run_id="20251126T000000Z-ab12", profile="smoke"))
    return generate_latest(registry).decode()


def test_exposition_text_is_exact_for_known_records() -> None:
    assert _exposition(_known_store()) == EXPECTED


def test_exposition_is_the_same_across_a_drain() -> None:
    # a scrape must not depend on whether the numbers were already drained into a snapshot
    store = _known_store()
    store.drain_delta()
    assert _exposition(store) == EXPECTED


def test_every_contract_metric_name_is_exposed() -> None:
    text = _exposition(_known_store())
    for name in METRIC_NAMES:
        assert f"# TYPE {name} " in text


def test_target_rate_absent_in_closed_model() -> None:
    store = StatsStore(edges=DEFAULT_BUCKETS)
    text = _exposition(store)
    assert "\npeakload_target_arrivals_per_second " not in text
    assert "\npeakload_users 0.0\n" in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_the_exposition(slo_spec) -> None:
    store = _known_store()
    real = StatsStore(edges=bucket_edges(slo=slo_spec))
    real.record("/api/home", "GET", 0.12, 200)
    real.record("/api/home", "GET", 2.4, 504, "http_5xx")
    for text in (_exposition(store), _exposition(real), _exposition(StatsStore(edges=DEFAULT_BUCKETS))):
        result = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
        # promtool exits 0 when clean; lint findings (naming, units) are printed and exit non-zero
        assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def test_metrics_server_serves_the_registry() -> None:
    store = _known_store()
    registry = CollectorRegistry()
    registry.register(PeakloadCollector(store, run_id="20251126T000000Z-ab12", profile="smoke"))
    server, thread = start_metrics_server(port=0, registry=registry)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics", timeout=5) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            assert resp.read().decode() == EXPECTED
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
