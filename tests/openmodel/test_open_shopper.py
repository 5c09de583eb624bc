"""Shopper visits as an open workload against the embedded storefront: one visit per arrival, nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.openmodel.harness import ROOT

pytestmark = pytest.mark.load  # real Locust loads on loopback

PROFILE = Path(__file__).parent / "profiles" / "open-shopper.yaml"


def test_every_arrival_is_exactly_one_visit_and_nothing_runs_outside_the_schedule(tmp_path):
    results = tmp_path / "results"
    proc = subprocess.run(
        [sys.executable, "-m", "peakload", "run", "--profile", str(PROFILE), "--results", str(results), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    (run_dir,) = [p for p in results.iterdir() if p.is_dir()]
    s = json.loads((run_dir / "summary.json").read_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert s["arrivals"] == {"dropped": 0, "scheduled": 50}
    # every visit opens the first screen once: no closed-model loop runs beside the arrivals
    assert s["requests"]["GET /api/home"]["requests"] == 50
    # each pool user signs in once, on its first visit (never more sign-ins than visits or than users)
    assert s["requests"]["POST /api/sessions"]["requests"] <= 50
    assert s["latency_basis"] == "intended-start"
    assert s["reconciliation"]["consistent"] is True and s["business"]["product_views"] > 0
    # the first request of each visit carries its service time beside the intended-start latency
    services = sum(
        1
        for line in (run_dir / "snapshots.jsonl").read_text().splitlines()
        for row in (json.loads(line).get("requests") or [])
        if row.get("service_hdr")
    )
    assert services > 0
