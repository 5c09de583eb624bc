"""Prometheus exposition of a :class:`~exporters.stats.StatsStore` (contracts §7).

Usage::

    registry = CollectorRegistry()
    registry.register(PeakloadCollector(store, run_id="20251126T000000Z-ab12", profile="smoke"))
    text = generate_latest(registry)                       # bytes, text format 0.0.4
    app = metrics_app(registry)                            # WSGI app serving /metrics
    server, thread = start_metrics_server(port=9646, registry=registry)  # plain threads

The request families carry a bounded ``step`` label: a journey step of
:data:`peakload.core.steps.STEPS`, or ``""`` for a request outside the journey —
an empty label value is, to Prometheus, the same as no label, so those series are
stored exactly as before steps existed (``{step=""}`` selects them).

Under Locust (gevent) the bridge serves :func:`metrics_app` with gevent's own
WSGI server instead of :func:`start_metrics_server`; see
``scenarios/instrumentation.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.exposition import make_wsgi_app
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

from exporters.stats import StatsStore

__all__ = [
    "REQUESTS_TOTAL",
    "REQUEST_FAILURES_TOTAL",
    "REQUEST_DURATION_SECONDS",
    "USERS",
    "WORKERS",
    "TARGET_ARRIVALS_PER_SECOND",
    "ARRIVALS_TOTAL",
    "DROPPED_ARRIVALS_TOTAL",
    "ORDERS_TOTAL",
    "PAYMENTS_TOTAL",
    "FLASH_SALE_ATTEMPTS_TOTAL",
    "PRODUCT_VIEWS_TOTAL",
    "CART_ADDS_TOTAL",
    "RUN_INFO",
    "METRIC_NAMES",
    "SCHEDULER_LATENESS_SECONDS",
    "RESPONSE_HANDLING_LAG_SECONDS",
    "GENERATOR_METRIC_NAMES",
    "PeakloadCollector",
    "metrics_app",
    "start_metrics_server",
]

REQUESTS_TOTAL = "peakload_requests_total"
REQUEST_FAILURES_TOTAL = "peakload_request_failures_total"
REQUEST_DURATION_SECONDS = "peakload_request_duration_seconds"
USERS = "peakload_users"
WORKERS = "peakload_workers"
TARGET_ARRIVALS_PER_SECOND = "peakload_target_arrivals_per_second"
ARRIVALS_TOTAL = "peakload_arrivals_total"
DROPPED_ARRIVALS_TOTAL = "peakload_dropped_arrivals_total"
ORDERS_TOTAL = "peakload_orders_total"
PAYMENTS_TOTAL = "peakload_payments_total"
FLASH_SALE_ATTEMPTS_TOTAL = "peakload_flash_sale_attempts_total"
PRODUCT_VIEWS_TOTAL = "peakload_product_views_total"
CART_ADDS_TOTAL = "peakload_cart_adds_total"
RUN_INFO = "peakload_run_info"
METRIC_NAMES: tuple[str, ...] = (
    REQUESTS_TOTAL, REQUEST_FAILURES_TOTAL, REQUEST_DURATION_SECONDS, USERS, WORKERS,
    TARGET_ARRIVALS_PER_SECOND, ARRIVALS_TOTAL, DROPPED_ARRIVALS_TOTAL, ORDERS_TOTAL,
    PAYMENTS_TOTAL, FLASH_SALE_ATTEMPTS_TOTAL, PRODUCT_VIEWS_TOTAL, CART_ADDS_TOTAL, RUN_INFO,
)  # fmt: skip

# the generator's own lag (docs/open-model.md): exposed once the load process took a sample (absent before, like the target rate)
SCHEDULER_LATENESS_SECONDS = "peakload_scheduler_lateness_seconds"
RESPONSE_HANDLING_LAG_SECONDS = "peakload_response_handling_lag_seconds"
GENERATOR_METRIC_NAMES: tuple[str, ...] = (SCHEDULER_LATENESS_SECONDS, RESPONSE_HANDLING_LAG_SECONDS)
_GENERATOR_FAMILIES = {
    "scheduler_lateness": (
        SCHEDULER_LATENESS_SECONDS,
        "Open model: actual send of a journey's first request minus its intended instant (the generator's lateness).",
    ),
    "response_handling_lag": (
        RESPONSE_HANDLING_LAG_SECONDS,
        "The load generator's event-loop lag (a 10 ms timer's overshoot): how long a ready response waits to be recorded.",
    ),
}

_PAYMENT_OUTCOMES = (("success", "payments_success"), ("declined", "payments_declined"), ("error", "payments_error"))
_FLASH_OUTCOMES = (("won", "flash_won"), ("sold_out", "flash_sold_out"), ("error", "flash_error"))


class PeakloadCollector(Collector):
    """One ``collect()`` that yields fresh metric families from the store on every scrape."""

    def __init__(self, store: StatsStore, *, run_id: str, profile: str) -> None:
        self._store = store
        self._run_id = run_id
        self._profile = profile
        self._le = [floatToGoString(e) for e in store.edges] + ["+Inf"]
        self._lag_le = [floatToGoString(e) for e in store.generator_edges] + ["+Inf"]

    def describe(self) -> Iterator[Metric]:
        """Names only (so registering does not run a full collect)."""
        yield from self._families(with_samples=False)

    def collect(self) -> Iterator[Metric]:
        yield from self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        store = self._store
        requests = CounterMetricFamily(
            REQUESTS_TOTAL, "Requests completed by the load generator.", labels=["name", "method", "step", "status_class"]
        )
        failures = CounterMetricFamily(
            REQUEST_FAILURES_TOTAL, "Failed requests by bounded error type.", labels=["name", "method", "step", "error_type"]
        )
        duration = HistogramMetricFamily(
            REQUEST_DURATION_SECONDS, "Request latency seen by the load generator.", labels=["name", "method", "step"]
        )
        if with_samples:
            for s in store.series_totals():
                for cls, v in s.status.items():
                    requests.add_metric([s.name, s.method, s.step, cls], v)
                for err, v in s.errors.items():
                    failures.add_metric([s.name, s.method, s.step, err], v)
                duration.add_metric([s.name, s.method, s.step], list(zip(self._le, s.cumulative_buckets)), s.sum_s)
        yield requests
        yield failures
        yield duration
        if with_samples:
            for kind, lag in store.generator_totals().items():
                name, doc = _GENERATOR_FAMILIES[kind]
                family = HistogramMetricFamily(name, doc, labels=[])
                family.add_metric([], list(zip(self._lag_le, lag.cumulative_buckets)), lag.sum_s)
                yield family

        yield _gauge(USERS, "Running simulated users.", store.users if with_samples else None)
        yield _gauge(WORKERS, "Connected load generator workers (1 when not distributed).", store.workers if with_samples else None)
        yield _gauge(
            TARGET_ARRIVALS_PER_SECOND,
            "Arrival rate the traffic shape asks for (absent in closed-model runs).",
            store.target_rate if with_samples else None,
        )
        arrivals = store.arrival_totals()
        yield _counter(ARRIVALS_TOTAL, "Journey arrivals scheduled (open model).", arrivals["scheduled"] if with_samples else None)
        yield _counter(DROPPED_ARRIVALS_TOTAL, "Arrivals that found no free user.", arrivals["dropped"] if with_samples else None)

        business = store.business_totals()
        yield _counter(ORDERS_TOTAL, "Orders created by simulated shoppers.", business["orders"] if with_samples else None)
        payments = CounterMetricFamily(PAYMENTS_TOTAL, "Payment attempts by outcome.", labels=["outcome"])
        flash = CounterMetricFamily(FLASH_SALE_ATTEMPTS_TOTAL, "Flash-sale purchase attempts by outcome.", labels=["outcome"])
        if with_samples:
            for outcome, key in _PAYMENT_OUTCOMES:
                payments.add_metric([outcome], business[key])
            for outcome, key in _FLASH_OUTCOMES:
                flash.add_metric([outcome], business[key])
        yield payments
        yield flash
        yield _counter(
            PRODUCT_VIEWS_TOTAL, "Product pages viewed by simulated shoppers.", business["product_views"] if with_samples else None
        )
        yield _counter(CART_ADDS_TOTAL, "Items added to carts by simulated shoppers.", business["cart_adds"] if with_samples else None)

        info = InfoMetricFamily(RUN_INFO.removesuffix("_info"), "The run this generator is driving.", labels=["run_id", "profile"])
        if with_samples:
            info.add_metric([self._run_id, self._profile], {})
        yield info


def _gauge(name: str, doc: str, value: float | None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value) if value is not None else GaugeMetricFamily(name, doc, labels=[])


def _counter(name: str, doc: str, value: float | None) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value) if value is not None else CounterMetricFamily(name, doc, labels=[])


def metrics_app(registry: CollectorRegistry) -> Callable[[dict[str, Any], Callable[..., Any]], Any]:
    """WSGI app answering every path with the registry's exposition (``/metrics`` by convention)."""
    return make_wsgi_app(registry)


def start_metrics_server(*, port: int, registry: CollectorRegistry, addr: str = "127.0.0.1") -> tuple[Any, threading.Thread]:
    """Serve /metrics on ``addr:port`` from a daemon thread (non-gevent processes).

    Returns ``(server, thread)``; ``server.shutdown()`` stops it. ``port=0``
    picks a free port: ``server.server_port``.
    """
    return start_http_server(port, addr=addr, registry=registry)
