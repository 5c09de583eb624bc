"""Loopback ports and small blocking HTTP helpers (the one copy every room and test uses).

Usage::

    port = free_port()                          # a loopback port free right now
    status, body = http_get("http://127.0.0.1:8080/healthz")   # (0, error text) when unreachable
    data = fetch_json("http://127.0.0.1:8080/api/admin/reconciliation?run_id=R")
"""

from __future__ import annotations

import ipaddress
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

__all__ = ["free_port", "free_ports", "is_loopback", "http_get", "http_request", "fetch_json"]


def free_ports(n: int) -> list[int]:
    """``n`` distinct loopback ports that are free right now (held open together while choosing)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def free_port() -> int:
    """One loopback port that is free right now."""
    return free_ports(1)[0]


def is_loopback(host: str) -> bool:
    """``localhost`` or an address in 127.0.0.0/8 or ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_request(
    url: str, body: bytes | None = None, *, method: str = "GET", timeout: float = 5.0, headers: Mapping[str, str] | None = None
) -> tuple[int, bytes]:
    """One request; (status, body). Connection problems give status 0 and the error text as body."""
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - callers check the URL
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (OSError, urllib.error.URLError) as exc:
        return 0, str(exc).encode()


def http_get(url: str, *, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET ``url``; (status, body), status 0 when unreachable."""
    return http_request(url, timeout=timeout)


def fetch_json(url: str, *, timeout: float = 5.0, headers: Mapping[str, str] | None = None) -> Any:
    """GET a JSON document (blocking); raises urllib/ValueError errors for the caller to word."""
    req = urllib.request.Request(url, headers={"Accept": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the URL is allowlisted
        return json.loads(resp.read().decode("utf-8"))
