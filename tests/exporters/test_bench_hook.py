"""Per-request cost of the exporter hook (pytest-benchmark).

``make test`` runs these once as plain tests (``--benchmark-disable`` in
pyproject); to measure: ``pytest tests/exporters/test_bench_hook.py --benchmark-enable -s``.
Nothing here asserts a time; the figures are printed, the goal (generator rps
with the hook ≥ 0.97 × without) is checked by ``bench/exporter.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporters.histogram import bucket_edges
from exporters.stats import StatsStore

REPO = Path(__file__).resolve().parents[2]
ROUNDS, ITERATIONS = 100, 1000


def _expected(benchmark) -> int:
    # disabled: one plain call; enabled: every round's loop, plus one extra call
    # pytest-benchmark makes after looped rounds to return a result
    return 1 if benchmark.disabled else ROUNDS * ITERATIONS + 1


@pytest.mark.benchmark(group="store.record")
def test_store_record_success(benchmark) -> None:
    store = StatsStore(edges=bucket_edges())
    benchmark.pedantic(store.record, args=("/api/products/{sku}", "GET", 0.0421, 200), rounds=ROUNDS, iterations=ITERATIONS)
    (totals,) = store.series_totals()
    assert totals.count == _expected(benchmark) and totals.failures == 0


@pytest.mark.benchmark(group="store.record")
def test_store_record_failure(benchmark) -> None:
    store = StatsStore(edges=bucket_edges())
    benchmark.pedantic(store.record, args=("/api/orders", "POST", 1.7, 503, "http_5xx"), rounds=ROUNDS, iterations=ITERATIONS)
    (totals,) = store.series_totals()
    assert totals.count == totals.failures == totals.errors["http_5xx"] == _expected(benchmark)


def test_full_listener_cost(request, tmp_path: Path) -> None:
    """The Locust listener, benchmarked in a child process (locust gevent-patches whoever imports it)."""
    enabled = not (request.config.getoption("benchmark_disable") and not request.config.getoption("benchmark_enable"))
    out = tmp_path / "listener.json"
    cmd = [
        sys.executable, "-m", "pytest", str(Path(__file__).with_name("bench_listener_locust.py")),
        "-q", "-p", "no:cacheprovider", "-o", "addopts=",
        "--benchmark-enable" if enabled else "--benchmark-disable", f"--benchmark-json={out}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout
    if not enabled:
        return
    benches = {b["name"]: b["stats"] for b in json.loads(out.read_text())["benchmarks"]}
    assert set(benches) == {"test_fire_locust_stats_only", "test_fire_locust_stats_and_peakload", "test_peakload_listener_alone"}
    per_call = {name: s["median"] * 1e6 for name, s in benches.items()}  # pytest-benchmark stats are per iteration: µs per request
    print("\nper-request cost (median, µs):")
    for name, us in per_call.items():
        print(f"  {name:40s} {us:7.3f}")
    extra = per_call["test_fire_locust_stats_and_peakload"] - per_call["test_fire_locust_stats_only"]
    print(f"  {'peakload added to events.request.fire':40s} {extra:7.3f}")
