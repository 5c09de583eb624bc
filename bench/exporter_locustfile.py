"""Locustfile for bench/exporter.py: one fast GET in a loop, peakload instrumentation on or off.

``PEAKLOAD_BENCH_INSTRUMENT=1`` adds the one import a real locustfile uses;
anything else leaves plain Locust. Between the wall-clock instants
``PEAKLOAD_BENCH_T0`` and ``PEAKLOAD_BENCH_T1`` it samples Locust's request
count and this process's CPU time, and writes both deltas to
``PEAKLOAD_BENCH_OUT`` (same code in both modes, so it costs both the same).
Not meant to be run by hand.
"""

import json
import os
import time

import gevent
from locust import FastHttpUser, constant, events, task

if os.environ.get("PEAKLOAD_BENCH_INSTRUMENT") == "1":
    import scenarios.instrumentation  # noqa: F401


class FastShopper(FastHttpUser):
    wait_time = constant(0)

    @task
    def product(self) -> None:
        self.client.get("/api/products/SKU-00001", name="/api/products/{sku}")


def _window(environment, t0: float, t1: float, out: str) -> None:
    if time.time() > t0:
        result = {"error": "the test started after the measuring window opened"}
    else:
        gevent.sleep(t0 - time.time())
        n0, c0 = environment.stats.total.num_requests, time.process_time()
        gevent.sleep(t1 - time.time())
        n1, c1 = environment.stats.total.num_requests, time.process_time()
        result = {"requests": n1 - n0, "cpu_s": c1 - c0, "wall_s": t1 - t0}
    with open(out, "w") as f:
        json.dump(result, f)


@events.test_start.add_listener
def _measure(environment, **_kw) -> None:
    out = os.environ.get("PEAKLOAD_BENCH_OUT")
    if out:
        gevent.spawn(_window, environment, float(os.environ["PEAKLOAD_BENCH_T0"]), float(os.environ["PEAKLOAD_BENCH_T1"]), out)
