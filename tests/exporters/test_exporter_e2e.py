"""End to end: real Locust (master + 2 worker processes, a local runner, a SIGTERM) → /metrics and snapshots.

The server counts what it answered; the generator's final /metrics and the
sum of the snapshot intervals must equal those counts exactly, per request
name and error type, which only holds if every worker delta reaches the
master once and is added (not averaged, not double-counted), and the last
partial interval is flushed. ``--stop-timeout`` lets in-flight requests finish,
as ``peakload run`` should (a killed request is counted by the server only).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporters.histogram import decode_hdr
from peakload.core.net import free_port as _free_port
from peakload.core.records import read_snapshots, split_snapshots
from peakload.core.snapshots import SNAPSHOT_FILE

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).with_name("locustfile_counting.py")
PRODUCT = "/api/products/{sku}"
STEP_OF = {PRODUCT: "product", "/api/bad-body": "search", "/api/missing": "", "/api/boom": ""}  # as locustfile_counting.py tags them


def _samples(text: str, metric: str) -> list[tuple[dict[str, str], float]]:
    out = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric:
                out.append((sample.labels, sample.value))
    return out


def _scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            return resp.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


@pytest.mark.load
@pytest.mark.parametrize(("mode", "workers"), [("master+2 workers", 2), ("local", 1)])
def test_generator_metrics_and_snapshots_equal_server_counts(mode: str, workers: int, counting_server, tmp_path: Path) -> None:
    metrics_port, master_port = _free_port(), _free_port()
    while master_port == metrics_port:
        master_port = _free_port()
    dump = tmp_path / "final-metrics.txt"
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PEAKLOAD_PROFILE": str(REPO / "profiles" / "smoke.yaml"),
        "PEAKLOAD_RUN_ID": "e2e-run-0001",
        "PEAKLOAD_METRICS_PORT": str(metrics_port),
        "PEAKLOAD_RESULTS_DIR": str(tmp_path),
        "PEAKLOAD_SNAPSHOT_INTERVAL": "1",
        "PEAKLOAD_TEST_METRICS_DUMP": str(dump),
    }
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
        # a private master port: Locust's default 5557 would let other runs' workers join this master
        *(["--processes", "2", "--master-bind-port", str(master_port), "--master-port", str(master_port)] if workers > 1 else []),
        "-u", "4", "-r", "4", "--run-time", "6s", "--stop-timeout", "3", "--exit-code-on-error", "0",
        "--only-summary", "--host", f"http://127.0.0.1:{counting_server.port}",
    ]  # fmt: skip
    log = tmp_path / "locust.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            # While the load runs, the master's /metrics answers and grows.
            live_count = 0.0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and proc.poll() is None:
                text = _scrape(metrics_port)
                if text:
                    live_count = sum(v for _, v in _samples(text, "peakload_requests_total"))
                    if live_count > 0:
                        assert _samples(text, "peakload_run_info") == [({"run_id": "e2e-run-0001", "profile": "smoke"}, 1.0)]
                        break
                time.sleep(0.2)  # poll interval, not synchronisation
            assert live_count > 0, f"master /metrics never showed requests while running; log:\n{log.read_text()[-3000:]}"
            rc = proc.wait(timeout=40)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log.read_text()
    assert rc == 0, output[-3000:]
    assert "Traceback" not in output and "Uncaught exception" not in output, output[-3000:]

    server = counting_server.snapshot()
    assert server[PRODUCT] > 0 and server["/api/missing"] > 0 and server["/api/boom"] > 0

    # 1. the master's final /metrics == what the server answered, exactly
    final = dump.read_text()
    by_name: dict[str, float] = {}
    for labels, value in _samples(final, "peakload_requests_total"):
        by_name[labels["name"]] = by_name.get(labels["name"], 0) + value
    assert by_name == {k: float(v) for k, v in server.items()}
    failures = {(lab["name"], lab["error_type"]): v for lab, v in _samples(final, "peakload_request_failures_total") if v}
    assert failures == {
        ("/api/missing", "http_4xx"): server["/api/missing"],
        ("/api/boom", "http_5xx"): server["/api/boom"],
        ("/api/bad-body", "body_check"): server["/api/bad-body"],
    }
    assert _samples(final, "peakload_product_views_total") == [({}, float(server[PRODUCT]))]
    hist_count = {lab["name"]: v for lab, v in _samples(final, "peakload_request_duration_seconds_count")}
    assert hist_count == {k: float(v) for k, v in server.items()}
    # the journey step rode along from the request context: one step per name here, "" without one
    steps = {(lab["name"], lab["step"]) for lab, _ in _samples(final, "peakload_request_duration_seconds_count")}
    assert steps == set(STEP_OF.items())
    assert output.count("is not a journey step") == workers  # said once per process that saw it

    # 2. the snapshot stream adds up to the same numbers
    lines, problems = read_snapshots(tmp_path / SNAPSHOT_FILE)
    assert problems == []
    header, intervals, end = split_snapshots(lines)
    assert header is not None and header["run_id"] == "e2e-run-0001" and header["role"] == ("master" if workers > 1 else "local")
    assert 0.3 in header["bucket_edges"] and 2.0 in header["bucket_edges"]
    assert end is not None and end["reason"] == "completed" and end["merge_errors"] == 0
    assert len(intervals) >= 3
    assert max(i["workers"] for i in intervals) == workers
    assert max(i["users"] for i in intervals) == 4
    snap_counts: dict[str, int] = {}
    hdr_totals: dict[str, int] = {}
    for interval in intervals:
        for row in interval["requests"]:
            assert row.get("step", "") == STEP_OF[row["name"]] and row.get("step") != ""  # no step: no key
            snap_counts[row["name"]] = snap_counts.get(row["name"], 0) + row["count"]
            hdr_totals[row["name"]] = hdr_totals.get(row["name"], 0) + decode_hdr(row["hdr"]).get_total_count()
            assert sum(row["buckets"]) == row["count"]
    assert snap_counts == server
    assert hdr_totals == server
    assert sum(i["business"]["product_views"] for i in intervals) == server[PRODUCT]


@pytest.mark.load
def test_interrupted_run_keeps_every_request_and_says_so(counting_server, tmp_path: Path) -> None:
    """SIGTERM mid-run (what CI or Ctrl-C does): the snapshot stream still adds up and ends 'interrupted'."""
    metrics_port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PEAKLOAD_PROFILE": str(REPO / "profiles" / "smoke.yaml"),
        "PEAKLOAD_RUN_ID": "e2e-run-0002",
        "PEAKLOAD_METRICS_PORT": str(metrics_port),
        "PEAKLOAD_RESULTS_DIR": str(tmp_path),
        "PEAKLOAD_SNAPSHOT_INTERVAL": "1",
    }
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "4", "-r", "4",
        "--run-time", "60s", "--stop-timeout", "3", "--exit-code-on-error", "0", "--only-summary",
        "--host", f"http://127.0.0.1:{counting_server.port}",
    ]  # fmt: skip
    log = tmp_path / "locust.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            seen = 0.0
            while time.monotonic() < deadline and proc.poll() is None and seen < 200:
                text = _scrape(metrics_port)
                seen = sum(v for _, v in _samples(text, "peakload_requests_total")) if text else 0.0
                time.sleep(0.2)  # poll interval, not synchronisation
            assert seen >= 200, f"load never got going; log:\n{log.read_text()[-3000:]}"
            proc.terminate()
            rc = proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc == 0, log.read_text()[-3000:]
    server = counting_server.snapshot()
    lines, problems = read_snapshots(tmp_path / SNAPSHOT_FILE)
    assert problems == []
    _, intervals, end = split_snapshots(lines)
    assert end is not None and end["reason"] == "interrupted"
    counted: dict[str, int] = {}
    for interval in intervals:
        for row in interval["requests"]:
            counted[row["name"]] = counted.get(row["name"], 0) + row["count"]
    assert counted == server
