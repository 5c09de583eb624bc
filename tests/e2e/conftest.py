from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROFILES = Path(__file__).parent / "profiles"


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, results: Path) -> None:
        self.proc = proc
        self.results = results

    @property
    def dirs(self) -> list[Path]:
        return sorted(p for p in self.results.iterdir() if p.is_dir()) if self.results.exists() else []

    @property
    def summary(self) -> dict:
        (d,) = self.dirs
        return json.loads((d / "summary.json").read_text())


@pytest.fixture
def peakload(tmp_path: Path):
    """Run the real `peakload` CLI (a child process, as a user would)."""

    def _run(*args: str, timeout: float = 240) -> Run:
        results = tmp_path / "results"
        cmd = [sys.executable, "-m", "peakload", *args]
        if args and args[0] == "run" and "--results" not in args:
            cmd += ["--results", str(results), "--quiet"]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
        return Run(proc, results)

    return _run
