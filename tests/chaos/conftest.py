"""Shared fixtures for the chaos tests: a state dir the postgres user can reach, and prerequisites."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

NEEDED = {
    "/usr/lib/postgresql/15/bin/initdb": "postgresql-15",
    "/usr/sbin/haproxy": "haproxy",
    "/usr/bin/redis-server": "redis-server",
    "/usr/bin/pgbackrest": "pgbackrest",
    "/usr/bin/prometheus": "prometheus",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "platform: starts real PostgreSQL/HAProxy/Redis/Prometheus processes (slow)")


def missing_packages() -> list[str]:
    missing = {pkg for path, pkg in NEEDED.items() if not os.path.exists(path)}
    try:
        from chaos.backup import s3rver_path

        s3rver_path()
    except FileNotFoundError:
        missing.add("s3rver (npm, `make s3rver`)")
    return sorted(missing)


@pytest.fixture()
def state_dir() -> Iterator[Path]:
    """A fresh state dir under /tmp that the postgres OS user can traverse (pytest's tmp_path is 0700)."""
    if missing := missing_packages():
        pytest.skip(f"Debian packages not installed: {' '.join(missing)}")
    d = Path(tempfile.mkdtemp(prefix="peakload-chaos-test-", dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        from chaos.platform import down

        try:
            down(d)
        finally:
            shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def platform_dir() -> Iterator[Path]:
    """One running platform (3 replicas) shared by a module's experiment tests; down and deleted after."""
    if missing := missing_packages():
        pytest.skip(f"Debian packages not installed: {' '.join(missing)}")
    from chaos.platform import down, format_status, up

    d = Path(tempfile.mkdtemp(prefix="peakload-chaos-exp-", dir="/tmp"))
    os.chmod(d, 0o755)
    try:
        health = up(d, replicas=3)
        assert all(c.healthy for c in health), format_status(health)
        yield d
    finally:
        try:
            down(d)
        finally:
            shutil.rmtree(d, ignore_errors=True)
