"""The app runner for the shop's servers: malformed HTTP gets one log line and the JSON error contract.

aiohttp answers a request its parser rejects (bad Content-Length, NUL in the
path, missing Host, oversized or too many headers, an HTTP/2 preface, a garbage
request line, broken chunked encoding) before any middleware runs: it logs the
parser's traceback at ERROR and sends a ``text/plain`` 400 that quotes the
offending bytes. A body it cannot decode (bad gzip) fails the handler's read and
is logged again, with a traceback, by aiohttp's lingering read of the rest.

aiohttp has no supported hook for that answer: the ``logger`` runner option
could quiet the log but not change the body, and ``on_response_prepare`` does
not fire for a request that never matched a route. So this one module
overrides ``RequestHandler.handle_error`` and ``log_exception`` for those errors
only, and ``AppRunner._make_server`` to install that handler; everything else
(500s, timeouts) stays aiohttp's. Written against aiohttp 3.14 (``pyproject.toml``
pins ``<4``); ``tests/storefront/test_storefront_malformed_http.py`` fails if a
new aiohttp moves these hooks.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from .errors import bad_request
from .state import error_response

__all__ = ["ShopRunner", "malformed_reason"]

log = logging.getLogger("storefront.http")

# aiohttp's own words come first; the bytes it quotes follow a colon
# ("Invalid char in url path:\n\n  b'GET /a\\x00...'", "... when reading: b'aaaa...'")
# or a quote ("Bad status line 'GET ...'"). A quoted header-name-like token
# followed by more words ("Missing 'Host' header in request.") is aiohttp's text, kept.
_ECHO = re.compile(r"""(?::|\s(?:b|bytearray\()?['"](?![A-Za-z0-9-]{1,40}['"]\s)).*""", re.DOTALL)
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]+")
_MAX_REASON = 100


def malformed_reason(exc: BaseException) -> str:
    """A short, printable reason for a parser or body error that never quotes the request's bytes.

    Usage: ``malformed_reason(BadHttpMessage("Invalid character in Content-Length:\\n\\n  b'x'"))``
    -> ``"Invalid character in Content-Length"``
    """
    if isinstance(exc, RequestPayloadError) and exc.__cause__ is not None:
        exc = exc.__cause__  # aiohttp wraps the body's parse error (bad gzip, broken chunks)
    if isinstance(exc, LineTooLong):
        return f"request line or header longer than {exc.args[1]} bytes"
    message = exc.message if isinstance(exc, HttpProcessingError) else ""
    text = _UNPRINTABLE.sub(" ", _ECHO.sub("", message.split("\n", 1)[0]))
    text = " ".join(text.split()).rstrip(" .")[:_MAX_REASON]
    return text or type(exc).__name__


def _peer(transport: asyncio.BaseTransport | None) -> str:
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), peer[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return "unknown peer"


_MALFORMED = (HttpProcessingError, RequestPayloadError)


class _JsonErrorHandler(RequestHandler):
    """aiohttp's connection handler, except that malformed requests get one log line and contract JSON."""

    __slots__ = ("_reported",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reported: BaseException | None = None

    def _report(self, exc: BaseException) -> None:
        # A broken body surfaces twice (the handler's read, then aiohttp's lingering read of the
        # rest): the same exception object, logged once. No traceback: a scanner or a broken
        # client must not fill the log.
        if exc is not self._reported:
            self._reported = exc
            log.warning("malformed HTTP request from %s: %s", _peer(self.transport), malformed_reason(exc))

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, _MALFORMED) or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        self._report(exc)
        response = error_response(
            bad_request("malformed_request", malformed_reason(exc)), headers={"Connection": "close", "X-Content-Type-Options": "nosniff"}
        )
        # The parser's state after an error is unknown: nothing more is read on this connection.
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, _MALFORMED):
            self._report(exc)  # the lingering read after a handler answered a broken body
        else:
            super().log_exception(*args, **kwargs)


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        # Same construction as web.Server.__call__, with our handler class.
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class ShopRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer malformed HTTP with ``{"error": "malformed_request", "detail"}``.

    Usage: ``runner = ShopRunner(app, access_log=None); await runner.setup(); await web.TCPSite(runner).start()``
    """

    __slots__ = ()

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()  # runs the app's startup and freezes it
        return _JsonErrorServer(
            base.request_handler, request_factory=base.request_factory, handler_cancellation=base.handler_cancellation, **base._kwargs
        )
