"""The `peakload platform|chaos|drill` commands as a user runs them (real platform, real load)."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from chaos.platform.procs import processes_under
from tests.command import peakload

pytestmark = pytest.mark.platform
REPO = Path(__file__).resolve().parents[2]


def test_chaos_validate_every_bundled_experiment() -> None:
    res = peakload("chaos", "validate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("ok ") == 5


def test_chaos_run_without_a_platform_is_a_usage_error(tmp_path: Path) -> None:
    res = peakload("chaos", "run", "replica-kill", "--state-dir", str(tmp_path / "none"))
    assert res.returncode == 2 and "run `peakload platform up` first" in res.stderr


def test_replica_kill_under_profile_load_annotates_the_run_report(tmp_path: Path) -> None:
    from tests.chaos.conftest import missing_packages

    if missing := missing_packages():
        pytest.skip(f"Debian packages not installed: {' '.join(missing)}")
    state = Path(tempfile.mkdtemp(prefix="peakload-chaos-cli-", dir="/tmp"))
    os.chmod(state, 0o755)
    try:
        up = peakload("platform", "up", "--state-dir", str(state))
        assert up.returncode == 0, up.stdout + up.stderr
        res = peakload(
            "chaos",
            "run",
            "replica-kill",
            "--profile",
            str(REPO / "tests/chaos/profiles/short-load.yaml"),
            "--state-dir",
            str(state),
            "--results",
            str(tmp_path),
        )
        assert res.returncode == 0, res.stdout + res.stderr
        assert "experiment replica-kill: PASSED" in res.stdout and re.search(r"RTO \d", res.stdout)
        (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["status"] == "passed" and summary["total"]["requests"] > 100
        assert any(e.get("kind") == "chaos" for e in summary["events"])
        assert 'class="annotation"' in (run_dir / "report.html").read_text()
        assert summary["reconciliation"]["oversold_units"] == 0
        status = peakload("platform", "status", "--state-dir", str(state))
        assert status.returncode == 0 and "platform healthy" in status.stdout, status.stdout
    finally:
        down = peakload("platform", "down", "--state-dir", str(state))
        shutil.rmtree(state, ignore_errors=True)
    assert down.returncode == 0
    assert processes_under(state) == []


def test_drill_backup_command_passes_and_prints_rpo_rto(tmp_path: Path) -> None:
    from tests.chaos.conftest import missing_packages

    if missing := missing_packages():
        pytest.skip(f"Debian packages not installed: {' '.join(missing)}")
    state = Path(tempfile.mkdtemp(prefix="peakload-drill-cli-", dir="/tmp"))
    os.chmod(state, 0o755)
    try:
        res = peakload("drill", "backup", "--state-dir", str(state), "--results", str(tmp_path / "drill"))
        assert res.returncode == 0, res.stdout + res.stderr
        assert "RPO" in res.stdout and "RTO" in res.stdout
        assert processes_under(state) == []
    finally:
        shutil.rmtree(state, ignore_errors=True)
