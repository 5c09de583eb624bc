"""Linux network namespaces for the fleet test: one "hub" namespace and N "host" namespaces joined by veth pairs.

Topology (a random 10.A.B.0/24, A in 200..250, addresses only inside the namespaces)::

    hub:    lo, h1 10.A.B.1/30, h2 10.A.B.5/30, ...      (the master and the target listen on 10.A.B.1)
    host i: lo, w<i> 10.A.B.(4i-2)/30, default via the hub's end of its pair

Nothing is created in the namespace the test runs in: each veth pair is made
with both ends already in their namespaces. The hub forwards nothing (a new
namespace starts with ``ip_forward`` 0), so a host's packets reach the hub's
own addresses and nowhere else. :meth:`Fleet.close` kills every process left
in the namespaces and deletes them (and with them the veths); it is idempotent.

Usage::

    with Fleet.create(hosts=2) as fleet:
        proc = fleet.popen(fleet.hub, ["python", "-m", "tests.fleet.target", "--host", fleet.hub_ip, ...])
        fleet.popen(fleet.hosts[0], [...], hostname="pl-w1")
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Fleet", "netns_available"]

_MAX_HOSTS = 60  # /30 pairs in one /24, the hub's addresses included


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")


def netns_available() -> str | None:
    """None when this process can create network namespaces, else why not."""
    if os.geteuid() != 0:
        return "needs root (ip netns add)"
    name = f"plprobe{os.getpid()}"
    try:
        _ip("netns", "add", name)
    except (RuntimeError, OSError) as exc:
        return str(exc)
    subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
    return None


@dataclass
class Fleet:
    hub: str
    hosts: list[str]
    prefix: str  # "10.A.B"
    procs: list[subprocess.Popen] = field(default_factory=list)
    _made: list[str] = field(default_factory=list)

    @property
    def hub_ip(self) -> str:
        return f"{self.prefix}.1"

    def host_ip(self, i: int) -> str:
        """The address of host ``i`` (0-based)."""
        return f"{self.prefix}.{4 * i + 2}"

    @classmethod
    def create(cls, *, hosts: int, tag: str = "") -> Fleet:
        if not 1 <= hosts < _MAX_HOSTS:
            raise ValueError(f"hosts: expected 1..{_MAX_HOSTS - 1}, got {hosts}")
        base = f"pl{os.getpid()}{tag}"[:11]  # interface names: at most 15 characters
        prefix = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
        fleet = cls(hub=f"{base}h", hosts=[f"{base}w{i}" for i in range(hosts)], prefix=prefix)
        try:
            for ns in (fleet.hub, *fleet.hosts):
                _ip("netns", "add", ns)
                fleet._made.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            for i, ns in enumerate(fleet.hosts):
                hub_end, host_end = f"{base}h{i}", f"{base}v{i}"
                _ip("link", "add", hub_end, "netns", fleet.hub, "type", "veth", "peer", "name", host_end, "netns", ns)
                _ip("-n", fleet.hub, "addr", "add", f"{prefix}.{4 * i + 1}/30", "dev", hub_end)
                _ip("-n", ns, "addr", "add", f"{fleet.host_ip(i)}/30", "dev", host_end)
                _ip("-n", fleet.hub, "link", "set", hub_end, "up")
                _ip("-n", ns, "link", "set", host_end, "up")
                _ip("-n", ns, "route", "add", "default", "via", f"{prefix}.{4 * i + 1}")
        except BaseException:
            fleet.close()
            raise
        return fleet

    def popen(self, ns: str, cmd: list[str], *, hostname: str | None = None, log: Path, **kw: Any) -> subprocess.Popen:
        """``ip netns exec NS CMD`` (with its own hostname when given: a host of its own), output to ``log``."""
        if hostname is not None:  # a UTS namespace of its own: Locust names a worker after its host
            cmd = ["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec "$@"', hostname, *cmd]
        out = open(log, "wb")  # noqa: SIM115 - closed with the process (close())
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)
        out.close()  # the child holds its own copy
        self.procs.append(proc)
        return proc

    def run(self, ns: str, cmd: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True, timeout=timeout)

    def close(self) -> None:
        """Kill what runs in the namespaces (ours first, then anything left), delete them; safe to call twice."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        self.procs.clear()
        for ns in reversed(self._made):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self._made.clear()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
