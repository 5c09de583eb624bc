"""PostgreSQL 15 nodes run as the ``postgres`` OS user: initdb, standby, promote, rewind.

Usage::

    node = PgNode(name="pg0", data_dir=state / "pg/pg0", port=5501, socket_dir=state / "pg/run", log=state / "pg/pg0.log")
    init_primary(node, app_user="shop", app_password="...", app_db="shop")
    start(node)
    make_standby(node1, source=node)

Administration goes over the unix socket in ``socket_dir`` as ``postgres``
with peer authentication; applications connect over TCP on 127.0.0.1 with a
scram password. Node-specific settings (the port) live in
``peakload-node.conf`` inside the data dir and are rewritten after every
copy (``pg_basebackup``/``pg_rewind`` copy the source's files).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from chaos.platform.procs import as_postgres, pid_alive, run, stop_pid

__all__ = [
    "PG_BIN",
    "PgNode",
    "chown_postgres",
    "init_primary",
    "start",
    "stop",
    "kill",
    "is_running",
    "postmaster_pid",
    "psql",
    "in_recovery",
    "wait_ready",
    "make_standby",
    "promote",
    "rewind_as_standby",
    "write_node_conf",
]

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class PgNode:
    """One PostgreSQL instance: its data dir, port, socket dir and log file."""

    name: str
    data_dir: Path
    port: int
    socket_dir: Path
    log: Path

    def conninfo(self, dbname: str = "postgres") -> str:
        """libpq conninfo for admin access over the unix socket (peer auth as postgres)."""
        return f"host={self.socket_dir} port={self.port} user=postgres dbname={dbname}"


def chown_postgres(path: Path) -> None:
    """Make ``path`` (recursively) owned by the postgres user, when we are root."""
    if os.geteuid() != 0:
        return
    shutil.chown(path, "postgres", "postgres")
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            with contextlib.suppress(FileNotFoundError):
                shutil.chown(os.path.join(root, n), "postgres", "postgres")


def _ensure_dirs(node: PgNode) -> None:
    for d in (node.socket_dir, node.log.parent):
        d.mkdir(parents=True, exist_ok=True)
        chown_postgres(d)


def write_node_conf(node: PgNode) -> None:
    """(Re)write the node-specific settings after initdb or a copy from another node."""
    conf = node.data_dir / "peakload-node.conf"
    conf.write_text(f"# written by chaos.platform for node {node.name}\nport = {node.port}\ncluster_name = '{node.name}'\n")
    chown_postgres(conf)


def _base_conf(node: PgNode, extra: dict[str, str]) -> str:
    settings = {
        "listen_addresses": "'127.0.0.1'",
        "unix_socket_directories": f"'{node.socket_dir}'",
        "max_connections": "100",
        "shared_buffers": "64MB",
        "wal_level": "replica",
        "max_wal_senders": "10",
        "max_replication_slots": "10",
        "wal_log_hints": "on",  # pg_rewind needs it (checksums are on too)
        "hot_standby": "on",
        "wal_keep_size": "256MB",
        "logging_collector": "off",
        "log_line_prefix": "'%m [%p] %q%u@%d '",
        "fsync": "on",
        "synchronous_commit": "on",
    }
    settings.update(extra)
    lines = [f"{k} = {v}" for k, v in settings.items()]
    return "\n# ---- peakload chaos platform\n" + "\n".join(lines) + "\ninclude 'peakload-node.conf'\n"


def init_primary(
    node: PgNode, *, app_user: str, app_password: str, app_db: str, settings: dict[str, str] | None = None, wal_segsize_mb: int = 16
) -> None:
    """initdb (checksums on), configure, start, and create the application role and database."""
    _ensure_dirs(node)
    node.data_dir.parent.mkdir(parents=True, exist_ok=True)
    chown_postgres(node.data_dir.parent)
    run(
        as_postgres(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(node.data_dir),
                "-U",
                "postgres",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--data-checksums",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                f"--wal-segsize={wal_segsize_mb}",
            ]
        ),
        timeout=120,
    )
    with open(node.data_dir / "postgresql.conf", "a") as f:
        f.write(_base_conf(node, settings or {}))
    (node.data_dir / "pg_hba.conf").write_text(
        "# written by chaos.platform\n"
        "local   all          postgres                 peer\n"
        "local   replication  postgres                 peer\n"
        "host    all          all        127.0.0.1/32  scram-sha-256\n"
    )
    write_node_conf(node)
    chown_postgres(node.data_dir)
    start(node)
    pw = app_password.replace("'", "''")
    psql(node, f"CREATE ROLE {app_user} LOGIN PASSWORD '{pw}'")
    psql(node, f"CREATE DATABASE {app_db} OWNER {app_user}")


def postmaster_pid(node: PgNode) -> int | None:
    """The postmaster pid from ``postmaster.pid``, or None."""
    try:
        return int((node.data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (FileNotFoundError, ValueError, IndexError, PermissionError):
        return None


def _clear_stale_locks(node: PgNode) -> None:
    """Remove lock files left by a killed postmaster.

    PostgreSQL tests its lock files with ``kill(pid, 0)``, which succeeds for a
    zombie; where init reaps orphans slowly a killed postmaster lingers as one.
    """
    if is_running(node):
        return
    for lock in (node.data_dir / "postmaster.pid", node.socket_dir / f".s.PGSQL.{node.port}.lock"):
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


def is_running(node: PgNode) -> bool:
    """True when the node's postmaster is alive."""
    return pid_alive(postmaster_pid(node))


def start(node: PgNode, *, timeout: float = 60.0) -> None:
    """Start the node (no-op when it runs) and wait until it accepts connections."""
    _ensure_dirs(node)
    if not is_running(node):
        _clear_stale_locks(node)
        run(
            as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(node.data_dir), "-l", str(node.log), "-w", "-t", str(int(timeout)), "start"]),
            timeout=timeout + 10,
        )
    wait_ready(node, timeout=timeout)


def wait_ready(node: PgNode, *, timeout: float = 30.0) -> None:
    """Poll ``pg_isready`` on the socket until the node accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = run(
            as_postgres([str(PG_BIN / "pg_isready"), "-h", str(node.socket_dir), "-p", str(node.port), "-U", "postgres"]),
            check=False,
            timeout=10,
        )
        if proc.returncode == 0:
            return
        time.sleep(0.1)
    raise TimeoutError(f"PostgreSQL {node.name} (port {node.port}) not ready within {timeout:.0f}s; see {node.log}")


def stop(node: PgNode, *, mode: str = "fast", timeout: float = 30.0) -> None:
    """Stop the node with ``pg_ctl stop -m mode``; kill it if that does not work."""
    if not is_running(node):
        return
    proc = run(
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(node.data_dir), "-m", mode, "-w", "-t", str(int(timeout)), "stop"]),
        check=False,
        timeout=timeout + 10,
    )
    if proc.returncode != 0 and is_running(node):
        kill(node)


def kill(node: PgNode) -> int | None:
    """SIGKILL the postmaster (a crash); its backends exit on their own. Returns the killed pid."""
    pid = postmaster_pid(node)
    if pid and pid_alive(pid):
        stop_pid(pid, sig=signal.SIGKILL, timeout=10)
        # Backends notice the dead postmaster within a moment; wait for them so ports are free.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _backends(node):
            time.sleep(0.05)
    return pid


def _backends(node: PgNode) -> bool:
    import psutil

    target = str(node.data_dir)
    for proc in psutil.process_iter(["name", "cwd"]):
        if proc.info.get("cwd") == target and proc.info.get("name", "").startswith("postgres"):
            return True
    return False


def psql(node: PgNode, sql: str, *, dbname: str = "postgres", check: bool = True, timeout: float = 30.0) -> str:
    """Run ``sql`` through psql on the socket as postgres; return unaligned tuples-only output."""
    proc = run(
        as_postgres(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-h",
                str(node.socket_dir),
                "-p",
                str(node.port),
                "-U",
                "postgres",
                "-d",
                dbname,
                "-c",
                sql,
            ]
        ),
        check=check,
        timeout=timeout,
    )
    return proc.stdout.strip()


def in_recovery(node: PgNode) -> bool | None:
    """True for a standby, False for a primary, None when the node does not answer."""
    if not is_running(node):
        return None
    try:
        out = psql(node, "SELECT pg_is_in_recovery()", timeout=5)
    except (RuntimeError, OSError, TimeoutError):
        return None
    return out == "t"


def make_standby(node: PgNode, *, source: PgNode, timeout: float = 120.0) -> None:
    """Fresh ``pg_basebackup -R`` of ``source`` into ``node``'s (emptied) data dir, then start it as a standby."""
    _ensure_dirs(node)
    if node.data_dir.exists():
        shutil.rmtree(node.data_dir)
    node.data_dir.parent.mkdir(parents=True, exist_ok=True)
    chown_postgres(node.data_dir.parent)
    run(
        as_postgres(
            [
                str(PG_BIN / "pg_basebackup"),
                "-D",
                str(node.data_dir),
                "-h",
                str(source.socket_dir),
                "-p",
                str(source.port),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ]
        ),
        timeout=timeout,
    )
    write_node_conf(node)
    _set_primary_conninfo(node, source)
    start(node)


def _set_primary_conninfo(node: PgNode, source: PgNode) -> None:
    auto = node.data_dir / "postgresql.auto.conf"
    lines = [ln for ln in auto.read_text().splitlines() if not ln.startswith(("primary_conninfo", "restore_command"))]
    lines.append(f"primary_conninfo = '{source.conninfo()} application_name={node.name}'")
    lines.append("recovery_target_timeline = 'latest'")
    auto.write_text("\n".join(lines) + "\n")
    (node.data_dir / "standby.signal").touch()
    chown_postgres(node.data_dir)


def promote(node: PgNode, *, timeout: float = 30.0) -> None:
    """Promote a standby to primary and wait until it accepts writes."""
    run(as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(node.data_dir), "-w", "-t", str(int(timeout)), "promote"]), timeout=timeout + 10)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if in_recovery(node) is False:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{node.name} still in recovery {timeout:.0f}s after promote")


def rewind_as_standby(node: PgNode, *, source: PgNode, timeout: float = 120.0) -> str:
    """Bring a failed old primary back as a standby of ``source``: pg_rewind, or a fresh basebackup if that fails.

    Returns ``"pg_rewind"`` or ``"basebackup"`` (how it was rebuilt).
    """
    if is_running(node):
        stop(node, mode="fast")
    method = "pg_rewind"
    _clear_stale_locks(node)
    # A just-promoted primary still shows the old timeline in its control file
    # until it checkpoints; pg_rewind would then say "no rewind required".
    psql(source, "CHECKPOINT")
    if node.data_dir.exists():
        proc = run(
            as_postgres(
                [str(PG_BIN / "pg_rewind"), "--target-pgdata", str(node.data_dir), "--source-server", source.conninfo(), "--no-sync"]
            ),
            check=False,
            timeout=timeout,
        )
        ok = proc.returncode == 0
        if not ok:
            node.log.parent.mkdir(parents=True, exist_ok=True)
            with open(node.log, "a") as f:
                f.write(f"pg_rewind failed, falling back to pg_basebackup:\n{proc.stderr}\n")
    else:
        ok = False
    if not ok:
        make_standby(node, source=source, timeout=timeout)
        return "basebackup"
    write_node_conf(node)
    _set_primary_conninfo(node, source)
    start(node)
    return method
