"""The floors are enforced: import-linter keeps the contracts in pyproject.toml and breaks on a planted upward import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("peakload", "scenarios", "exporters", "reports", "dashboards", "chaos", "storefront")
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=tree, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layers")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__", "generated"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_real_tree_keeps_every_contract(tree: Path) -> None:
    proc = _lint(tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("reports/planted.py", "from peakload.app import runner\n", "floors"),  # a room climbing to the orchestration
        ("peakload/core/planted.py", "import reports.gate\n", "floors"),  # the floor reaching into a room
        ("dashboards/planted.py", "from reports import gate\n", "floors"),  # two rooms of one floor
        ("storefront/planted.py", "from peakload.core import errors\n", "storefront"),  # the shop must stay apart
        ("reports/planted2.py", "import locust\n", "locust"),  # gevent's monkey patch in a room
    ],
)
def test_a_planted_import_breaks_its_contract(tree: Path, module: str, line: str, contract: str) -> None:
    planted = tree / module
    planted.write_text(line)
    try:
        proc = _lint(tree)
    finally:
        planted.unlink()
    assert proc.returncode == 1, proc.stdout
    broken = [ln for ln in proc.stdout.splitlines() if ln.rstrip().endswith("BROKEN")]
    assert len(broken) == 1 and contract in broken[0], proc.stdout
