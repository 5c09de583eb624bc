"""The 3-2-1 backup drill end to end, and the corruption drill that must fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaos.drill import policy_321, run_backup_drill, run_corruption_drill
from chaos.platform.procs import processes_under

pytestmark = pytest.mark.platform


def test_backup_drill_restores_from_offsite_alone_and_reports_rpo_rto(state_dir: Path, tmp_path: Path) -> None:
    report = run_backup_drill(state_dir, results_dir=tmp_path)
    print(report.summary())  # RPO/RTO for whoever reads the test log
    assert report.passed, report.summary()
    names = [c.name for c in report.checks]
    assert names[0] == "3-2-1 policy before the disaster"
    assert "manifest at the restore point" in names and "pgbackrest verify --repo=2" in names
    assert report.rto_seconds is not None and report.rto_seconds > 0
    assert report.rpo is not None and report.rpo["acked"] > 0
    assert report.rpo["lost"] <= report.rpo["acked"]
    assert "WAL checked 0 " not in report.facts["verify_repo2"]
    # the disaster really removed the live data dir and repo1 before the restore
    assert any("media-posix/repo1" in p for p in report.facts["disaster"]["deleted"])
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["name"] for e in events][:1] == ["drill-start"]
    assert {"disaster", "serving", "drill-end"} <= {e["name"] for e in events}
    assert all(set(e) == {"t", "kind", "name", "detail"} for e in events)
    assert processes_under(state_dir) == []
    assert json.loads(json.dumps(report.to_dict()))["passed"] is True


def test_corruption_drill_fails_because_verify_catches_the_corrupted_file(state_dir: Path) -> None:
    report = run_corruption_drill(state_dir, repo=1)
    print(report.summary())
    assert report.error is None, report.error
    assert not report.passed and report.exit_code == 1
    by_name = {c.name: c for c in report.checks}
    assert by_name["baseline verify of repo1"].passed
    integrity = by_name["repo1 integrity (pgbackrest verify)"]
    assert not integrity.passed and "checksum invalid 1" in integrity.detail
    assert report.facts["corruption_detected"] is True
    assert not by_name["restore from repo1"].passed  # the corrupted backup cannot be restored either
    assert processes_under(state_dir) == []


def test_policy_refuses_without_an_offsite_copy() -> None:
    full = {"type": "full", "error": False, "label": "x"}
    assert policy_321({1: [full], 2: [full]}, {1: "posix", 2: "s3"}).passed
    only_local = policy_321({1: [full], 2: []}, {1: "posix", 2: "s3"})
    assert not only_local.passed and "0 off-site" in only_local.detail
    broken_offsite = policy_321({1: [full], 2: [{**full, "error": True}]}, {1: "posix", 2: "s3"})
    assert not broken_offsite.passed


# Real `pgbackrest verify --output=text --verbose` output (2.45) from this machine.
_S3_BEFORE_HISTORY = """stanza: peakload
status: ok
  archiveId: none found
  backup: 20261126-030437F, status: valid, total files checked: 1266, total valid files: 1266
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
"""
_CORRUPTED = """stanza: peakload
status: error
  archiveId: 15-1, total WAL checked: 20, total valid WAL: 20
    missing: 0, checksum invalid: 0, size invalid: 0, other: 0
  backup: 20261126-030430F, status: invalid, total files checked: 1266, total valid files: 1265
    missing: 0, checksum invalid: 1, size invalid: 0, other: 0
"""


def test_verify_parsing_does_not_trust_an_ok_without_wal() -> None:
    from chaos.backup import _parse_verify

    quirk = _parse_verify(2, 0, _S3_BEFORE_HISTORY)
    assert quirk.status == "ok" and quirk.wal_checked == 0 and not quirk.ok  # s3rver listing quirk: no WAL checked
    bad = _parse_verify(1, 1, _CORRUPTED)
    assert not bad.ok and bad.backups == {"20261126-030430F": "invalid"}
    assert "backup 20261126-030430F: checksum invalid 1" in bad.problems
    assert bad.wal_checked == 20 and bad.files_valid == 1265
