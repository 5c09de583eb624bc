"""Run the `peakload` command as a user does (a child process in the repo's root), for the tests that need the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["REPO", "only_dir", "peakload"]

REPO = Path(__file__).resolve().parents[1]


def peakload(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`python -m peakload ARGS` from the repo's root; ``env`` adds to (never replaces) this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", "peakload", *args],
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def only_dir(results: Path) -> Path:
    """The one run folder a run wrote below ``results``."""
    (d,) = [p for p in results.iterdir() if p.is_dir()]
    return d
