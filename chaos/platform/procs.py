"""Start, find and stop the platform's processes by pidfile.

Usage::

    pid = spawn("redis", ["redis-server", "--port", "6400"], pid_dir=run, log=logs / "redis.log", cwd=state)
    stop_pid(pid)

Every process is started in its own session (so its process group id equals
its pid and helpers it forks go with it) with its working directory inside
the state dir. That makes :func:`processes_under` a reliable "is anything of
ours still running?" check: it looks for processes whose cwd or command line
points into the state dir.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from peakload.core.net import free_ports, http_get, http_request  # noqa: F401 - re-exported for the platform

__all__ = [
    "spawn",
    "read_pid",
    "pid_alive",
    "stop_pid",
    "stop_named",
    "pid_under",
    "free_ports",
    "port_open",
    "wait_port",
    "wait_http",
    "http_get",
    "http_post",
    "processes_under",
    "is_our_program",
    "run",
    "as_postgres",
]


def run(
    argv: Sequence[str], *, check: bool = True, timeout: float = 120.0, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a short command, capture its output; raise with stderr on failure when ``check``."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=dict(env) if env is not None else None, cwd=cwd)
    if check and proc.returncode != 0:
        out = proc.stderr.strip() or proc.stdout.strip()
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(argv)}\n{out}")
    return proc


def as_postgres(argv: Sequence[str]) -> list[str]:
    """Prefix a command so it runs as the ``postgres`` OS user (no-op when we already are that user)."""
    if os.geteuid() != 0:
        return list(argv)
    return ["runuser", "-u", "postgres", "--", *argv]


def spawn(name: str, argv: Sequence[str], *, pid_dir: Path, log: Path, cwd: Path, env: Mapping[str, str] | None = None) -> int:
    """Start ``argv`` detached (own session), output to ``log``; write ``pid_dir/name.pid``; return the pid."""
    pid_dir.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=full_env,
            start_new_session=True,
            close_fds=True,
        )
    (pid_dir / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc.pid


def read_pid(pid_dir: Path, name: str) -> int | None:
    """The pid recorded for ``name``, or None when there is no pidfile."""
    try:
        return int((pid_dir / f"{name}.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def pid_alive(pid: int | None) -> bool:
    """True when ``pid`` is a live (non-zombie) process."""
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _reap(pid: int) -> None:
    # Our own children would stay zombies until waited for.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def stop_pid(pid: int | None, *, sig: int = signal.SIGTERM, timeout: float = 10.0) -> bool:
    """Signal ``pid``'s process group (or the pid alone), escalate to SIGKILL after ``timeout``; True if it is gone."""
    if not pid or not pid_alive(pid):
        return True
    try:
        group = os.getpgid(pid) == pid
    except OSError:
        group = False
    kill = (lambda s: os.killpg(pid, s)) if group else (lambda s: os.kill(pid, s))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        kill(sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        kill(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def pid_under(pid: int | None, root: Path) -> bool:
    """True when ``pid`` is alive and belongs to ``root`` (cwd or command line inside it).

    Guards against a stale pidfile whose pid the kernel has since given to an unrelated process.
    """
    if not pid_alive(pid):
        return False
    root_s = str(Path(root).resolve())
    try:
        proc = psutil.Process(pid)
        cwd = proc.cwd()
        cmd = " ".join(proc.cmdline())
    except psutil.Error:
        return False
    return cwd == root_s or cwd.startswith(root_s + os.sep) or root_s in cmd


def stop_named(pid_dir: Path, name: str, *, timeout: float = 10.0) -> bool:
    """Stop the process recorded in ``pid_dir/name.pid`` (only if it still lives under the pid dir's parent,
    i.e. the state dir) and remove the pidfile."""
    pid = read_pid(pid_dir, name)
    ok = stop_pid(pid, timeout=timeout) if pid_under(pid, pid_dir.parent) else True
    if ok:
        with contextlib.suppress(FileNotFoundError):
            (pid_dir / f"{name}.pid").unlink()
    return ok


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(port: int, *, timeout: float = 20.0, pid: int | None = None, what: str = "") -> None:
    """Poll until ``port`` accepts connections; fail early when ``pid`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if pid is not None and not pid_alive(pid):
            raise RuntimeError(f"{what or 'process'} (pid {pid}) exited before listening on port {port}")
        time.sleep(0.05)
    raise TimeoutError(f"{what or 'process'} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def http_post(
    url: str, body: bytes = b"", *, timeout: float = 5.0, method: str = "POST", headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    """POST (or PUT with ``method``) ``body`` to ``url``; (status, body), status 0 on connection problems."""
    return http_request(url, body, method=method, timeout=timeout, headers=headers)


def wait_http(url: str, *, timeout: float = 20.0, pid: int | None = None, what: str = "", expect: int = 200) -> None:
    """Poll ``url`` until it answers ``expect``; fail early when ``pid`` died."""
    deadline = time.monotonic() + timeout
    last: tuple[int, bytes] = (0, b"")
    while time.monotonic() < deadline:
        last = http_get(url, timeout=1.0)
        if last[0] == expect:
            return
        if pid is not None and not pid_alive(pid):
            raise RuntimeError(f"{what or 'process'} (pid {pid}) exited before {url} answered")
        time.sleep(0.1)
    raise TimeoutError(f"{what or url} did not answer {expect} within {timeout:.0f}s (last: {last[0]} {last[1][:200]!r})")


# What the platform and drills start; only these are ever killed as leftovers.
OUR_PROGRAMS = (
    "postgres",
    "redis-server",
    "haproxy",
    "prometheus",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
    "node",
    "s3rver",
    "pgbackrest",
)
OUR_PYTHON_MODULES = ("storefront", "chaos.faultproxy")


def is_our_program(proc: psutil.Process) -> bool:
    """True for a process of a kind the platform starts (never a user's shell or editor)."""
    try:
        name = proc.name()
        cmd = proc.cmdline()
    except psutil.Error:
        return False
    if name in OUR_PROGRAMS or any(os.path.basename(c) in OUR_PROGRAMS for c in cmd[:1]):
        return True
    return name.startswith("python") and any(m in cmd for m in OUR_PYTHON_MODULES)


def processes_under(root: Path) -> list[psutil.Process]:
    """Live processes whose cwd or command line points into ``root`` (our platform's leftovers).

    Our own process and its ancestors (e.g. the shell that runs ``down`` from inside the state
    dir) are never listed.
    """
    root_s = str(root.resolve())
    found = []
    me = psutil.Process()
    skip = {me.pid, *(p.pid for p in me.parents())}
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
        if proc.info["pid"] in skip or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cwd = proc.info.get("cwd") or ""
        cmd = " ".join(proc.info.get("cmdline") or [])
        if cwd == root_s or cwd.startswith(root_s + os.sep) or root_s + os.sep in cmd or cmd.endswith(root_s):
            found.append(proc)
    return found
