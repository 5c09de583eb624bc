"""`peakload run` end to end against the embedded storefront (real Locust on loopback)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import PROFILES, REPO

pytestmark = pytest.mark.load

JOURNEY_STEPS = [
    "GET /api/home",
    "GET /api/categories/{category_id}/products",
    "GET /api/search",
    "GET /api/products/{sku}",
    "PUT /api/cart/items/{sku}",
    "GET /api/cart",
    "POST /api/orders",
    "POST /api/orders/{order_id}/payment",
    "POST /api/sessions",
]


def test_smoke_run_covers_every_journey_step_and_reconciles(peakload) -> None:
    run = peakload("run", "--profile", "profiles/smoke.yaml")
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    (d,) = run.dirs
    assert f"results: {d}/" in run.proc.stdout
    s = run.summary
    for step in JOURNEY_STEPS:
        assert s["requests"].get(step, {}).get("requests", 0) > 0, f"no {step} requests"
    assert s["total"]["error_ratio"] < 0.01
    rec = s["reconciliation"]
    assert rec["oversold_units"] == 0 and rec["duplicate_orders"] == 0 and rec["duplicate_charges"] == 0
    assert rec["orders_created"] == s["business"]["orders"] > 0  # the suite's count = the shop's count for this run
    assert s["complete"] and s["git_revision"] and s["started"].endswith("Z")
    for name in ("junit.xml", "summary.md", "report.html", "locust_stats.csv", "profile.yaml"):
        assert (d / name).exists(), name


def test_gate_fails_on_injected_latency_and_names_the_route(peakload) -> None:
    run = peakload("run", "--profile", str(PROFILES / "gate-strict.yaml"))
    assert run.proc.returncode == 1, run.proc.stdout + run.proc.stderr
    (d,) = run.dirs
    junit = (d / "junit.xml").read_text()
    assert 'classname="GET /api/products/{sku}"' in junit and "<failure" in junit
    failed = [t for t in run.summary["thresholds"] if t["passed"] is False]
    assert [t["scope"] for t in failed] == ["GET /api/products/{sku}"]
    assert failed[0]["observed"] >= 0.2  # the injected 200 ms is visible in p95


def test_gate_passes_with_lenient_limit(peakload) -> None:
    run = peakload("run", "--profile", str(PROFILES / "gate-lenient.yaml"))
    assert run.proc.returncode == 0, run.proc.stdout + run.proc.stderr
    assert all(t["passed"] for t in run.summary["thresholds"])


def test_abort_threshold_stops_the_run_early_with_reason(peakload) -> None:
    run = peakload("run", "--profile", str(PROFILES / "gate-abort.yaml"))
    assert run.proc.returncode == 1, run.proc.stdout + run.proc.stderr
    s = run.summary
    assert s["status"] == "failed" and "aborted" in s["reason"] and "p95 < 100ms" in s["reason"]
    assert s["duration_s"] < 30  # the profile asks for 60 s


@pytest.mark.parametrize(
    "content, expected",
    [
        (
            "version: peakload/v1\nname: x\nshape: {stages: [{kind: steady, duration: 5q, users: 1}]}\n",
            "shape.stages[0].duration: expected a duration like '30s'",
        ),
        ("version: peakload/v1\nname: x\nshape: {stages: [{kind: steady, duration: 5s, users: 1}]\n", "invalid YAML"),
        ("version: peakload/v2\nname: x\n", "version: expected 'peakload/v1'"),
        (
            "version: peakload/v1\nname: x\nshape: {stages: [{kind: steady, duration: 5s, users: 1}]}\nthresholds: {all: ['p95 < 3']}\n",
            "thresholds: ['all'][0]: latency threshold 'p95 < 3' needs a unit",
        ),
    ],
)
def test_bad_profile_is_one_line_exit_2_and_writes_nothing(peakload, tmp_path: Path, content: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    run = peakload("run", "--profile", str(bad))
    assert run.proc.returncode == 2
    err = run.proc.stderr.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and expected in err, err
    assert "Traceback" not in run.proc.stderr and run.dirs == []


def test_non_loopback_target_is_refused(peakload) -> None:
    run = peakload("run", "--target", "http://shop.example.com")
    assert run.proc.returncode == 2 and "refusing to load 'shop.example.com'" in run.proc.stderr
    assert run.dirs == []


def test_unreachable_target_fails_fast_with_exit_3(peakload) -> None:
    run = peakload("run", "--target", "http://127.0.0.1:9")
    assert run.proc.returncode == 3 and "target unreachable" in run.proc.stderr
    assert run.dirs == []


def test_sigkill_midway_leaves_a_reportable_results_folder(tmp_path: Path) -> None:
    results = tmp_path / "results"
    proc = subprocess.Popen(
        [sys.executable, "-m", "peakload", "run", "--profile", str(PROFILES / "long.yaml"), "--results", str(results), "--quiet"],
        cwd=REPO,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    snap = None
    while time.monotonic() < deadline:  # wait for 3 completed intervals
        found = list(results.glob("*/snapshots.jsonl"))
        if found and sum(1 for line in found[0].read_text().splitlines() if '"seq"' in line) >= 3:
            snap = found[0]
            break
        time.sleep(0.2)
    assert snap is not None, "no snapshots appeared"
    os.killpg(proc.pid, signal.SIGKILL)  # the whole run dies at once, as on a crash or a cancelled CI job
    proc.wait()
    completed = sum(1 for line in snap.read_text().splitlines() if '"seq"' in line)
    rep = subprocess.run(
        [sys.executable, "-m", "peakload", "report", str(snap.parent)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert rep.returncode == 0, rep.stderr
    s = json.loads((snap.parent / "summary.json").read_text())
    assert s["intervals"] >= completed >= 3 and s["complete"] is False
    assert s["status"] == "invalid" and "cut short" in s["reason"]
    assert "cut short" in (snap.parent / "report.html").read_text()
