"""A lean GET for single-request journeys: geventhttpclient's ``HTTPClient`` with Locust's request event.

Profiling the generator against a static endpoint showed about half of the
per-request CPU of ``FastHttpSession.request`` going to re-parsing the URL
(``urllib.parse`` five times per request), building compat request and
header objects and the cookie jar — none of which a fixed GET needs. A
:class:`Probe` parses the base URL once and keeps one keep-alive connection;
every request still fires ``events.request`` with the same fields and failure
semantics as ``FastHttpUser`` (status outside Locust's valid codes →
``LocustBadStatusCode``; connection errors and timeouts → the exception), so
Locust's stats, the peakload exporter and the client/server count checks see
exactly what they see from ``FastHttpUser``. Redirects are not followed (a 3xx
is reported as it came) and no cookies are kept: each arrival is a new visitor.

Usage::

    probe = Probe("http://127.0.0.1:8080", request_event=env.events.request, headers={"X-Peakload-Run": run_id})
    probe.get("/api/home")
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from geventhttpclient import HTTPClient
from locust.contrib.fasthttp import (
    FAILURE_EXCEPTIONS,
    LocustBadStatusCode,
    LocustUserAgent,
)

__all__ = ["Probe"]

_VALID = LocustUserAgent.valid_response_codes


class Probe:
    """One user's keep-alive connection for fixed GETs; reports each request like ``FastHttpSession``."""

    def __init__(
        self,
        base_url: str,
        *,
        request_event: Any,
        headers: dict[str, str] | None = None,
        connection_timeout: float = 5.0,
        network_timeout: float = 30.0,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) base URL like http://127.0.0.1:8080, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._prefix = parts.path.rstrip("/")
        self._http = HTTPClient(
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            ssl=parts.scheme == "https",
            insecure=True,
            concurrency=1,
            connection_timeout=connection_timeout,
            network_timeout=network_timeout,
        )
        self._headers = {"Accept-Encoding": "gzip, deflate, br", **(headers or {})}
        self._fire = request_event.fire

    def get(self, path: str, *, name: str | None = None) -> int | None:
        """GET ``path``; fires the request event; returns the status (None without a response)."""
        return self.request("GET", path, name=name)

    def request(
        self,
        method: str,
        path: str,
        *,
        name: str | None = None,
        body: bytes | None = None,
        context: dict[str, Any] | None = None,
        failure_name: str | None = None,
    ) -> int | None:
        """``method path`` (``body`` for methods that take one); fires the request event as FastHttpUser does; the status.

        A bad status fails under ``failure_name`` (a route template keeps failure messages bounded), else under the URL.
        """
        uri = self._prefix + path
        start_time = time.time()
        t = time.perf_counter()
        response = None
        exception: BaseException | None = None
        length = 0
        status = None
        try:
            response = self._http.request(method, uri, body=body, headers=self._headers)
            status = response.status_code
            length = len(response.read())
        except FAILURE_EXCEPTIONS as exc:
            exception = exc
        response_time = (time.perf_counter() - t) * 1000
        if exception is None and status not in _VALID:
            exception = LocustBadStatusCode(failure_name or self.base_url + path, code=status)
        self._fire(
            request_type=method,
            name=name or path,
            response_time=response_time,
            response_length=length,
            response=response,
            context=context if context is not None else {},
            exception=exception,
            start_time=start_time,
            url=self.base_url + path,
        )
        return status

    def close(self) -> None:
        self._http.close()
