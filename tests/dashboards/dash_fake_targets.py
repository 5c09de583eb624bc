"""Two tiny scrape targets for the Prometheus tests: a storefront and a load generator.

Each serves ``/metrics`` rendered by prometheus-client with the contract metric
names (docs/contracts.md §7). Every scrape adds one fixed batch of events, so
rates are positive and ratios are exact:

* checkout: 1 % of POST /api/orders answers are 5xx (storefront); the load
  generator saw 1 % http_5xx plus 2 % http_4xx failures (4xx don't count for SLOs);
* GET /api/products/{sku}: 4 % of requests slower than 0.3 s;
* the load generator also sent POST /api/orders as another journey step
  (``flash_checkout``), all of them 5xx: an SLO on step ``checkout`` must not count them.

Usage::

    with FakeTargets() as t:      # t.storefront / t.loadgen are "127.0.0.1:PORT"
        ...
"""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.3, 0.5, 0.75, 1.0, 2.0, 2.5, 5.0, 7.5, 10.0)
REQUESTS = [  # (method, route) of every SLO in profiles/slo.yaml and one more
    ("GET", "/api/home"),
    ("GET", "/api/categories/{category_id}/products"),
    ("GET", "/api/search"),
    ("GET", "/api/products/{sku}"),
    ("POST", "/api/orders"),
    ("POST", "/api/orders/{order_id}/payment"),
    ("GET", "/api/cart"),
]
# the journey step the load generator labels each request with (the SLOs' client side selects by it)
STEP_OF = {
    "/api/home": "home",
    "/api/categories/{category_id}/products": "category",
    "/api/search": "search",
    "/api/products/{sku}": "product",
    "/api/orders": "checkout",
    "/api/orders/{order_id}/payment": "pay",
    "/api/cart": "cart",
}
OTHER_STEP = "flash_checkout"  # POST /api/orders under a step no SLO of profiles/slo.yaml names
PER_SCRAPE = 100  # requests per (method, route) per scrape
RUN_ID = "20251126T000000Z-test"

CHECKOUT_5XX_RATIO = 0.01
CLIENT_4XX_RATIO = 0.02
PRODUCT_SLOW_RATIO = 0.04


class _Storefront:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("storefront_http_requests", "", ["route", "method", "status_class", "traffic"], registry=r)
        self.duration = Histogram(
            "storefront_http_request_duration_seconds", "", ["route", "method", "traffic"], buckets=BUCKETS, registry=r
        )
        self.pool = Gauge("storefront_db_pool_connections_in_use", "", registry=r)
        self.cache = Counter("storefront_cache_requests", "", ["result"], registry=r)
        self.orders = Counter("storefront_orders", "", ["traffic"], registry=r)
        self.payments = Counter("storefront_payments", "", ["outcome", "traffic"], registry=r)
        self.stockouts = Counter("storefront_stockouts", "", ["traffic"], registry=r)
        self.oversell = Counter("storefront_oversell_rejected", "", ["traffic"], registry=r)
        self.flash = Gauge("storefront_flash_sale_stock", "", ["sku"], registry=r)
        self.views = Counter("storefront_product_views", "", ["traffic"], registry=r)
        self.cart_adds = Counter("storefront_cart_adds", "", ["traffic"], registry=r)
        self.stock = 50

    def tick(self) -> None:
        for method, route in REQUESTS:
            bad = round(PER_SCRAPE * CHECKOUT_5XX_RATIO) if route.startswith("/api/orders") else 0
            slow = round(PER_SCRAPE * PRODUCT_SLOW_RATIO) if route == "/api/products/{sku}" else 0
            for traffic, share in (("shadow", 0.8), ("real", 0.2)):
                n = round(PER_SCRAPE * share)
                b, s = round(bad * share), round(slow * share)
                self.requests.labels(route, method, "2xx", traffic).inc(n - b)
                if b:
                    self.requests.labels(route, method, "5xx", traffic).inc(b)
                for _ in range(n - s):
                    self.duration.labels(route, method, traffic).observe(0.02)
                for _ in range(s):
                    self.duration.labels(route, method, traffic).observe(0.4)
        self.pool.set(3)
        self.cache.labels("hit").inc(90)
        self.cache.labels("miss").inc(10)
        for traffic in ("real", "shadow"):
            self.views.labels(traffic).inc(40)
            self.cart_adds.labels(traffic).inc(12)
            self.orders.labels(traffic).inc(5)
            self.payments.labels("success", traffic).inc(4)
            self.payments.labels("declined", traffic).inc(1)
            self.payments.labels("error", traffic).inc(0)
            self.stockouts.labels(traffic).inc(1)
            self.oversell.labels(traffic).inc(1)
        self.stock = max(0, self.stock - 1)
        self.flash.labels("FLASH-0001").set(self.stock)


class _LoadGenerator:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("peakload_requests", "", ["name", "method", "step", "status_class"], registry=r)
        self.failures = Counter("peakload_request_failures", "", ["name", "method", "step", "error_type"], registry=r)
        self.duration = Histogram("peakload_request_duration_seconds", "", ["name", "method", "step"], buckets=BUCKETS, registry=r)
        self.users = Gauge("peakload_users", "", registry=r)
        self.workers = Gauge("peakload_workers", "", registry=r)
        self.target = Gauge("peakload_target_arrivals_per_second", "", registry=r)
        self.arrivals = Counter("peakload_arrivals", "", registry=r)
        self.dropped = Counter("peakload_dropped_arrivals", "", registry=r)
        self.orders = Counter("peakload_orders", "", registry=r)
        self.payments = Counter("peakload_payments", "", ["outcome"], registry=r)
        self.flash = Counter("peakload_flash_sale_attempts", "", ["outcome"], registry=r)
        self.views = Counter("peakload_product_views", "", registry=r)
        self.cart_adds = Counter("peakload_cart_adds", "", registry=r)
        Gauge("peakload_run_info", "", ["run_id", "profile"], registry=r).labels(RUN_ID, "smoke").set(1)

    def tick(self) -> None:
        for method, name in REQUESTS:
            n = PER_SCRAPE
            bad5 = round(n * CHECKOUT_5XX_RATIO) if name.startswith("/api/orders") else 0
            bad4 = round(n * CLIENT_4XX_RATIO) if name.startswith("/api/orders") else 0
            slow = round(n * PRODUCT_SLOW_RATIO) if name == "/api/products/{sku}" else 0
            step = STEP_OF[name]
            self.requests.labels(name, method, step, "2xx").inc(n - bad5 - bad4)
            if bad5:
                self.requests.labels(name, method, step, "5xx").inc(bad5)
                self.failures.labels(name, method, step, "http_5xx").inc(bad5)
            if bad4:
                self.requests.labels(name, method, step, "4xx").inc(bad4)
                self.failures.labels(name, method, step, "http_4xx").inc(bad4)
            if name == "/api/search":
                self.failures.labels(name, method, step, "timeout").inc(0)
            for _ in range(n - slow):
                self.duration.labels(name, method, step).observe(0.03)
            for _ in range(slow):
                self.duration.labels(name, method, step).observe(0.5)
        self.users.set(20)
        self.workers.set(1)
        self.target.set(10)
        self.arrivals.inc(9)
        self.dropped.inc(1)
        self.orders.inc(5)
        self.views.inc(40)
        self.cart_adds.inc(12)
        for outcome, k in (("success", 4), ("declined", 1), ("error", 0)):
            self.payments.labels(outcome).inc(k)
        for outcome, k in (("won", 1), ("sold_out", 3), ("error", 0)):
            self.flash.labels(outcome).inc(k)
        # same route, other step: selected by route it would count, selected by step it must not
        self.requests.labels("/api/orders", "POST", OTHER_STEP, "5xx").inc(PER_SCRAPE)
        self.failures.labels("/api/orders", "POST", OTHER_STEP, "http_5xx").inc(PER_SCRAPE)
        for _ in range(PER_SCRAPE):
            self.duration.labels("/api/orders", "POST", OTHER_STEP).observe(5.0)


class FakeTargets:
    """Both targets on 127.0.0.1 free ports, served from one background event loop."""

    def __init__(self) -> None:
        self.storefront_metrics = _Storefront()
        self.loadgen_metrics = _LoadGenerator()
        self.storefront = self.loadgen = ""
        self.scrapes = {"storefront": 0, "loadgen": 0}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-targets", daemon=True)
        self._runners: list[web.AppRunner] = []

    def _app(self, key: str, source) -> web.Application:
        async def metrics(_request: web.Request) -> web.Response:
            source.tick()
            self.scrapes[key] += 1
            return web.Response(body=generate_latest(source.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        return app

    async def _start(self) -> None:
        for key, source in (("storefront", self.storefront_metrics), ("loadgen", self.loadgen_metrics)):
            runner = web.AppRunner(self._app(key, source), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            setattr(self, key, f"127.0.0.1:{port}")
            self._runners.append(runner)

    async def _stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()

    def __enter__(self) -> FakeTargets:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
