"""Storefront Prometheus metrics (docs/contracts.md §7) on an explicit registry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.exposition import generate_latest

__all__ = ["StorefrontMetrics", "DURATION_BUCKETS", "TRAFFIC_VALUES", "status_class", "bounded_method"]

# Prometheus' default edges plus the SLO thresholds 0.3 s and 2.0 s.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0, 2.0, 2.5, 5.0, 7.5, 10.0)
TRAFFIC_VALUES = ("real", "shadow")
PAYMENT_OUTCOMES = ("success", "declined", "error")
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status < 600 else "other"


def bounded_method(method: str) -> str:
    return method if method in _METHODS else "OTHER"


class StorefrontMetrics:
    """All storefront metrics, registered on ``registry`` (a fresh one by default).

    Usage: ``m = StorefrontMetrics(); m.orders.labels(traffic="real").inc(); m.exposition()``
    """

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "storefront_http_requests",
            "HTTP requests handled, by route template.",
            ["route", "method", "status_class", "traffic"],
            registry=r,
        )
        self.duration = Histogram(
            "storefront_http_request_duration_seconds",
            "Time from request arrival to response, by route template.",
            ["route", "method", "traffic"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.unhandled = Counter(
            "storefront_unhandled_exceptions",
            "Unexpected exceptions turned into a JSON 500.",
            ["route"],
            registry=r,
        )
        self.pool_in_use = Gauge(
            "storefront_db_pool_connections_in_use",
            "Database pool connections checked out.",
            registry=r,
        )
        self.pool_max = Gauge(
            "storefront_db_pool_connections_max",
            "Database pool connections that can be checked out at once (pool size + overflow).",
            registry=r,
        )
        ProcessCollector(registry=r)  # process_cpu_seconds_total, resident memory, open fds of the shop's process
        self.cache = Counter(
            "storefront_cache_requests",
            "Product/home cache lookups.",
            ["result"],
            registry=r,
        )
        self.cache_errors = Counter(
            "storefront_cache_errors",
            "Cache backend failures (the request was served from the database).",
            registry=r,
        )
        self.orders = Counter("storefront_orders", "Orders created.", ["traffic"], registry=r)
        self.payments = Counter(
            "storefront_payments",
            "Payment attempts by outcome.",
            ["outcome", "traffic"],
            registry=r,
        )
        self.stockouts = Counter(
            "storefront_stockouts",
            "Checkouts refused because stock was short.",
            ["traffic"],
            registry=r,
        )
        self.oversell_rejected = Counter(
            "storefront_oversell_rejected",
            "Stock decrements refused by the atomic SQL guard after the stock pre-check had passed.",
            ["traffic"],
            registry=r,
        )
        self.flash_stock = Gauge(
            "storefront_flash_sale_stock",
            "Remaining stock of flash-sale SKUs.",
            ["sku"],
            registry=r,
        )
        self.product_views = Counter(
            "storefront_product_views",
            "Product detail pages served.",
            ["traffic"],
            registry=r,
        )
        self.cart_adds = Counter("storefront_cart_adds", "Cart lines added or updated.", ["traffic"], registry=r)
        # Create every bounded child up front so the series exist (at 0) from the first scrape.
        for result in ("hit", "miss"):
            self.cache.labels(result=result)
        for traffic in TRAFFIC_VALUES:
            for counter in (self.orders, self.stockouts, self.oversell_rejected, self.product_views, self.cart_adds):
                counter.labels(traffic=traffic)
            for outcome in PAYMENT_OUTCOMES:
                self.payments.labels(outcome=outcome, traffic=traffic)
        self._request_children: dict[tuple[str, str, int, str], tuple[Counter, Histogram]] = {}
        self._view_children = {t: self.product_views.labels(traffic=t) for t in TRAFFIC_VALUES}

    def bind_pool(self, in_use: Callable[[], int], most: Callable[[], int] | None = None) -> None:
        """Read the pool gauges from ``in_use()`` (and ``most()``, the pool's bound) at every scrape."""
        self.pool_in_use.set_function(in_use)
        if most is not None:
            self.pool_max.set_function(most)

    def observe_request(self, route: str, method: str, status: int, traffic: str, seconds: float) -> None:
        """Count one request; label children are cached (route/method/status/traffic are bounded)."""
        method = bounded_method(method)  # before keying: arbitrary verbs must not grow the cache
        key = (route, method, status, traffic)
        children = self._request_children.get(key)
        if children is None:
            children = (
                self.requests.labels(route=route, method=method, status_class=status_class(status), traffic=traffic),
                self.duration.labels(route=route, method=method, traffic=traffic),
            )
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def product_view(self, traffic: str) -> None:
        """Count one product page view (hot path: the child is looked up once)."""
        self._view_children[traffic].inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
