"""Locustfile for bench/exporter.py: one fast GET in a loop, peakload instrumentation on or off.

``PEAKLOAD_BENCH_INSTRUMENT=1`` adds the one import a real locustfile uses;
anything else leaves plain Locust. Not meant to be run by hand.
"""

import os

from locust import FastHttpUser, constant, task

if os.environ.get("PEAKLOAD_BENCH_INSTRUMENT") == "1":
    import scenarios.instrumentation  # noqa: F401


class FastShopper(FastHttpUser):
    wait_time = constant(0)

    @task
    def product(self) -> None:
        self.client.get("/api/products/SKU-00001", name="/api/products/{sku}")
