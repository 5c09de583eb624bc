"""`peakload capacity` against the embedded storefront finds the knee and the report shows the steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.openmodel.harness import ROOT

pytestmark = pytest.mark.load  # real Locust loads on loopback

PROFILE = Path(__file__).parent / "profiles" / "capacity-short.yaml"


def test_capacity_finds_the_knee_of_the_embedded_storefront(tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "peakload", "capacity", "--profile", str(PROFILE), "--results", str(results), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    summary = json.loads((run_dir / "summary.json").read_text())
    cap = summary["capacity"]
    steps = cap["steps"]
    # the rate went up step by step until one broke; the one before it is the answer
    assert [s["rate"] for s in steps] == [10 * 2**k for k in range(len(steps))]
    knee = steps[-1]
    assert knee["passed"] is False and cap["knee_rate"] == knee["rate"] and cap["knee_step"] == len(steps)
    assert len(steps) >= 2 and all(s["passed"] for s in steps[:-1])
    assert cap["highest_sustainable_rate"] == steps[-2]["rate"] < cap["knee_rate"]
    assert cap["first_failing_threshold"] in ("dropped arrivals", "all: p95 < 250ms") or cap["first_failing_threshold"].startswith(
        ("GET", "POST", "PUT", "DELETE")
    )
    assert cap["latency_basis"] == "intended-start" == summary["latency_basis"]
    # each step's journeys were scheduled at its rate (4 s each)
    assert all(s["scheduled"] == int(s["rate"] * 4) for s in steps[:-1])
    # what the user sees: the verdict line, one row per step, and markers in the report
    assert f"highest sustainable rate {cap['highest_sustainable_rate']:g} journeys/s" in proc.stdout
    assert "KNEE" in proc.stdout and f"first failing threshold: {cap['first_failing_threshold']}" in proc.stdout
    html = (run_dir / "report.html").read_text()
    for s in steps:
        assert f"step {s['step']}: {s['rate']:g}/s" in html
    assert json.loads((run_dir / "capacity.json").read_text()) == cap
    assert 'id="capacity"' in html and summary["status"] == "passed" and summary["reason"] == cap["verdict"]
    # the knee's SIGTERM stops Locust gracefully: the snapshot stream has its end line
    assert summary["complete"] is True and not summary["problems"]


def test_capacity_needs_a_capacity_section(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "peakload", "capacity", "--profile", "profiles/smoke.yaml", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "no capacity section" in proc.stderr and not any(tmp_path.iterdir())
