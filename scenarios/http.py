"""The lean HTTP path every dialect's requests take: one keep-alive connection per user, Locust's request event.

Profiling the shopper funnel against canned answers put about half of the
generator's CPU per request in Locust's ``FastHttpSession`` and
geventhttpclient's ``UserAgent``/``HTTPClient.request`` layers: the URL parsed
five times, two case-insensitive header merges with a regex check of every
field, a compat request object and a cookie-jar pass — per request, for a
journey whose host, run header and bearer token never change. A
:class:`LeanSession` does that work once per user:

- the base URL is split once; a request names a path (or an absolute URL of
  the same host, as Oscar hands out) and its head is one string join;
- the adapter's own headers (``BaseShop.headers()``: run header, token, CSRF)
  are checked and encoded once per distinct value, then reused;
- bodies are encoded and parsed with orjson, once: :meth:`LeanResponse.js`
  caches the parse, so a status check and a body check do not parse twice;
- the connection is geventhttpclient's own pool (one socket, kept alive, its
  liveness check, its C response parser);
- cookies are kept and sent only when the server sets them (Oscar's session
  and CSRF cookies), redirects followed only when one arrives.

Every request fires ``request_event`` once with Locust's fields (request_type,
name, response_time, response_length, response, context, exception,
start_time, url) and ``FastHttpSession``'s semantics: a status outside
Locust's valid codes fails with ``LocustBadStatusCode``, a connection error or
timeout with the exception (status 0), ``resp.success()``/``resp.failure()``
in a ``with`` block override both. So Locust's stats and web UI, peakload's
exporter and the client/server count checks see what they see from
``FastHttpUser``. The event is looked up on the session it was built from at
each request, so whoever swaps that session's ``request_event`` (the open
model's intended-start wrapper) is still heard.

Usage::

    session = LeanSession.of(fast_http_session)     # None when it is not one
    with session.request("GET", "/api/products/SKU-1", name="/api/products/{sku}", context={}) as resp:
        if resp.js().get("sku") != "SKU-1":
            resp.failure("sku missing")
"""

from __future__ import annotations

import functools
import json as stdjson
import re
import socket
import time
import zlib
from collections.abc import Mapping
from http.cookiejar import Cookie as JarCookie
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
from gevent import getcurrent
from geventhttpclient import HTTPClient
from geventhttpclient._parser import HTTPParseError
from geventhttpclient.response import HTTPConnectionClosed, HTTPSocketResponse
from locust import User
from locust.contrib.fasthttp import FAILURE_EXCEPTIONS, LocustBadStatusCode, LocustUserAgent
from locust.exception import CatchResponseError, LocustError, ResponseError

__all__ = ["LeanSession", "LeanResponse", "ResponseHeaders", "Cookie", "dumps", "loads"]

_VALID = LocustUserAgent.valid_response_codes
_REDIRECTS = LocustUserAgent.redirect_response_codes
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"[^\r\n\x00]*")
_MAX_HEADER_BLOCKS = 16  # distinct header sets cached per user (a token or CSRF rotation adds one)
_MAX_REDIRECTS = 5
_BLOCK = 65536
_FRESH_S = 0.2  # a kept socket used this recently is not checked for a close by the server (one syscall saved)


def dumps(value: Any) -> bytes:
    """JSON bytes (orjson; falls back to the standard library for what orjson refuses, e.g. ints over 64 bits)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return stdjson.dumps(value).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON (orjson; the standard library for what orjson refuses, e.g. NaN or ints over 64 bits). ValueError when not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return stdjson.loads(data)


class Cookie:
    """A cookie the server set (``cookie.name``, ``cookie.value``: what ``http.cookiejar`` users read)."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: str) -> None:
        self.name, self.value = name, value

    def __repr__(self) -> str:
        return f"Cookie({self.name!r})"


@functools.lru_cache(maxsize=64)
def _target(base_url: str) -> tuple[str, bool, str, int, str, str, str]:
    """(base URL, TLS, host, port, origin, path prefix, the request head's fixed lines): one copy shared by a pool's users."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) base URL like http://127.0.0.1:8080, got {base_url!r}")
    ssl = parts.scheme == "https"
    port = parts.port or (443 if ssl else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port not in (80, 443):
        host += f":{port}"
    static = f"Host: {host}\r\nUser-Agent: {HTTPClient.DEFAULT_HEADERS['User-Agent']}\r\nAccept-Encoding: gzip, deflate\r\n"
    return base_url.rstrip("/"), ssl, parts.hostname, port, f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/"), static


def _expire(greenlet: Any) -> None:
    """The exchange timer fired: the exchange waiting in ``greenlet`` fails as a socket timeout would."""
    greenlet.throw(TimeoutError("timed out"))


def _header_lines(headers: Mapping[str, Any]) -> str:
    """``Name: value\\r\\n`` lines, each field checked (a CR/LF in a value would split the request)."""
    out = []
    for field, value in headers.items():
        value = str(value)
        if not _TOKEN.fullmatch(field) or not _FIELD_VALUE.fullmatch(value):
            raise ValueError(f"invalid header field {field!r}: {value!r}")
        out.append(f"{field}: {value}\r\n")
    return "".join(out)


def _field(low: str, key: str) -> str | None:
    """The (first) value of the header ``key`` (``"\\r\\nname:"``) in a lower-cased response head, stripped."""
    i = low.find(key)
    if i < 0:
        return None
    i += len(key)
    j = low.find("\r\n", i)
    return (low[i:] if j < 0 else low[i:j]).strip()


class ResponseHeaders:
    """A response's headers by lower-case name (a repeated one as a list), parsed when first asked for."""

    __slots__ = ("_head", "low", "_map")

    def __init__(self, head: str, low: str) -> None:
        self._head, self.low = head, low
        self._map: dict[str, Any] | None = None

    def _fields(self) -> dict[str, Any]:
        if self._map is None:
            fields: dict[str, Any] = {}
            for line in self._head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                name, value = name.strip().lower(), value.strip()
                old = fields.get(name)
                fields[name] = value if old is None else [*old, value] if isinstance(old, list) else [old, value]
            self._map = fields
        return self._map

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields().get(name.lower(), default)

    def __getitem__(self, name: str) -> Any:
        return self._fields()[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields()

    def items(self) -> Any:
        return self._fields().items()

    def __repr__(self) -> str:
        return f"ResponseHeaders({self._fields()!r})"


class LeanResponse:
    """A response, and the ``with`` block that reports it (``catch_response=True`` semantics of ``FastHttpSession``).

    ``status_code`` (0 without an answer), ``content`` (bytes, decompressed), ``headers``,
    ``error`` (the failure Locust would record), :meth:`js` (the parsed JSON, cached),
    ``text``, ``json()``, ``success()``, ``failure(msg)``.
    """

    __slots__ = ("status_code", "content", "headers", "url", "error", "request_meta", "_session", "_manual", "_entered", "_js")

    def __init__(self, session: LeanSession, status: int, content: bytes | None, headers: Any, url: str, error: BaseException | None):
        self.status_code = status
        self.content = content
        self.headers = headers
        self.url = url
        self.error = error
        self._session = session
        self._manual: bool | BaseException | None = None
        self._entered = False
        self._js: Any = self  # self = not parsed yet
        self.request_meta: dict[str, Any] = {}

    @property
    def text(self) -> str | None:
        return None if self.content is None else self.content.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.error is None

    def js(self) -> Any:
        """The body parsed as JSON, once (ValueError when it is not JSON)."""
        if self._js is self:
            try:
                self._js = loads(self.content or b"")
            except (ValueError, TypeError) as exc:
                raise ValueError("body is not JSON") from exc
        return self._js

    def json(self) -> Any:
        return self.js()

    def raise_for_status(self) -> None:
        if isinstance(self._manual, BaseException):
            raise self._manual
        if self._manual is None and self.error is not None:
            raise self.error

    def success(self) -> None:
        if not self._entered:
            raise LocustError("Tried to set status on a request that has not yet been made: use a with-block")
        self._manual = True

    def failure(self, exc: Any) -> None:
        if not self._entered:
            raise LocustError("Tried to set status on a request that has not yet been made: use a with-block")
        self._manual = exc if isinstance(exc, Exception) else CatchResponseError(exc)

    def __enter__(self) -> LeanResponse:
        self._entered = True
        return self

    def __exit__(self, exc_type: Any, value: Any, tb: Any) -> bool:
        manual = self._manual
        meta = self.request_meta
        if manual is not None:
            meta["exception"] = None if manual is True else manual
            self._session._fire(meta)
            return exc_type is None
        if exc_type is not None:
            if not isinstance(value, ResponseError):
                return False  # as Locust does: an error in the block propagates and the request is not reported
            meta["exception"] = value
        else:
            meta["exception"] = self.error
        self._session._fire(meta)
        return True


class LeanSession:
    """One user's keep-alive connection to one host; see the module docstring.

    ``events``: the object whose ``request_event`` is fired (the ``FastHttpSession`` it
    replaces); ``user``: the Locust user whose ``context()`` is merged into each request's;
    ``jar``: an ``http.cookiejar.CookieJar`` the cookies are mirrored into (the handed
    session's, for adapters that read it), written only when the server sets a cookie.
    """

    __slots__ = (
        "base_url",
        "_origin",
        "_prefix",
        "_host",
        "_port",
        "_ssl",
        "_static",
        "_events",
        "_user_context",
        "_client",
        "_sock",
        "_used",
        "_blocks",
        "cookies",
        "jar",
        "connection_timeout",
        "network_timeout",
    )

    def __init__(
        self,
        base_url: str,
        *,
        events: Any,
        user: Any = None,
        jar: Any = None,
        connection_timeout: float = 5.0,
        network_timeout: float = 30.0,
    ) -> None:
        self.base_url, self._ssl, self._host, self._port, self._origin, self._prefix, self._static = _target(base_url)
        self._events = events
        custom = user is not None and type(user).context is not User.context
        self._user_context = user.context if custom else None
        self._client: HTTPClient | None = None  # made at the first request: an idle pool user holds no connection
        self._sock: Any = None
        self._used = 0.0  # when the kept socket last carried a request (monotonic)
        self._blocks: dict[tuple[tuple[str, Any], ...], str] | None = None  # made at the first request
        self.cookies: dict[str, str] = {}
        self.jar: Any = jar
        self.connection_timeout, self.network_timeout = connection_timeout, network_timeout

    @classmethod
    def of(cls, http: Any) -> LeanSession | None:
        """The lean session for a Locust ``FastHttpSession`` (its base URL, user, timeouts); None for anything else."""
        base = getattr(http, "base_url", None)
        if not isinstance(base, str) or not base.startswith(("http://", "https://")) or not hasattr(http, "request_event"):
            return None
        if getattr(http, "auth_header", None):
            return None  # credentials in the URL: Basic auth is FastHttpSession's business
        args = getattr(getattr(getattr(http, "client", None), "clientpool", None), "client_args", None) or {}
        return cls(
            base,
            events=http,
            user=getattr(http, "user", None),
            jar=getattr(http, "cookiejar", None),
            connection_timeout=float(args.get("connection_timeout", 5.0)),
            network_timeout=float(args.get("network_timeout", 30.0)),
        )

    # ------------------------------------------------------------ cookies (kept only when a server sets them)

    @property
    def cookiejar(self) -> list[Cookie]:
        return [Cookie(k, v) for k, v in self.cookies.items()]

    def _take_cookies(self, set_cookie: str | list[str]) -> None:
        for line in [set_cookie] if isinstance(set_cookie, str) else set_cookie:
            pair, _, attrs = line.partition(";")
            name, eq, value = pair.partition("=")
            name = name.strip()
            if not eq or not name:
                continue
            attrs_l = attrs.lower()
            gone = (
                "max-age=0" in attrs_l.replace(" ", "") or "max-age=-" in attrs_l.replace(" ", "") or "expires=thu, 01 jan 1970" in attrs_l
            )
            value = value.strip().strip('"')
            if gone:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
            if self.jar is not None:  # mirrored for adapters that read the handed session's jar
                try:
                    self.jar.clear(self._host, "/", name)
                except KeyError:
                    pass
                if not gone:
                    self.jar.set_cookie(
                        JarCookie(0, name, value, None, False, self._host, False, False, "/", True, False, None, False, None, None, {})
                    )

    # ------------------------------------------------------------ requests

    def owns(self, url: str) -> bool:
        """Whether the absolute ``url`` is on this session's host (scheme, host and port as the base URL spells them)."""
        return url.startswith(self._origin + "/") or url == self._origin

    def _block(self, headers: Mapping[str, Any]) -> str:
        key = tuple(headers.items())
        blocks = self._blocks
        if blocks is None:
            blocks = self._blocks = {}
        block = blocks.get(key)
        if block is None:
            if len(blocks) >= _MAX_HEADER_BLOCKS:
                blocks.clear()
            block = blocks[key] = _header_lines(headers)
        return block

    def _fire(self, meta: dict[str, Any]) -> None:
        self._events.request_event.fire(**meta)

    def _pool(self) -> Any:
        """geventhttpclient's connection pool for this host: its socket factory (resolution, timeouts, TLS) and parser."""
        client = self._client
        if client is None:
            client = self._client = HTTPClient(
                self._host,
                self._port,
                ssl=self._ssl,
                insecure=True,
                concurrency=1,
                connection_timeout=self.connection_timeout,
                network_timeout=self.network_timeout,
            )
        return client._connection_pool

    def _socket(self) -> tuple[Any, bool]:
        """The kept socket when it is still open and clean (else a new one) and whether it was reused."""
        sock = self._sock
        if sock is not None:
            now = time.monotonic()
            if now - self._used < _FRESH_S:
                self._used = now
                return sock, True  # used a moment ago: no server closes an idle connection that fast
            self._used = now
            if self._ssl:
                alive = self._pool()._is_socket_alive(sock)
            else:
                try:
                    sock._sock.recv(1, socket.MSG_PEEK)  # non-blocking underneath: b"" = closed by the server, data = stray bytes
                    alive = False
                except BlockingIOError:
                    alive = True  # idle and open
                except OSError:
                    alive = False
            if alive:
                return sock, True
            self._drop()
        sock = self._sock = self._pool()._create_socket()
        self._used = time.monotonic()
        if not self._ssl and hasattr(sock, "_read_event") and hasattr(sock, "hub"):
            # A plain socket: one libev timer bounds each whole exchange (see _exchange) instead of a gevent Timeout
            # object made for every wait; TLS keeps the socket's own per-call network timeout.
            sock.settimeout(None)
        return sock, False

    def _drop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _exchange(self, method: str, head: bytes, body: bytes | None) -> tuple[int, ResponseHeaders, bytes]:
        """Send one request on the kept connection and read the answer: (status, headers by lower-case name, body).

        A connection the server closed before answering is opened again and the request
        sent once more, for an idempotent method only (a write it may have processed is not sent twice).
        """
        out = head + body if body else head
        for attempt in (0, 1):
            sock, reused = self._socket()  # a new connection is bounded by connection_timeout
            timer = None
            if sock.gettimeout() is None:  # a plain socket (see _socket): the whole exchange is bounded by one timer
                # A new libev timer each time (0.3 us): one restarted after a stop goes on with what was left of its
                # time, so a session's timer would expire once its exchanges added up to the timeout. update=True:
                # from the real now, as libev's cached loop time is as old as the loop's last turn, and a turn that ran
                # many greenlets leaves it seconds behind (a 2 s timer fired after 1 s when the loop was 1 s behind).
                timer = sock.hub.loop.timer(self.network_timeout)
                timer.start(_expire, getcurrent(), update=True)
            try:
                try:
                    data = self._send_recv(sock, out)
                except (ConnectionResetError, BrokenPipeError):
                    self._drop()
                    if attempt or not reused or method not in _IDEMPOTENT:
                        raise
                    continue
                except BaseException:
                    self._drop()
                    raise
                if not data:
                    self._drop()
                    if attempt or not reused or method not in _IDEMPOTENT:
                        raise HTTPConnectionClosed("connection closed.")
                    continue
                try:
                    return self._read(sock, method, data)
                except BaseException:
                    self._drop()
                    raise
            finally:
                if timer is not None:
                    timer.stop()
                    timer.close()
        raise AssertionError("unreachable")

    def _send_recv(self, sock: Any, data: bytes) -> bytes:
        """Send ``data``, wait for the first bytes of the answer.

        A plain socket's request goes out in one ``send`` on its raw non-blocking socket (what
        does not fit the send buffer goes through gevent's ``sendall``), and the read waits on
        gevent's read watcher: the exchange timer bounds it, so no gevent Timeout is
        made per wait and the kernel is not asked for the buffer size per request. TLS goes
        through gevent's socket methods and their per-call network timeout.
        """
        if self._ssl or sock.gettimeout() is not None:
            sock.sendall(data)
            return sock.recv(_BLOCK)
        raw = sock._sock
        try:
            sent = raw.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):
            sock.sendall(data[sent:])
        while True:
            # wait first: an answer is hardly ever there the moment its request left (a read now would fail
            # with EAGAIN, a system call and an exception per request)
            sock.hub.wait(sock._read_event)  # woken by the answer, or by the exchange timer's TimeoutError
            try:
                return raw.recv(_BLOCK)
            except BlockingIOError:
                continue  # woken without data

    def _read(self, sock: Any, method: str, data: bytes) -> tuple[int, ResponseHeaders, bytes]:
        """Parse the answer: a plain head with Content-Length here; anything else (chunked, 1xx, no length) by geventhttpclient."""
        end = data.find(b"\r\n\r\n")
        if end > 0 and data[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 "):
            head = data[:end].decode("latin-1")
            low = head.lower()
            status = int(head[9:12])
            no_body = method == "HEAD" or status in (204, 304)
            length = _field(low, "\r\ncontent-length:")
            if status >= 200 and "\r\ntransfer-encoding:" not in low and (no_body or (length is not None and length.isdigit())):
                need = 0 if no_body else int(length)  # type: ignore[arg-type]
                body = data[end + 4 :]
                while len(body) < need:
                    more = sock.recv(max(_BLOCK, need - len(body)))
                    if not more:
                        raise HTTPParseError("connection closed before the end of the body")
                    body += more
                conn = _field(low, "\r\nconnection:") or ""
                if len(body) != need or conn == "close" or (data[5:8] == b"1.0" and conn != "keep-alive"):
                    self._drop()  # the server closes, or sent more than it said: no reuse
                return status, ResponseHeaders(head, low), body
        # the general case: geventhttpclient's parser reads on from what came so far
        raw = HTTPSocketResponse(sock, method=method, pre_buffered=data)
        body = raw.read()
        if raw.should_close() or raw._sock is None and not raw.message_complete:
            self._drop()
        head = f"HTTP/1.1 {raw.status_code}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in raw.items())
        return raw.status_code, ResponseHeaders(head, head.lower()), body

    def request(
        self,
        method: str,
        url: str,
        *,
        name: str | None = None,
        headers: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, Any] | None = None,
        json: Any = None,
        data: bytes | str | None = None,
        catch_response: bool = True,
        context: dict[str, Any] | None = None,
        allow_redirects: bool = True,
    ) -> LeanResponse:
        """``method url`` (a path under the base URL, or an absolute URL of its host); reported as ``name``.

        ``headers`` are cached encoded (the adapter's per-user set); ``extra_headers`` are
        per request (an idempotency key). With ``catch_response`` (the default) the
        request is reported when the ``with`` block ends; without, at once.
        """
        if url[:1] == "/":
            uri = self._prefix + url
            full = self.base_url + url
        else:
            if not self.owns(url):
                raise ValueError(f"{url!r} is not on {self._origin}: one lean session speaks to one host")
            full = url
            uri = url[len(self._origin) :] or "/"
        lines = self._block(headers) if headers else ""
        if extra_headers:
            lines += _header_lines(extra_headers)
        payload: bytes | None = None
        ctype = ""
        if data is not None:
            payload = data.encode() if isinstance(data, str) else data
        elif json is not None:
            payload = dumps(json)
            ctype = "Content-Type: application/json\r\n"
        request_type = method  # reported as sent, like FastHttpSession, even when a redirect turns it into a GET
        start_time = time.time()
        t0 = time.perf_counter()
        status, content, resp_headers, error = 0, None, None, None
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                hop = lines + ctype
                if self.cookies:
                    hop += "Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()) + "\r\n"
                if payload:
                    hop += f"Content-Length: {len(payload)}\r\n"
                elif method in _BODY_METHODS:
                    hop += "Content-Length: 0\r\n"
                status, resp_headers, content = self._exchange(
                    method, f"{method} {uri} HTTP/1.1\r\n{self._static}{hop}\r\n".encode("latin-1"), payload
                )
                low = resp_headers.low
                if "\r\nset-cookie:" in low:
                    self._take_cookies(resp_headers.get("set-cookie") or [])
                encoding = _field(low, "\r\ncontent-encoding:") if "\r\ncontent-encoding:" in low else None
                if encoding and content:
                    content = zlib.decompress(content, 47 if "gzip" in encoding else 15)
                if status not in _REDIRECTS or not allow_redirects:
                    break
                location = resp_headers.get("location")
                if not isinstance(location, str):
                    break
                target = urljoin(self._origin + uri, location)
                if not self.owns(target):
                    break  # another host: reported as the 3xx it is
                uri = target[len(self._origin) :]
                if status == 303 or (status in (301, 302) and method == "POST"):
                    method, payload, ctype = "GET", None, ""
            if status not in _VALID:
                error = LocustBadStatusCode(full, code=status)
        except FAILURE_EXCEPTIONS as exc:
            error = exc
            status, content = 0, None
        response_time = (time.perf_counter() - t0) * 1000
        if context is None:
            context = {}
        if self._user_context is not None:
            context = {**self._user_context(), **context}
        resp = LeanResponse(self, status, content, resp_headers, full, error)
        resp.request_meta = {
            "request_type": request_type,
            "name": name or url,
            "response_time": response_time,
            "response_length": len(content) if content else 0,
            "response": resp,
            "context": context,
            "exception": error,
            "start_time": start_time,
            "url": full,
        }
        if not catch_response:
            self._fire(resp.request_meta)
        return resp

    def get(self, url: str, **kw: Any) -> LeanResponse:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> LeanResponse:
        return self.request("POST", url, **kw)

    def put(self, url: str, **kw: Any) -> LeanResponse:
        return self.request("PUT", url, **kw)

    def patch(self, url: str, **kw: Any) -> LeanResponse:
        return self.request("PATCH", url, **kw)

    def delete(self, url: str, **kw: Any) -> LeanResponse:
        return self.request("DELETE", url, **kw)

    def close(self) -> None:
        self._drop()
        if self._client is not None:
            self._client.close()
            self._client = None
