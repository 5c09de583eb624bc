"""Blocking client for the fault proxy's Toxiproxy-style HTTP API (what chaos actions use).

Usage::

    client = FaultProxyClient("http://127.0.0.1:8474")
    client.add_toxic("pg0", type="latency", attributes={"latency": 150, "jitter": 50})
    client.reset()
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

__all__ = ["FaultProxyClient"]


class FaultProxyClient:
    """Blocking client for the API (what chaos actions use).

    Usage: ``FaultProxyClient("http://127.0.0.1:8474").add_toxic("db", type="timeout", attributes={"timeout": 0})``
    """

    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        self.base = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - loopback API
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"faultproxy {method} {path}: HTTP {exc.code} {exc.read()[:200]!r}") from None
        return json.loads(raw) if raw else None

    def proxies(self) -> dict[str, Any]:
        return self._call("GET", "/proxies")

    def create_proxy(self, name: str, *, listen: str, upstream: str) -> dict[str, Any]:
        return self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream})

    def set_enabled(self, name: str, enabled: bool) -> dict[str, Any]:
        return self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(
        self,
        proxy: str,
        *,
        type: str,
        name: str | None = None,
        stream: str = "downstream",  # noqa: A002
        toxicity: float = 1.0,
        attributes: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        body = {"type": type, "stream": stream, "toxicity": toxicity, "attributes": attributes or {}}
        if name:
            body["name"] = name
        return self._call("POST", f"/proxies/{proxy}/toxics", body)

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")

    def reset(self) -> None:
        self._call("POST", "/reset")
