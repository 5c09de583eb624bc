"""Locustfile for bench/exporter.py: one fast GET in a loop, peakload instrumentation on or off.

``PEAKLOAD_BENCH_INSTRUMENT=1`` adds the one import a real locustfile uses;
anything else leaves plain Locust. At test_stop it writes the test's wall
time, this process's CPU time over the test and Locust's request count to
``PEAKLOAD_BENCH_OUT`` (same code in both modes, so it costs both the same).
Not meant to be run by hand.
"""

import json
import os
import time

from locust import FastHttpUser, constant, events, task

if os.environ.get("PEAKLOAD_BENCH_INSTRUMENT") == "1":
    import scenarios.instrumentation  # noqa: F401


class FastShopper(FastHttpUser):
    wait_time = constant(0)

    @task
    def product(self) -> None:
        self.client.get("/api/products/SKU-00001", name="/api/products/{sku}")


@events.test_start.add_listener
def _clock_start(environment, **_kw) -> None:
    environment.bench_clock = (time.time(), time.process_time())


@events.test_stop.add_listener
def _clock_stop(environment, **_kw) -> None:
    wall0, cpu0 = environment.bench_clock
    out = os.environ.get("PEAKLOAD_BENCH_OUT")
    if out:
        with open(out, "w") as f:
            json.dump(
                {"wall_s": time.time() - wall0, "cpu_s": time.process_time() - cpu0, "requests": environment.stats.total.num_requests},
                f,
            )
