"""The bad-input contract, as one assertion: exit 2, one stderr line naming the input, no traceback, nothing written."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from peakload.cli import main

VALID_PROFILE = """\
version: peakload/v1
name: probe
slo: null
shape:
  stages:
    - {kind: steady, duration: 1s, users: 1}
thresholds:
  all: [error_ratio < 1%]
"""


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


def _tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")} if folder.exists() else set()


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Outcome]:
    """Call `peakload` in-process from an empty working folder; an exception escaping main() fails the test."""
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)

    def call(*args: str | os.PathLike[str]) -> Outcome:
        capsys.readouterr()
        try:
            code = main([os.fspath(a) for a in args])
        except SystemExit as exc:  # argparse's own exit (usage errors), as the console script would exit
            code = exc.code if isinstance(exc.code, int) else 2
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return call


def assert_refused(outcome: Outcome, *, names: str, watched: list[Path]) -> None:
    """The contract for every bad input (README: exit codes)."""
    assert outcome.code == 2, (outcome.code, outcome.out, outcome.err)
    assert len(outcome.err_lines) == 1, outcome.err
    assert "Traceback" not in outcome.err + outcome.out
    assert names in outcome.err, (names, outcome.err)
    for folder in watched:
        assert _tree(folder) == set(), f"{folder} got {sorted(_tree(folder))}"


tree = _tree
