"""Benchmarks of the Locust request listener; imports locust, so it runs in its own process.

Run by ``test_bench_hook.py::test_full_listener_cost`` (not collected on its own:
importing locust would gevent-patch the whole pytest session).
"""

from __future__ import annotations

import pytest
from locust.env import Environment
from locust.event import Events

from exporters.histogram import bucket_edges
from exporters.settings import ExporterSettings
from scenarios.instrumentation import install

ROUNDS, ITERATIONS = 100, 1000


class _Response:
    status_code = 200


def _env(*, peakload: bool) -> Environment:
    env = Environment(events=Events())
    env.create_local_runner()  # adds Locust's own stats listener, as in a real run
    if peakload:
        install(env, settings=ExporterSettings(run_id="bench", profile_name="bench", edges=bucket_edges()))
    return env


def _event() -> dict:
    return dict(
        request_type="GET",
        name="/api/products/{sku}",
        response_time=42.1,
        response_length=512,
        response=_Response(),
        context={},
        exception=None,
        start_time=0.0,
        url="http://127.0.0.1/api/products/SKU-00001",
    )


def _expected(benchmark) -> int:
    # disabled: one plain call; enabled: every round's loop, plus one extra call
    # pytest-benchmark makes after looped rounds to return a result
    return 1 if benchmark.disabled else ROUNDS * ITERATIONS + 1


def _run(benchmark, fn, kwargs: dict) -> None:
    benchmark.pedantic(fn, kwargs=kwargs, rounds=ROUNDS, iterations=ITERATIONS, warmup_rounds=0)


@pytest.mark.benchmark(group="request listener")
def test_fire_locust_stats_only(benchmark) -> None:
    env = _env(peakload=False)
    _run(benchmark, env.events.request.fire, _event())
    assert env.stats.total.num_requests == _expected(benchmark)


@pytest.mark.benchmark(group="request listener")
def test_fire_locust_stats_and_peakload(benchmark) -> None:
    env = _env(peakload=True)
    _run(benchmark, env.events.request.fire, _event())
    (totals,) = env.peakload_instrumentation.store.series_totals()
    assert totals.count == env.stats.total.num_requests == _expected(benchmark)


@pytest.mark.benchmark(group="request listener")
def test_peakload_listener_alone(benchmark) -> None:
    env = _env(peakload=True)
    inst = env.peakload_instrumentation
    _run(benchmark, inst.on_request, _event())
    (totals,) = inst.store.series_totals()
    assert totals.count == _expected(benchmark)
