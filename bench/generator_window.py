"""Measuring window for bench/generator.py, loaded beside a locustfile (``-f locustfile.py,bench/generator_window.py``).

Between the wall-clock instants ``BENCH_T0`` and ``BENCH_T1`` it samples
Locust's request count and this process's CPU time and writes both deltas to
``BENCH_OUT`` as JSON. The same code runs in every generator, so it costs
them all the same. Not meant to be run by hand.
"""

import json
import os
import time

import gevent
from locust import events

__all__: list[str] = []


def _window(environment, t0: float, t1: float, out: str) -> None:
    if time.time() > t0:
        result = {"error": "the generator started after the measuring window opened"}
    else:
        gevent.sleep(t0 - time.time())
        n0, c0 = environment.stats.total.num_requests, time.process_time()
        gevent.sleep(t1 - time.time())
        n1, c1 = environment.stats.total.num_requests, time.process_time()
        result = {"requests": n1 - n0, "cpu_s": c1 - c0, "wall_s": t1 - t0}
    with open(out, "w") as fh:
        json.dump(result, fh)


@events.test_start.add_listener
def _measure(environment, **_kw) -> None:
    out = os.environ.get("BENCH_OUT")
    if out:
        gevent.spawn(_window, environment, float(os.environ["BENCH_T0"]), float(os.environ["BENCH_T1"]), out)
