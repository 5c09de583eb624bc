"""Locustfile for bench/exporter.py: one fast GET in a loop, peakload instrumentation on or off.

``PEAKLOAD_BENCH_INSTRUMENT=1`` adds the one import a real locustfile uses;
anything else leaves plain Locust. The measuring window (``BENCH_T0`` ..
``BENCH_T1`` → ``BENCH_OUT``) is bench/generator_window.py's, imported here, so
both benchmarks sample the same way and it costs both modes the same.
Not meant to be run by hand.
"""

import os
import sys

from locust import FastHttpUser, constant, task

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generator_window  # noqa: E402,F401  (registers the measuring window)

if os.environ.get("PEAKLOAD_BENCH_INSTRUMENT") == "1":
    import scenarios.instrumentation  # noqa: F401


class FastShopper(FastHttpUser):
    wait_time = constant(0)

    @task
    def product(self) -> None:
        self.client.get("/api/products/SKU-00001", name="/api/products/{sku}")
