"""Bad input to `peakload chaos|drill|platform` and `python -m chaos`: exit 2, one stderr line naming the input,
no traceback, nothing written. No platform is started: every case is refused before anything runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from chaos.__main__ import main as chaos_main
from chaos.platform.layout import Layout, new_spec, save_spec
from peakload.cli import main as peakload_main

REPO = Path(__file__).resolve().parents[2]
PEAKLOAD = Path(sys.executable).parent / "peakload"

BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    # name: (how to make it, what the one line must say besides the file name)
    "missing.json": (lambda p: None, "no such file and no bundled experiment"),
    "empty.json": (lambda p: p.write_bytes(b""), "found an empty file"),
    "blank.json": (lambda p: p.write_bytes(b"  \n\t\n"), "found an empty file"),
    "binary.json": (lambda p: p.write_bytes(Path(shutil.which("true") or "/bin/true").read_bytes()[:4096]), "found binary data"),
    "latin1.json": (lambda p: p.write_bytes('{"title": "café"}'.encode("latin-1")), "expected UTF-8 text"),
    "corrupt.json": (lambda p: p.write_text('{"title": "x", "method": [\n'), "expected valid JSON"),
    "array.json": (lambda p: p.write_text("[1, 2]"), "found an array"),
    "string.json": (lambda p: p.write_text('"replica-kill"'), "found a string"),
    "corrupt.yaml": (lambda p: p.write_text("title: [unclosed\n"), "expected valid YAML"),
    "dir.json": (lambda p: p.mkdir(), "found a directory"),
    "notes.txt": (lambda p: p.write_text("{}"), "expected an experiment file ending in .json"),
}


def _call(main: Callable[[list[str]], int], argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse refuses a flag value before any command runs
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _one_clean_line(code: int, out: str, err: str, *names: str) -> None:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    for name in names:
        assert name in lines[0], (name, lines[0])


@pytest.fixture()
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, so "nothing written" is "still empty" (default results/ lands here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_chaos_validate_refuses_a_file_that_is_not_an_experiment(name: str, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, says = BAD_FILES[name]
    make(workdir / name)
    before = _tree(workdir)
    for main, argv in ((peakload_main, ["chaos", "validate", name]), (chaos_main, ["validate", name])):
        code, out, err = _call(main, argv, capsys)
        _one_clean_line(code, out, err, name, says)
    assert _tree(workdir) == before


def test_chaos_validate_still_fails_an_invalid_experiment_with_exit_1(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Readable JSON that Chaos Toolkit rejects is a verdict (FAIL, exit 1), not unreadable input (exit 2).
    (workdir / "untitled.json").write_text(json.dumps({"description": "d", "method": []}))
    code, out, err = _call(peakload_main, ["chaos", "validate", "untitled.json"], capsys)
    assert code == 1 and out.startswith("FAIL untitled.json: experiment requires a title") and err == ""


def test_chaos_run_refuses_an_unknown_experiment_before_any_load(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    profile = str(REPO / "tests/chaos/profiles/short-load.yaml")
    for main, argv in (
        (peakload_main, ["chaos", "run", "no-such-experiment", "--profile", profile, "--state-dir", "state", "--results", "res"]),
        (chaos_main, ["run", "no-such-experiment", "--state-dir", "state", "--results", "res"]),
    ):
        code, out, err = _call(main, argv, capsys)
        _one_clean_line(code, out, err, "'no-such-experiment'", "bundled: cache-loss, db-failover")
    assert _tree(workdir) == set()


def test_chaos_run_refuses_a_broken_experiment_file_before_any_load(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "broken.json").write_text("{")
    code, out, err = _call(
        peakload_main,
        ["chaos", "run", "broken.json", "--profile", str(REPO / "tests/chaos/profiles/short-load.yaml"), "--results", "res"],
        capsys,
    )
    _one_clean_line(code, out, err, "broken.json", "expected valid JSON")
    assert _tree(workdir) == {"broken.json"}


def test_chaos_run_without_a_platform_writes_nothing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "state").mkdir()
    code, out, err = _call(chaos_main, ["run", "replica-kill", "--state-dir", "state", "--results", "res"], capsys)
    _one_clean_line(code, out, err, "no serving platform in state", "platform up")
    assert _tree(workdir) == {"state"}


def test_chaos_run_on_a_stopped_platform_starts_no_load(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # What `platform up` then `platform down` leaves: the spec, nothing listening. The load must not start.
    save_spec(Layout(workdir / "state"), new_spec(replicas=3))
    before = _tree(workdir)
    code, out, err = _call(
        peakload_main,
        [
            "chaos",
            "run",
            "replica-kill",
            "--profile",
            str(REPO / "tests/chaos/profiles/short-load.yaml"),
            "--state-dir",
            "state",
            "--results",
            "res",
        ],
        capsys,
    )
    _one_clean_line(code, out, err, "no serving platform in state", "haproxy: 0/3 replicas UP")
    assert _tree(workdir) == before


def test_drill_corruption_refuses_an_unknown_repository(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _call(chaos_main, ["drill", "corruption", "--repo", "3", "--state-dir", "site"], capsys)
    _one_clean_line(code, out, err, "--repo", "expected 1 (posix) or 2 (s3), got 3")
    assert _tree(workdir) == set()


@pytest.mark.parametrize(
    "argv",
    [
        ["drill", "backup", "--state-dir", "afile"],
        ["drill", "corruption", "--state-dir", "afile"],
        ["drill", "backup", "--state-dir", "afile/below"],
        ["platform", "up", "--state-dir", "afile"],
        ["platform", "status", "--state-dir", "afile"],
        ["platform", "down", "--state-dir", "afile"],
    ],
)
def test_a_state_dir_that_is_a_file_is_refused(argv: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "afile").write_text("not a directory\n")
    # the peakload CLI (its flag parser refuses it) and the chaos room's own entry points (python -m chaos,
    # the cli_entry API) alike
    code, out, err = _call(peakload_main, argv, capsys)
    _one_clean_line(code, out, err, "--state-dir", "afile")
    code, out, err = _call(chaos_main, argv, capsys)
    _one_clean_line(code, out, err, "--state-dir", "afile", "expected a directory, found")
    assert _tree(workdir) == {"afile"} and (workdir / "afile").read_text() == "not a directory\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user (postgres)")
def test_a_state_dir_postgres_cannot_reach_is_refused_before_anything_runs(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # pytest's tmp_path is 0700 under root: PostgreSQL (running as postgres) could not use a site below it.
    for argv in (["drill", "backup", "--state-dir", "site"], ["platform", "up", "--state-dir", "site"]):
        code, out, err = _call(chaos_main, argv, capsys)
        _one_clean_line(code, out, err, "--state-dir", "not searchable by other users")
    assert _tree(workdir) == set()


def test_a_corrupt_platform_spec_is_named(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "state").mkdir()
    (workdir / "state" / "platform.json").write_text('{"replicas": 3, "ports": ')
    for argv in (["platform", "status", "--state-dir", "state"], ["platform", "down", "--state-dir", "state"]):
        code, out, err = _call(chaos_main, argv, capsys)
        _one_clean_line(code, out, err, "state/platform.json", "expected the platform spec")
    assert _tree(workdir) == {"state", "state/platform.json"}


def test_as_a_process_the_error_is_one_line_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "empty.json").write_bytes(b"")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for argv in (
        [str(PEAKLOAD), "chaos", "validate", "empty.json"],
        [sys.executable, "-m", "chaos", "drill", "backup", "--state-dir", "empty.json"],
    ):
        proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env, check=False)
        _one_clean_line(proc.returncode, proc.stdout, proc.stderr, "empty.json")
    assert _tree(tmp_path) == {"empty.json"}
