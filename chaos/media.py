"""Where each copy of the data sits, and the 3-2-1 verdict counted by device and host, not by repository type.

Usage::

    copies = [local_copy("live", data_dir), local_copy("repo1", repo1_dir),
              s3_copy("repo2", endpoint="127.0.0.1", data_dir=s3rver_dir)]
    verdict = policy_321(copies)
    verdict.passed      # False here: one device, and the "off-site" S3 server runs on this host
    verdict.detail      # "not met here: ...; copies 3 (live, repo1, repo2), media 1 (devices: 0xfe00), off-site: simulated (...)"

Rules, so the numbers mean what they say:

- a *medium* is a device: ``os.stat(path).st_dev`` for a copy on this host. Two
  directory trees on one disk are one medium, whatever their repository types;
- a copy on another host counts as a medium of its own (its device is not ours to see)
  and as *off-site*;
- an S3 endpoint on this host (loopback, or an address of this host) is a *simulated*
  off-site copy: its bytes are in the S3 server's data dir, on one of our devices, and
  it is not off-site.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from chaos.drill_report import Check

__all__ = ["Copy", "local_copy", "s3_copy", "device_of", "is_this_host", "media_count", "policy_321", "POLICY_CHECK"]

POLICY_CHECK = "3-2-1 policy"


@dataclass(frozen=True)
class Copy:
    """One copy of the data: where it is, on which device, and whether it is really off-site."""

    name: str
    kind: str  # "live" | "posix" | "s3"
    where: str  # a path on this host, or host[:port] of a remote endpoint
    device: int | None  # st_dev when the bytes are on this host, else None
    host: str  # "this host" or the remote endpoint's host
    simulated_offsite: bool = False  # an off-site kind of repository that runs on this host

    @property
    def offsite(self) -> bool:
        return self.device is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "offsite": self.offsite}


def device_of(path: str | Path) -> int:
    """``st_dev`` of ``path``, or of its nearest existing parent (a repo dir may not exist yet)."""
    p = Path(path).absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return os.stat(p).st_dev


def is_this_host(host: str) -> bool:
    """True for loopback, this machine's names, and any address this host can bind to."""
    if host in ("localhost", socket.gethostname(), socket.getfqdn()):
        return True
    try:
        addrs = {ai[4][0] for ai in socket.getaddrinfo(host, None)}
    except socket.gaierror:
        return False
    for addr in addrs:
        if ipaddress.ip_address(addr.split("%")[0]).is_loopback:
            return True
        family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((addr, 0))  # only an address of one of this host's interfaces binds
            return True
    return False


def local_copy(name: str, path: str | Path, *, kind: str = "posix") -> Copy:
    """A copy in a directory of this host."""
    return Copy(name=name, kind=kind, where=str(path), device=device_of(path), host="this host")


def s3_copy(name: str, *, endpoint: str, port: int | None = None, data_dir: str | Path | None = None) -> Copy:
    """An S3 repository; on this host its medium is the S3 server's ``data_dir`` (required then)."""
    where = f"{endpoint}:{port}" if port else endpoint
    if not is_this_host(endpoint):
        return Copy(name=name, kind="s3", where=where, device=None, host=endpoint)
    if data_dir is None:
        raise ValueError(f"{name}: the S3 endpoint {endpoint} is on this host; pass the S3 server's data_dir")
    return Copy(name=name, kind="s3", where=where, device=device_of(data_dir), host="this host", simulated_offsite=True)


def media_count(copies: list[Copy]) -> int:
    """Distinct devices of the copies on this host, plus one per other host holding a copy."""
    return len({c.device for c in copies if c.device is not None}) + len({c.host for c in copies if c.offsite})


def policy_321(copies: list[Copy]) -> Check:
    """3 copies on >= 2 media with >= 1 off-site, counted from where the copies really are.

    ``copies`` are the copies that exist (the live data and each repository holding a good
    full backup). The detail always gives the counts; when the policy is not met it starts
    with ``not met here:`` and the reasons.
    """
    devices = sorted({c.device for c in copies if c.device is not None})
    remote_hosts = sorted({c.host for c in copies if c.offsite})
    media = media_count(copies)
    offsite = [c for c in copies if c.offsite]
    simulated = [c for c in copies if c.simulated_offsite]
    if offsite:
        off = f"{len(offsite)} ({', '.join(f'{c.name} at {c.where}' for c in offsite)})"
    elif simulated:
        off = "simulated (" + ", ".join(f"{c.name}: {c.where} on this host" for c in simulated) + ")"
    else:
        off = "none"
    dev_text = (
        ", ".join(f"{d:#x}" for d in devices) + ("; " if devices and remote_hosts else "") + ", ".join(f"host {h}" for h in remote_hosts)
    )
    counts = (
        f"copies {len(copies)} ({', '.join(c.name for c in copies) or 'none'}), "
        f"media {media} (devices: {dev_text or 'none'}), off-site: {off}"
    )
    reasons = []
    if len(copies) < 3:
        reasons.append(f"{len(copies)} copies, need 3")
    if media < 2:
        reasons.append(
            f"{media} medium, need 2 (every copy on this host is on device {', '.join(f'{d:#x}' for d in devices)})"
            if devices
            else f"{media} media, need 2"
        )
    if not offsite:
        reasons.append(
            "no off-site copy"
            + (f" ({', '.join(c.name for c in simulated)}: S3 on this host, a simulated off-site copy)" if simulated else "")
        )
    if reasons:
        return Check(POLICY_CHECK, False, f"not met here: {'; '.join(reasons)}; {counts}")
    return Check(POLICY_CHECK, True, f"met: {counts}")
