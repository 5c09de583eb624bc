"""A throwaway PostgreSQL 15 cluster for tests (no mocks: the real server on loopback).

Usage from any conftest::

    from tests.pgserver import pg_cluster, pg_url  # noqa: F401  (pytest fixtures)

    def test_x(pg_url):  # a fresh, empty database on a session-wide cluster
        ...

``pg_cluster`` (session scope) runs ``initdb`` + ``pg_ctl`` as the ``postgres``
OS user when the tests run as root (PostgreSQL refuses to run as root), in a
temp dir, listening on 127.0.0.1 with a free port and trust auth; it is
stopped and deleted on teardown. Tests are skipped (with the reason) only
when the PostgreSQL binaries are not installed.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from peakload.core.net import free_port as _free_port

__all__ = ["PG_BIN", "PgCluster", "pg_binaries_missing", "start_cluster", "pg_cluster", "pg_url"]

PG_BIN = Path(os.environ.get("PEAKLOAD_PG_BIN", "/usr/lib/postgresql/15/bin"))
_TOOLS = ("initdb", "pg_ctl", "createdb", "dropdb", "pg_isready")


def pg_binaries_missing() -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    missing = [t for t in _TOOLS if not (PG_BIN / t).is_file()]
    if missing:
        return f"PostgreSQL 15 binaries not found in {PG_BIN} (missing {', '.join(missing)}); apt-get install postgresql-15"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root but there is no 'postgres' OS user to run the server as"
    return None


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], *, what: str, timeout: float = 120) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[-800:]}")


@dataclasses.dataclass
class PgCluster:
    """A running cluster; ``url(db)`` gives a ``postgresql://`` URL for a database in it."""

    root: Path
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def _client(self, tool: str, *args: str) -> list[str]:
        return [str(PG_BIN / tool), "-h", self.host, "-p", str(self.port), "-U", self.user, *args]

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database; returns its name."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        _run(self._client("createdb", name), what=f"createdb {name}")
        return name

    def drop_database(self, name: str) -> None:
        _run(self._client("dropdb", "--if-exists", "--force", name), what=f"dropdb {name}")

    def is_ready(self) -> bool:
        return subprocess.run(self._client("pg_isready", "-q", "-t", "1"), capture_output=True).returncode == 0

    def stop(self) -> None:
        if self.datadir.exists():
            subprocess.run(
                _as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(*, settings: dict[str, str] | None = None, ready_timeout: float = 60.0) -> PgCluster:
    """initdb + pg_ctl start in a fresh temp dir; polls until it accepts connections.

    Usage: ``cluster = start_cluster(); ...; cluster.stop()``
    """
    reason = pg_binaries_missing()
    if reason:
        raise RuntimeError(reason)
    # Under /tmp (world-traversable), not pytest's 0700 root-owned tmp dirs.
    root = Path(tempfile.mkdtemp(prefix="peakload-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    os.chmod(root, 0o700)
    datadir = root / "data"
    try:
        _run(
            _as_server_user(
                [str(PG_BIN / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]
            ),
            what="initdb",
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(root),
            # A test cluster: durability is not under test here, speed is welcome.
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
            **(settings or {}),
        }
        last_error: Exception | None = None
        for _attempt in range(3):  # the free port may be taken between probe and bind
            port = _free_port()
            opts = " ".join(f"-c {k}={v}" for k, v in options.items()) + f" -p {port}"
            try:
                _run(
                    _as_server_user(
                        [
                            str(PG_BIN / "pg_ctl"),
                            "-D",
                            str(datadir),
                            "-l",
                            str(root / "server.log"),
                            "-o",
                            opts,
                            "-w",
                            "-t",
                            str(int(ready_timeout)),
                            "start",
                        ]
                    ),
                    what="pg_ctl start",
                )
            except RuntimeError as exc:
                last_error = exc
                continue
            cluster = PgCluster(root=root, port=port)
            deadline = time.monotonic() + ready_timeout
            while not cluster.is_ready():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL on port {port} not ready after {ready_timeout}s")
                time.sleep(0.05)
            return cluster
        log = (root / "server.log").read_text(errors="replace")[-800:] if (root / "server.log").exists() else ""
        raise RuntimeError(f"could not start PostgreSQL: {last_error}\n{log}")
    except BaseException:
        subprocess.run(_as_server_user([str(PG_BIN / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
        raise


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A PostgreSQL 15 cluster shared by the session (skipped only when PostgreSQL is not installed)."""
    reason = pg_binaries_missing()
    if reason:
        pytest.skip(reason)
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture()
def pg_url(pg_cluster: PgCluster) -> Iterator[str]:
    """``postgresql://postgres@127.0.0.1:PORT/<fresh db>``, dropped after the test."""
    name = pg_cluster.create_database()
    try:
        yield pg_cluster.url(name)
    finally:
        pg_cluster.drop_database(name)
