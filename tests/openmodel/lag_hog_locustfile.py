"""Test-only locustfile: one GET / per arrival, and a greenlet that burns the generator's CPU on purpose.

``HOG_BURN_MS`` of busy loop (no yield: the gevent loop is blocked meanwhile) every
``HOG_PERIOD_MS``, in each load-generating process, from test start to test stop
(at most ``HOG_MAX_S`` seconds). ``HOG_BURN_MS=0`` makes it a plain journey.
Used by tests/openmodel/test_generator_lag.py with ``peakload run --locustfile``.
"""

import os
import time

import gevent
from locust import FastHttpUser, events
from locust.runners import MasterRunner

from scenarios.custom import journey

BURN_S = float(os.environ.get("HOG_BURN_MS", "0")) / 1000
PERIOD_S = float(os.environ.get("HOG_PERIOD_MS", "100")) / 1000
MAX_S = float(os.environ.get("HOG_MAX_S", "30"))


class Visitor(FastHttpUser):
    @journey
    def visit(self) -> None:
        self.client.get("/")


def _hog() -> None:
    clock = time.perf_counter
    stop = clock() + MAX_S  # bounded whatever happens to test_stop
    while clock() < stop:
        busy_until = clock() + BURN_S
        while clock() < busy_until:  # the generator's own work, nothing the shop does
            pass
        gevent.sleep(max(PERIOD_S - BURN_S, 0.001))


@events.test_start.add_listener
def _start_hog(environment, **_kw) -> None:
    if BURN_S > 0 and not isinstance(environment.runner, MasterRunner):
        environment.peakload_hog = gevent.spawn(_hog)


@events.test_stop.add_listener
def _stop_hog(environment, **_kw) -> None:
    hog = getattr(environment, "peakload_hog", None)
    if hog is not None:
        hog.kill(block=False)
