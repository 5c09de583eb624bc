"""`peakload merge` without a load: shard folders written by the real stats store and snapshot writer.

Three shards start at different instants inside one wall-clock slot and write partial first and last
intervals, as a master does; the merge must hold every request, every arrival and the exact HDR
percentiles of all samples, one line per slot, and refuse a shard written on other boundaries.
(tests/reports/test_merge.py does the same with real concurrent `peakload run` shards.)
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from hdrh.histogram import HdrHistogram

from exporters.histogram import DEFAULT_BUCKETS
from exporters.stats import StatsStore
from peakload.core.records import RunMeta
from peakload.core.snapshots import SnapshotWriter
from reports.build import write_reports
from reports.merge import merge_results

INTERVAL = 2.0


def _shard(
    folder: Path, *, start: float, rng: random.Random, ref: HdrHistogram, phase: float = 0.0, stop: tuple[float, ...] = (0.4,)
) -> int:
    """Write one shard; returns how many of its requests failed."""
    folder.mkdir(parents=True)
    store = StatsStore(edges=DEFAULT_BUCKETS)
    header = {"run_id": folder.name, "interval_s": INTERVAL, "bucket_edges": list(DEFAULT_BUCKETS), "latency_basis": "intended-start"}
    writer = SnapshotWriter(folder / "snapshots.jsonl", header=header)
    first = int(start / INTERVAL) * INTERVAL + phase
    failed = 0
    bounds = [start] + [first + k * INTERVAL for k in range(1, 6)] + [first + 5 * INTERVAL + t for t in stop]
    for a, b in zip(bounds, bounds[1:], strict=False):
        for _ in range(50):
            v = rng.expovariate(20)
            store.record("/", "GET", v, 200 if v < 0.2 else 503, None if v < 0.2 else "http_5xx")
            ref.record_value(int(v * 1e6 + 0.5))
            failed += v >= 0.2
        store.add_arrivals(scheduled=50, dropped=1)
        store.add_business("orders", 2)
        writer.write_interval(store.drain_delta(), t_start=a, t_end=b, users=5, workers=1, target_rate=25.0, cpu_warning=False)
    writer.close(reason="completed")
    meta = RunMeta(run_id=folder.name, profile="p", started_ts=start, ended_ts=bounds[-1], launched_by="locust")
    (folder / "run.json").write_text(json.dumps(meta.to_json()))
    return failed


def test_every_sample_and_counter_is_merged_exactly(tmp_path: Path) -> None:
    rng, ref = random.Random(7), HdrHistogram(1, 3_600_000_000, 3)
    t0 = (int(time.time() / INTERVAL) - 20) * INTERVAL + 0.37
    folders = [tmp_path / f"s{i}" for i in range(3)]
    failed = sum(_shard(f, start=t0 + 0.3 * i, rng=rng, ref=ref) for i, f in enumerate(folders))
    result = merge_results(folders, out=tmp_path / "merged")
    assert result.problems == () and result.intervals == 6  # a partial first slot, four whole ones, a partial last one
    s = write_reports(tmp_path / "merged", []).summary
    assert s.total.requests == ref.get_total_count() == 900
    assert s.total.failures == s.requests["GET /"].failures == failed > 0
    assert s.arrivals == {"scheduled": 900, "dropped": 18} and s.business["orders"] == 36
    for p in (50, 95, 99):
        assert getattr(s.total, f"p{p}_ms") == ref.get_value_at_percentile(p) / 1000
    lines = [json.loads(x) for x in (tmp_path / "merged" / "snapshots.jsonl").read_text().splitlines()]
    assert [o["users"] for o in lines if "kind" not in o] == [15] * 6 and lines[-1]["reason"] == "completed"


def test_a_shard_on_other_boundaries_is_not_aligned(tmp_path: Path) -> None:
    rng, ref = random.Random(7), HdrHistogram(1, 3_600_000_000, 3)
    t0 = (int(time.time() / INTERVAL) - 20) * INTERVAL + 0.37
    _shard(tmp_path / "a", start=t0, rng=rng, ref=ref)
    _shard(tmp_path / "b", start=t0, rng=rng, ref=ref, phase=0.5)
    result = merge_results([tmp_path / "a", tmp_path / "b"], out=tmp_path / "merged")
    assert result.problems and all(p.startswith(f"shard {tmp_path / 'b'}: ") and "not aligned" in p for p in result.problems)
    assert write_reports(tmp_path / "merged", []).summary.decided_by == "run-invalid"


def _books(folder: Path, *, run_id: str, ended: float, orders: int) -> None:
    meta = json.loads((folder / "run.json").read_text())
    (folder / "run.json").write_text(json.dumps({**meta, "run_id": run_id, "ended_ts": ended, "target": "http://127.0.0.1:1"}))
    rec = {"run_id": run_id, "orders_created": orders, "orders_paid": orders, "oversold_units": 0, "consistent": True}
    (folder / "reconciliation.json").write_text(json.dumps(rec))


def test_the_books_are_one_read_never_a_sum(tmp_path: Path) -> None:
    rng, ref = random.Random(7), HdrHistogram(1, 3_600_000_000, 3)
    t0 = (int(time.time() / INTERVAL) - 20) * INTERVAL + 0.37
    folders = [tmp_path / f"s{i}" for i in range(3)]
    for i, f in enumerate(folders):
        _shard(f, start=t0, rng=rng, ref=ref)
    # one run id, one shop: the shard that ended last read the books after every shard had stopped
    for i, f in enumerate(folders):
        _books(f, run_id="fleet-1", ended=t0 + 20 - i, orders=10 + i)
    merge_results(folders, out=tmp_path / "one")
    rec = write_reports(tmp_path / "one", []).summary.reconciliation
    assert rec is not None and rec["orders_created"] == 10 and rec["read_by"] == f"shard {folders[0]}"
    # three run ids: each shard's books are its own: n/a for the fleet
    for i, f in enumerate(folders):
        _books(f, run_id=f"run-{i}", ended=t0 + 20, orders=10)
    merge_results(folders, out=tmp_path / "three")
    rec = write_reports(tmp_path / "three", []).summary.reconciliation
    assert rec is not None and rec["error"].startswith("n/a for the fleet: the shards ran under 3 run ids")


def test_the_lines_written_as_a_shard_stops_may_cross_a_boundary(tmp_path: Path) -> None:
    """A master writes its last lines at test_stop and after its workers' last reports: the final one can end past a boundary."""
    rng, ref = random.Random(7), HdrHistogram(1, 3_600_000_000, 3)
    t0 = (int(time.time() / INTERVAL) - 20) * INTERVAL + 0.37
    _shard(tmp_path / "a", start=t0, rng=rng, ref=ref)
    _shard(tmp_path / "b", start=t0, rng=rng, ref=ref, stop=(0.3, INTERVAL + 0.2))  # [5I+0.3, 6I+0.2] crosses 6I
    result = merge_results([tmp_path / "a", tmp_path / "b"], out=tmp_path / "merged")
    assert result.problems == ()
    assert write_reports(tmp_path / "merged", []).summary.total.requests == ref.get_total_count() == 650
