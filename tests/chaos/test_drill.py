"""The 3-2-1 backup drill end to end, and the corruption drill that must fail; media counted by device."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path

import pytest

from chaos.drill import COPIES_CHECK, run_backup_drill, run_corruption_drill
from chaos.media import Copy, is_this_host, local_copy, media_count, policy_321, s3_copy
from chaos.platform.procs import processes_under


@pytest.mark.platform
def test_backup_drill_restores_from_offsite_alone_and_reports_rpo_rto(state_dir: Path, tmp_path: Path) -> None:
    report = run_backup_drill(state_dir, results_dir=tmp_path)
    print(report.summary())  # RPO/RTO for whoever reads the test log
    assert report.passed, report.summary()
    names = [c.name for c in report.checks]
    assert names[0] == COPIES_CHECK
    # Media are devices: the count is the number of distinct st_dev values the drill found, and on this
    # machine every copy (live data, repo1, the s3rver data dir) sits under the state dir, on its device.
    media = report.facts["media"]
    devices = {c["device"] for c in media["copies"]}
    assert [c["name"] for c in media["copies"]] == ["live", "repo1", "repo2"]
    assert media["media"] == len(devices) == 1 and devices == {os.stat(state_dir).st_dev}
    repo2 = media["copies"][2]
    assert repo2["simulated_offsite"] and not repo2["offsite"] and repo2["where"].startswith("127.0.0.1:")
    assert report.policy is not None and not report.policy.passed  # never claims a satisfied 3-2-1 policy here
    assert report.policy.detail.startswith("not met here: ")
    assert "media 1 (devices: " in report.policy.detail and "off-site: simulated (repo2: 127.0.0.1:" in report.policy.detail
    assert "3 media" not in report.summary() and "3-2-1 policy NOT MET here" in report.summary().splitlines()[0]
    assert json.loads(json.dumps(report.to_dict()))["policy_met"] is False
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
    # The same findings with the policy required (`--require-321`) fail on exactly that verdict.
    strict = dataclasses.replace(report, require_policy=True)
    assert not strict.passed and strict.exit_code == 1 and all(c.passed for c in strict.checks)
    assert strict.summary().startswith("drill backup-3-2-1: FAILED (restore test); 3-2-1 policy NOT MET here (required)")


@pytest.mark.platform
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


def _copy(name: str, device: int | None, *, host: str = "this host", simulated: bool = False) -> Copy:
    return Copy(
        name=name, kind="s3" if name == "repo2" else "posix", where=f"/{name}", device=device, host=host, simulated_offsite=simulated
    )


def test_policy_counts_media_by_device_and_offsite_by_host() -> None:
    met = policy_321([_copy("live", 1), _copy("repo1", 2), _copy("repo2", None, host="s3.example.net")])
    assert met.passed and met.detail.startswith("met: copies 3 (live, repo1, repo2), media 3")
    # same three copies, but repo1 on the live data's disk and repo2 an S3 server on this host
    one_disk = policy_321([_copy("live", 7), _copy("repo1", 7), _copy("repo2", 7, simulated=True)])
    assert not one_disk.passed
    assert one_disk.detail.startswith(
        "not met here: 1 medium, need 2 (every copy on this host is on device 0x7); "
        "no off-site copy (repo2: S3 on this host, a simulated off-site copy)"
    )
    assert "copies 3 (live, repo1, repo2), media 1 (devices: 0x7), off-site: simulated" in one_disk.detail
    two_disks_no_offsite = policy_321([_copy("live", 1), _copy("repo1", 2), _copy("repo2", 2, simulated=True)])
    assert not two_disks_no_offsite.passed and "media 2" in two_disks_no_offsite.detail
    only_two = policy_321([_copy("live", 1), _copy("repo2", None, host="s3.example.net")])
    assert not only_two.passed and "2 copies, need 3" in only_two.detail


def test_media_are_real_devices_of_real_directories() -> None:
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir="/tmp") as a, tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else "/tmp") as b:
        same = [local_copy("live", a, kind="live"), local_copy("repo1", Path(a) / "not-yet" / "repo1")]
        assert media_count(same) == 1 == len({os.stat(a).st_dev})  # a missing repo dir counts where it will be
        apart = [local_copy("live", a, kind="live"), local_copy("repo1", b)]
        assert media_count(apart) == len({os.stat(a).st_dev, os.stat(b).st_dev})
        loop = s3_copy("repo2", endpoint="127.0.0.1", port=9443, data_dir=a)
        assert loop.simulated_offsite and not loop.offsite and loop.device == os.stat(a).st_dev
    assert is_this_host("127.0.0.1") and is_this_host("localhost")
    assert not is_this_host("192.0.2.1")  # TEST-NET-1: documentation only, never an address of this host
    remote = s3_copy("repo2", endpoint="192.0.2.1", port=443)
    assert remote.offsite and remote.device is None


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
