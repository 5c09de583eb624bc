"""Chaos Toolkit experiments: every bundled file validates with `chaos validate`; replica kill end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.experiment import EXPERIMENTS_DIR, list_experiments, run_experiment

ROOT = Path(__file__).resolve().parents[2]
CHAOS = Path(sys.executable).parent / "chaos"
EXPECTED = {"replica-kill", "db-failover", "cache-loss", "network-db", "payment-provider"}


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(CHAOS), "--no-log-file", "validate", str(path)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_all_five_experiments_are_bundled() -> None:
    assert EXPECTED <= set(list_experiments())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_chaos_validate_accepts_experiment(name: str) -> None:
    proc = _validate(EXPERIMENTS_DIR / f"{name}.json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "experiment syntax and semantic look valid" in proc.stdout + proc.stderr


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_experiment_injects_a_fault_measures_it_and_always_heals(name: str) -> None:
    exp = json.loads((EXPERIMENTS_DIR / f"{name}.json").read_text())
    assert any(a["name"].startswith("inject-") for a in exp["method"] if a["type"] == "action")
    assert exp["steady-state-hypothesis"]["probes"], "a steady state to check before and after"
    assert exp["rollbacks"][-1]["provider"]["func"] == "ensure_platform_healthy"
    assert exp["controls"][0]["provider"]["module"] == "chaos.control"


def test_chaos_validate_rejects_an_unknown_action(tmp_path: Path) -> None:
    text = (EXPERIMENTS_DIR / "replica-kill.json").read_text().replace('"kill_storefront"', '"kill_storefrontX"')
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    proc = _validate(bad)
    assert proc.returncode != 0
    assert "kill_storefrontX" in proc.stdout + proc.stderr


def _events(results: Path) -> list[dict]:
    return [json.loads(line) for line in (results / "events.jsonl").read_text().splitlines()]


@pytest.mark.platform
def test_replica_kill_end_to_end(platform_dir: Path, tmp_path: Path) -> None:
    report = run_experiment("replica-kill", state_dir=platform_dir, results_dir=tmp_path)
    print(report.summary())
    assert report.passed, report.summary()
    assert report.steady_state_before and report.steady_state_after
    m = report.measurement
    assert m is not None and m["probe_requests"] > 100
    assert m["detected_by"].startswith("haproxy r1 UP->DOWN")  # HAProxy noticed the dead replica
    assert m["recovered"]
    assert m["rpo"]["lost"] == 0 and m["rpo"]["acked"] > 0
    names = [e["name"] for e in _events(tmp_path)]
    assert names[0] == "experiment-start" and names[-1] == "experiment-end"
    assert {"fault-start", "fault-end", "detection", "rollback-end"} <= set(names)
    assert all(e["kind"] == "chaos" and isinstance(e["t"], float) for e in _events(tmp_path))
    assert [r["status"] for r in report.rollbacks] == ["succeeded", "succeeded"]
    assert report.platform_healthy_after
    assert (tmp_path / "journal.json").exists() and (tmp_path / "probe.jsonl").exists()


@pytest.mark.platform
def test_db_failover_end_to_end(platform_dir: Path, tmp_path: Path) -> None:
    report = run_experiment("db-failover", state_dir=platform_dir, results_dir=tmp_path)
    print(report.summary())
    assert report.passed, report.summary()
    m = report.measurement
    assert m is not None and m["time_to_impact_s"] is not None  # losing the primary is felt ...
    assert m["recovered"] and m["rto_seconds"] is not None  # ... and the shop comes back on the promoted node
    assert m["rpo"] is not None and "lost" in m["rpo"]
    assert report.platform_healthy_after  # the old primary was rebuilt as a streaming standby
    # during the failover the shop answers "retry" (503 db_unavailable), never an internal error (500)
    probes = [json.loads(line) for line in (tmp_path / "probe.jsonl").read_text().splitlines() if line.strip()]
    assert probes and not [p for p in probes if p["status"] == 500]
