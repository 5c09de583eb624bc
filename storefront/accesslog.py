"""The storefront's access log (off by default; ``serve --access-log FILE``): nginx/Apache combined format.

One line per request, written when the answer is sent::

    127.0.0.1 - 42 [03/Dec/2026:09:30:00.123 +0000] "GET /api/products/SKU-000001 HTTP/1.1" 200 312 "-" "python/gevent-http-client-1.5" 0.004

- ``%u`` is the signed-in user's id (``-`` before sign-in), so a log reader can
  tell one shopper from another on one address;
- ``%t`` is the request's *arrival* (not the answer's), UTC, in milliseconds
  (Apache's ``%{%d/%b/%Y:%H:%M:%S}t.%{msec_frac}t``);
- the trailing number is the request's duration in seconds (nginx ``$request_time``).

``peakload profile fit`` reads it (``--format combined``); so does any tool that reads combined logs.

Usage: ``runner = ShopRunner(app, access_log_class=CombinedAccessLog, access_log=open_access_log(path))``
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import IO

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .state import state_of

__all__ = ["CombinedAccessLog", "open_access_log", "USER_KEY"]

USER_KEY = "access_log_user"  # request[USER_KEY]: the user id current_user() found


def _clock(t: float) -> str:
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return d.strftime("%d/%b/%Y:%H:%M:%S.") + f"{d.microsecond // 1000:03d} +0000"


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


class _FileLogger(logging.Logger):
    """A logger that is only a file: the access logger writes to ``stream`` directly."""

    def __init__(self, stream: IO[str]) -> None:
        super().__init__("storefront.access")
        self.stream = stream


def open_access_log(path: str) -> _FileLogger:
    """The file, opened for appending (line-buffered: a reader sees every finished request)."""
    return _FileLogger(open(path, "a", encoding="utf-8", buffering=1))  # noqa: SIM115 - closed with the app


class CombinedAccessLog(AbstractAccessLogger):
    """aiohttp access logger writing the combined format with millisecond arrival times and durations."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time_s: float) -> None:
        stream = getattr(self.logger, "stream", None)
        if stream is None:
            return
        arrived = time.time() - time_s
        peer = request.remote or "-"
        user = request.get(USER_KEY)
        if user is None:  # a public route: name the user its token belongs to, when the shop knows it already
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if token and scheme.lower() == "bearer":
                user = state_of(request).tokens.get(token.strip())
        size = response.body_length
        line = (
            f"{peer} - {user if user is not None else '-'} [{_clock(arrived)}] "
            f'"{request.method} {_quoted(request.raw_path)} HTTP/{request.version.major}.{request.version.minor}" '
            f'{response.status} {size if size else "-"} "{_quoted(request.headers.get("Referer", "-"))}" '
            f'"{_quoted(request.headers.get("User-Agent", "-"))}" {time_s:.4f}\n'
        )
        try:
            stream.write(line)
        except (OSError, ValueError):  # a full disk or a closed file must not fail the request
            pass
