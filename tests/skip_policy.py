"""In CI (``CI=true``) a skipped test is a failure, unless the skip allowlist names it.

A missing Debian package must never hide coverage: the tests that need
PostgreSQL, promtool or Chromium skip on a developer's laptop without them,
but CI installs everything, so a skip there means a lost check. Allowed skips
are listed, one per line with the reason, in ``tests/skip-allowlist.txt``
(``fnmatch`` patterns of test node ids); every allowed skip is printed at the
end of the run so it stays visible.

Registered by ``tests/conftest.py``; ``PEAKLOAD_SKIP_ALLOWLIST`` points at
another list (the policy's own test uses that).
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

import pytest

__all__ = ["allowlist", "in_ci"]

DEFAULT_ALLOWLIST = Path(__file__).with_name("skip-allowlist.txt")
_allowed_skips: list[str] = []


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def allowlist() -> list[tuple[str, str]]:
    """(pattern, reason) pairs; a line without a ``# reason`` is refused (a skip must say why it is fine)."""
    path = Path(os.environ.get("PEAKLOAD_SKIP_ALLOWLIST") or DEFAULT_ALLOWLIST)
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if path.exists() else ():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, _, reason = line.partition("#")
        if not reason.strip():
            raise pytest.UsageError(f"{path} line {lineno}: an allowed skip needs a '# reason'")
        out.append((pattern.strip(), reason.strip()))
    return out


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201 - pytest hook
    outcome = yield
    rep = outcome.get_result()
    if not rep.skipped or hasattr(rep, "wasxfail"):
        return
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    allowed = next((why for pattern, why in allowlist() if fnmatch.fnmatchcase(item.nodeid, pattern)), None)
    if allowed is not None:
        _allowed_skips.append(f"{item.nodeid}: {reason} (allowed: {allowed})")
    elif in_ci():
        rep.outcome = "failed"
        rep.longrepr = (
            f"skipped in CI and not on the skip allowlist ({DEFAULT_ALLOWLIST.name}): {reason}\n"
            "CI installs every package the tests use, so this skip hides a check; fix the install "
            "or add the test to the allowlist with the reason."
        )


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest hook
    if _allowed_skips:
        terminalreporter.section("allowlisted skips")
        for line in _allowed_skips:
            terminalreporter.line(line)
    elif in_ci():
        terminalreporter.line("skip policy (CI=true): no test skipped")
