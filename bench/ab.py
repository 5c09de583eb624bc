"""Shared by the A/B benches: an earlier git revision checked out beside this tree, and the alternating round order.

Usage::

    with baseline_worktree("bf1a7ff") as base:
        for r, name, tree in alternate(rounds, current=REPO, baseline=base): ...
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

__all__ = ["baseline_worktree", "alternate"]


@contextmanager
def baseline_worktree(revision: str) -> Iterator[Path]:
    """A detached git worktree of ``revision`` in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="peakload-ab-") as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(base), revision], check=True, capture_output=True)
        try:
            yield base
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(base)], check=False, capture_output=True)


def alternate(rounds: int, *, current: Path, baseline: Path) -> Iterator[tuple[int, str, Path]]:
    """(round, name, tree) with the launch order swapped every round, so drift on the machine hits both alike."""
    order = [("current", current), ("baseline", baseline)]
    for r in range(rounds):
        for name, tree in order if r % 2 == 0 else order[::-1]:
            yield r, name, tree
