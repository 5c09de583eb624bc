"""Fixtures for the dashboards tests: repo paths, the SLO spec, golden-file comparison.

Golden files are compared byte for byte; regenerate them (and review the diff)
with ``PEAKLOAD_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/dashboards``.
"""

from __future__ import annotations

import difflib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from peakload.core import SLOSpec, load_slo_spec  # noqa: E402

UPDATE = os.environ.get("PEAKLOAD_UPDATE_GOLDEN") == "1"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def slo_spec() -> SLOSpec:
    return load_slo_spec(ROOT / "profiles" / "slo.yaml")


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (Debian: apt-get install --no-install-recommends prometheus; CI installs it)")
    return path


def check_golden(path: Path, actual: str) -> None:
    """Assert ``path`` holds exactly ``actual``; with PEAKLOAD_UPDATE_GOLDEN=1 rewrite it instead."""
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"golden file {path} missing; create it with PEAKLOAD_UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    if expected != actual:
        diff = "".join(
            list(
                difflib.unified_diff(
                    expected.splitlines(keepends=True),
                    actual.splitlines(keepends=True),
                    fromfile=f"{path} (committed)",
                    tofile="generated now",
                )
            )[:60]
        )
        pytest.fail(f"{path} differs from the generator output; if intended, rerun with PEAKLOAD_UPDATE_GOLDEN=1 and review:\n{diff}")


@pytest.fixture(scope="session")
def golden() -> Callable[[Path, str], None]:
    return check_golden
