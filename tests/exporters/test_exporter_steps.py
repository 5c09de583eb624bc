"""Journey steps in the store: a third series key that splits, never changes, the per-name numbers."""

from __future__ import annotations

import json
import math
import random
import shutil
import subprocess
from collections import Counter

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters.histogram import bucket_edges, decode_hdr
from exporters.prometheus import PeakloadCollector
from exporters.stats import StatsStore
from peakload.core.steps import NO_STEP

# a platform where one route serves two steps (the flash sale posts the same order route)
# and one request is outside the journey
ROUTES = [
    ("/api/home", "GET", "home"),
    ("/api/products/{sku}", "GET", "product"),
    ("/api/orders", "POST", "checkout"),
    ("/api/orders", "POST", "flash_checkout"),
    ("/healthz", "GET", NO_STEP),
]


def _samples(seed: int, n: int) -> list[tuple[str, str, str, float, int, str | None]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, method, step = rng.choice(ROUTES)
        seconds = rng.lognormvariate(math.log(0.08), 0.9)
        failed = rng.random() < 0.03
        out.append((name, method, step, seconds, 503 if failed else 200, "http_5xx" if failed else None))
    return out


def _record(store: StatsStore, samples) -> None:
    for name, method, step, seconds, status, err in samples:
        store.record(name, method, seconds, status, err, step=step)


def _wire(delta: dict) -> dict:
    return json.loads(json.dumps(delta, allow_nan=False))


def test_per_step_counts_sum_to_the_per_name_counts(slo_spec) -> None:
    samples = _samples(3, 5000)
    store = StatsStore(edges=bucket_edges(slo=slo_spec))
    _record(store, samples)
    totals = list(store.series_totals())
    by_key = {(t.name, t.method, t.step): t for t in totals}
    assert set(by_key) == {(n, m, s) for n, m, s, *_ in samples}
    for (name, method, step), t in by_key.items():
        mine = [x for x in samples if x[:3] == (name, method, step)]
        assert t.count == len(mine) and t.failures == sum(x[5] is not None for x in mine)
    per_name: Counter[tuple[str, str]] = Counter()
    for t in totals:
        per_name[(t.name, t.method)] += t.count
    assert per_name == Counter((n, m) for n, m, *_ in samples)
    # POST /api/orders is two series, one per step, whose counts add up to the route's
    orders = [t for t in totals if t.name == "/api/orders"]
    assert {t.step for t in orders} == {"checkout", "flash_checkout"}
    assert sum(t.count for t in orders) == sum(1 for x in samples if x[0] == "/api/orders")


def test_merged_master_equals_the_workers_summed_per_step(slo_spec) -> None:
    edges = bucket_edges(slo=slo_spec)
    a, b = _samples(4, 3000), _samples(5, 2000)
    single, w1, w2, master = (StatsStore(edges=edges) for _ in range(4))
    _record(single, a + b)
    _record(w1, a[:1000])
    master.merge_delta(_wire(w1.drain_delta()))
    _record(w2, b)
    _record(w1, a[1000:])
    master.merge_delta(_wire(w2.drain_delta()))
    master.merge_delta(_wire(w1.drain_delta()))
    merged = {(t.name, t.method, t.step): t for t in master.series_totals()}
    alone = {(t.name, t.method, t.step): t for t in single.series_totals()}
    assert set(merged) == set(alone)
    for key, t in alone.items():
        m = merged[key]
        assert (m.count, m.failures, m.status, m.errors, m.cumulative_buckets) == (
            t.count,
            t.failures,
            t.status,
            t.errors,
            t.cumulative_buckets,
        )
    rows = {(r["name"], r["method"], r.get("step", "")): r for r in master.drain_delta()["requests"]}
    for key, t in alone.items():
        assert decode_hdr(rows[key]["hdr"]).get_total_count() == t.count  # HdrHistograms added per step too


def test_delta_rows_carry_step_only_for_a_journey_step() -> None:
    store = StatsStore(edges=(0.1, 1.0))
    store.record("/api/orders", "POST", 0.2, 201, step="checkout")
    store.record("/api/orders", "POST", 0.3, 201)
    rows = store.drain_delta()["requests"]
    assert [(r["name"], r.get("step")) for r in rows] == [("/api/orders", None), ("/api/orders", "checkout")]
    assert "step" not in rows[0]  # a request without a step drains exactly the row it always did
    assert list(rows[1])[:3] == ["name", "method", "step"]


def test_merge_accepts_rows_from_a_worker_without_steps() -> None:
    worker = StatsStore(edges=(0.1, 1.0))
    worker.record("/api/home", "GET", 0.05, 200, step="home")
    worker.record("/api/home", "GET", 0.05, 200)
    delta = _wire(worker.drain_delta())
    old = json.loads(json.dumps(delta))
    for row in old["requests"]:
        row.pop("step", None)  # what a worker of the previous version sends
    new_style_empty = json.loads(json.dumps(delta))
    for row in new_style_empty["requests"]:
        row.setdefault("step", "")  # "" is the same as no key
    master = StatsStore(edges=(0.1, 1.0))
    for d in (delta, old, new_style_empty):
        master.merge_delta(d)
    assert {(t.name, t.step): t.count for t in master.series_totals()} == {("/api/home", ""): 4, ("/api/home", "home"): 2}


@pytest.mark.parametrize("bad", ["basket", 7, None, ["home"]])
def test_an_unknown_step_is_refused_and_nothing_is_counted(bad) -> None:
    store = StatsStore(edges=(0.1, 1.0))
    if isinstance(bad, str):
        with pytest.raises(ValueError, match=r"unknown journey step 'basket'; expected one of sign_in, home"):
            store.record("/api/home", "GET", 0.05, 200, step=bad)
        assert list(store.series_totals()) == []
    other = StatsStore(edges=(0.1, 1.0))
    other.record("/api/home", "GET", 0.05, 200, step="home")
    delta = _wire(other.drain_delta())
    delta["requests"][0]["step"] = bad
    with pytest.raises(ValueError, match=r"GET /api/home: unknown journey step"):
        store.merge_delta(delta)
    assert list(store.series_totals()) == []


def _store_with_steps() -> StatsStore:
    store = StatsStore(edges=(0.1, 2.0))
    store.record("/api/orders", "POST", 0.05, 201, step="checkout")
    store.record("/api/orders", "POST", 3.0, 503, "http_5xx", step="flash_checkout")
    store.record("/healthz", "GET", 0.01, 200)
    return store


EXPECTED_REQUESTS = """\
# HELP peakload_requests_total Requests completed by the load generator.
# TYPE peakload_requests_total counter
peakload_requests_total{method="POST",name="/api/orders",status_class="2xx",step="checkout"} 1.0
peakload_requests_total{method="POST",name="/api/orders",status_class="5xx",step="flash_checkout"} 1.0
peakload_requests_total{method="GET",name="/healthz",status_class="2xx",step=""} 1.0
"""
EXPECTED_DURATION = """\
peakload_request_duration_seconds_bucket{le="0.1",method="POST",name="/api/orders",step="checkout"} 1.0
peakload_request_duration_seconds_bucket{le="2.0",method="POST",name="/api/orders",step="checkout"} 1.0
peakload_request_duration_seconds_bucket{le="+Inf",method="POST",name="/api/orders",step="checkout"} 1.0
peakload_request_duration_seconds_count{method="POST",name="/api/orders",step="checkout"} 1.0
peakload_request_duration_seconds_sum{method="POST",name="/api/orders",step="checkout"} 0.05
peakload_request_duration_seconds_bucket{le="0.1",method="POST",name="/api/orders",step="flash_checkout"} 0.0
peakload_request_duration_seconds_bucket{le="2.0",method="POST",name="/api/orders",step="flash_checkout"} 0.0
peakload_request_duration_seconds_bucket{le="+Inf",method="POST",name="/api/orders",step="flash_checkout"} 1.0
peakload_request_duration_seconds_count{method="POST",name="/api/orders",step="flash_checkout"} 1.0
peakload_request_duration_seconds_sum{method="POST",name="/api/orders",step="flash_checkout"} 3.0
"""


def _exposition(store: StatsStore) -> str:
    registry = CollectorRegistry()
    registry.register(PeakloadCollector(store, run_id="20251126T000000Z-ab12", profile="smoke"))
    return generate_latest(registry).decode()


def test_exposition_labels_each_series_with_its_step() -> None:
    text = _exposition(_store_with_steps())
    assert text.startswith(EXPECTED_REQUESTS)
    assert EXPECTED_DURATION in text
    assert 'error_type="http_5xx",method="POST",name="/api/orders",step="flash_checkout"} 1.0\n' in text


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_promtool_accepts_the_exposition_with_steps() -> None:
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=_exposition(_store_with_steps()).encode(), capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
