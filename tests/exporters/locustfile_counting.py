"""Test locustfile: someone's own locustfile that adds peakload metrics with one import.

Hits the counting server of tests/exporters/conftest.py. When
``PEAKLOAD_TEST_METRICS_DUMP`` is set, the master (or local runner) scrapes its
own /metrics at ``quitting`` — after the workers' final reports were merged —
and writes the text there, so the test can compare the final exposition with
the server's counts.

Two tasks carry a journey step in the request context as the journey does
(``product``, ``search``); ``/api/missing`` carries a value that is no journey
step (counted without one), ``/api/boom`` none at all.
"""

import itertools
import os
import urllib.request

from locust import FastHttpUser, constant, events, task
from locust.runners import WorkerRunner

import scenarios.instrumentation  # noqa: F401  (the one import under test)
from peakload.core.steps import STEP_KEY
from scenarios.instrumentation import record_business

_sku = itertools.count()


class CountingShopper(FastHttpUser):
    wait_time = constant(0.02)

    @task(6)
    def view_product(self) -> None:
        n = next(_sku) % 50
        with self.client.get(
            f"/api/products/SKU-{n:05d}", name="/api/products/{sku}", catch_response=True, context={STEP_KEY: "product"}
        ) as resp:
            if resp.status_code == 200 and resp.json().get("sku"):
                record_business(self.environment, "product_views")
            else:
                resp.failure("sku missing")

    @task(1)
    def missing(self) -> None:
        self.client.get("/api/missing", context={STEP_KEY: "basket"})  # not a journey step

    @task(1)
    def boom(self) -> None:
        self.client.get("/api/boom")

    @task(1)
    def bad_body(self) -> None:
        with self.client.get("/api/bad-body", catch_response=True, context={STEP_KEY: "search"}) as resp:
            if resp.json().get("status") != "ok":
                resp.failure("status is not ok")


@events.quitting.add_listener
def _dump_final_metrics(environment, **_kw) -> None:
    dump = os.environ.get("PEAKLOAD_TEST_METRICS_DUMP")
    if not dump or isinstance(environment.runner, WorkerRunner):
        return
    port = int(os.environ["PEAKLOAD_METRICS_PORT"])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        body = resp.read()
    with open(dump, "wb") as f:
        f.write(body)
