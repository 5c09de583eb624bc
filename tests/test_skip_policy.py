"""The CI skip policy fails an unlisted skip, lets a listed one pass and prints it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _pytest(tmp_path: Path, *, ci: bool, allow: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n"
        "def test_needs_a_package():\n    pytest.skip('promtool not installed')\n\n"
        "@pytest.mark.xfail(reason='known', strict=True)\ndef test_known_bug():\n    assert False\n\n"
        "def test_runs():\n    assert 1 + 1 == 2\n"
    )
    allowlist = tmp_path / "allow.txt"
    allowlist.write_text(allow)
    env = {**os.environ, "PEAKLOAD_SKIP_ALLOWLIST": str(allowlist), "PYTHONPATH": str(REPO), "CI": "true" if ci else ""}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.skip_policy",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            str(tmp_path / "test_sample.py"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )


def test_an_unlisted_skip_fails_in_ci(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, ci=True, allow="")
    assert proc.returncode == 1, proc.stdout
    assert "1 failed, 1 passed, 1 xfailed" in proc.stdout
    assert "not on the skip allowlist" in proc.stdout and "promtool not installed" in proc.stdout


def test_a_listed_skip_passes_and_is_printed(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, ci=True, allow="*test_needs_a_package  # the sample's package is optional\n")
    assert proc.returncode == 0, proc.stdout
    assert "allowlisted skips" in proc.stdout and "the sample's package is optional" in proc.stdout


def test_outside_ci_a_skip_is_only_a_skip(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, ci=False, allow="")
    assert proc.returncode == 0 and "1 skipped" in proc.stdout, proc.stdout


def test_an_allowlist_line_without_a_reason_is_refused(tmp_path: Path) -> None:
    proc = _pytest(tmp_path, ci=True, allow="*test_needs_a_package\n")
    assert proc.returncode != 0 and "needs a '# reason'" in proc.stdout + proc.stderr
