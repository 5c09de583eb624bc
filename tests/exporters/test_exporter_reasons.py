"""Failure reasons: real clients' messages, bounded per series, merged across worker deltas, refused when malformed."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from exporters.classify import failure_message
from exporters.stats import MAX_REASONS, StatsStore
from peakload.core.records import OTHER_MESSAGES, interval_from, read_snapshots, split_snapshots
from peakload.core.snapshots import SnapshotWriter

REPO = Path(__file__).resolve().parents[2]
EDGES = (0.1, 0.5, 2.0)


def _wire(delta: dict) -> dict:
    return json.loads(json.dumps(delta, allow_nan=False))


def _fail(store: StatsStore, message: str, n: int = 1, *, name: str = "/api/orders") -> None:
    for _ in range(n):
        store.record(name, "POST", 0.2, 503, "http_5xx", reason=message)


def _row(delta: dict, name: str = "/api/orders") -> dict:
    return next(r for r in delta["requests"] if r["name"] == name)


def test_real_clients_report_why_their_requests_failed() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PEAKLOAD_PROFILE": str(REPO / "profiles" / "smoke.yaml")}
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("reasons_script.py"))],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    for client, rows in seen.items():
        assert rows["ok"] == {"failures": 0, "reasons": None}, client  # a clean series carries no reasons key
        assert rows["body"] == {"failures": 3, "reasons": {"orderId missing in the answer": 3}}, client
        assert rows["refused"] == {"failures": 3, "reasons": {"ConnectionRefusedError: [Errno 111] Connection refused": 3}}, client
        ((boom, n),) = rows["boom"]["reasons"].items()  # three identical 503s are one message counted 3 times
        assert n == 3 and "503" in boom, (client, boom)


def test_failure_messages_lose_addresses_and_stay_short() -> None:
    first, second = (failure_message(TypeError(f"cannot use {object()!r}")) for _ in range(2))
    assert first == second == "TypeError: cannot use <object object at 0x....>"  # one error, one message
    assert failure_message("plain\t text \n from a client") == "plain text from a client"
    assert failure_message(ValueError()) == "ValueError"
    long = failure_message(RuntimeError("x" * 100_000))
    assert len(long) == 200 and long.startswith("RuntimeError: xxx")
    assert failure_message("\x1b[31mred\x00") == "[31mred"  # control characters dropped: the reports are XML and HTML


def test_reasons_are_bounded_per_series_and_interval() -> None:
    store = StatsStore(edges=EDGES)
    store.record("/api/orders", "POST", 0.1, 201)
    for i in range(MAX_REASONS + 5):
        _fail(store, f"HTTP 503 from replica {i}", n=2)
    _fail(store, "HTTP 503 from replica 0")  # a message already kept goes on counting under its own name
    row = _row(store.drain_delta())
    assert row["failures"] == 2 * (MAX_REASONS + 5) + 1 == sum(row["reasons"].values())
    assert len(row["reasons"]) == MAX_REASONS + 1
    assert row["reasons"]["HTTP 503 from replica 0"] == 3 and row["reasons"][OTHER_MESSAGES] == 10
    # the next interval starts with a fresh table: later messages get a slot of their own
    _fail(store, "HTTP 503 from replica 24")
    assert _row(store.drain_delta())["reasons"] == {"HTTP 503 from replica 24": 1}
    store.record("/api/orders", "POST", 0.1, 201)
    assert "reasons" not in _row(store.drain_delta())  # nothing failed: the row has no reasons key


def test_worker_reasons_merge_on_the_master_with_the_same_bound(tmp_path: Path) -> None:
    w1, w2, master = (StatsStore(edges=EDGES) for _ in range(3))
    _fail(w1, "orderId missing", n=4)
    _fail(w2, "orderId missing", n=2)
    _fail(w2, "ConnectionRefusedError: [Errno 111] Connection refused")
    master.merge_delta(_wire(w1.drain_delta()))
    master.merge_delta(_wire(w2.drain_delta()))
    assert _row(master.drain_delta())["reasons"] == {"orderId missing": 6, "ConnectionRefusedError: [Errno 111] Connection refused": 1}
    # two workers with 15 distinct messages each: the master keeps 20, counts the rest, loses none
    for w, tag in ((w1, "a"), (w2, "b")):
        for i in range(15):
            _fail(w, f"{tag}{i}")
        master.merge_delta(_wire(w.drain_delta()))
    # a worker whose push failed merges its own delta back (WorkerBridge); an "(other messages)" count stays one
    for i in range(MAX_REASONS + 3):
        _fail(w1, f"c{i}")
    w1.merge_delta(_wire(w1.drain_delta()))
    master.merge_delta(_wire(w1.drain_delta()))
    writer = SnapshotWriter(tmp_path / "snapshots.jsonl", header={"run_id": "r"})
    writer.write_interval(master.drain_delta(), t_start=0.0, t_end=2.0, users=1, workers=2, target_rate=None, cpu_warning=False)
    writer.close(reason="completed")
    # the snapshot stream carries them, and the one reader reads them back
    lines, problems = read_snapshots(tmp_path / "snapshots.jsonl")
    _, intervals, _ = split_snapshots(lines)
    row = interval_from(intervals[0]).requests[0]
    assert problems == []
    assert row["failures"] == 30 + MAX_REASONS + 3 == sum(row["reasons"].values())
    assert len(row["reasons"]) == MAX_REASONS + 1
    assert row["reasons"][OTHER_MESSAGES] == 30 + MAX_REASONS + 3 - MAX_REASONS


@pytest.mark.parametrize(
    ("reasons", "why"),
    [
        (["orderId missing"], "expected an object"),
        ({"orderId missing": -1}, "non-negative whole number"),
        ({"orderId missing": True}, "non-negative whole number"),
        ({"orderId missing": 1.5}, "non-negative whole number"),
        ({"orderId missing": 2, "timeout": 2}, "more than the row's 3"),
        ({"x" * 201: 1}, "at most 200 characters"),
        ({7: 1}, "expected text messages"),  # msgpack (Locust's wire format) allows non-string keys
    ],
)
def test_a_delta_with_bad_reasons_is_refused_whole(reasons: object, why: str) -> None:
    worker, master = StatsStore(edges=EDGES), StatsStore(edges=EDGES)
    _fail(worker, "orderId missing", n=3)
    worker.record("/api/home", "GET", 0.05, 200)
    delta = copy.deepcopy(_wire(worker.drain_delta()))
    _row(delta)["reasons"] = reasons
    with pytest.raises(ValueError, match="reasons") as err:
        master.merge_delta(delta)
    assert why in str(err.value) and "POST /api/orders" in str(err.value)
    assert master.drain_delta()["requests"] == []  # nothing merged, not even the good row
