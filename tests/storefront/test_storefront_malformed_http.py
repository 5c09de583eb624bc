"""Malformed HTTP on a raw socket: a JSON 400, one warning line per request, never a traceback.

Each bad request carries the marker ``zq7mark`` where aiohttp used to quote the
offending bytes back (in the 400 body and the logged traceback); neither the
answer nor the log may contain it now.

Missing ``Host``: aiohttp 3.14's parser rejects an HTTP/1.1 request without one
(400, like any other malformed request); HTTP/1.0, where Host is optional, is
answered normally.
"""

from __future__ import annotations

import dataclasses
import json
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from typing import Self
from urllib.parse import urlsplit

import pytest
from aiohttp.http_exceptions import BadHttpMessage

from storefront.runner import malformed_reason
from tests.storefront.sfproc import (
    FAST_ARGS,
    ShopProcess,
    metric_value,
    start_gateway_process,
    start_shop,
)

MARK = b"zq7mark"
GOOD = b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n"
WARNING = re.compile(r"malformed HTTP request from (127\.0\.0\.1:\d+): (.*)$", re.MULTILINE)
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
TLS_HELLO = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + MARK + b"\x00" * 32


def _post(extra: bytes, body: bytes = b"") -> bytes:
    return b"POST /api/users HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n" + extra + b"\r\n" + body


# name -> (raw request, a word the reason must contain)
MALFORMED: dict[str, tuple[bytes, str]] = {
    "content-length-not-a-number": (_post(b"Content-Length: " + MARK + b"\r\n", b"{}"), "content-length"),
    "content-length-negative": (_post(b"Content-Length: -5\r\nX-Mark: " + MARK + b"\r\n", b"{}"), "content-length"),
    "content-length-twice": (_post(b"Content-Length: 2\r\nContent-Length: 3\r\n", b"{}"), "content-length"),
    "nul-in-path": (b"GET /api/" + MARK + b"\x00products HTTP/1.1\r\nHost: shop\r\n\r\n", "url"),
    "http11-without-host": (b"GET /api/home?" + MARK + b" HTTP/1.1\r\n\r\n", "host"),
    "header-line-too-long": (
        b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Big: " + MARK + b"a" * 9000 + b"\r\n\r\n",
        "longer than 8190 bytes",
    ),
    "request-line-too-long": (b"GET /" + MARK + b"a" * 9000 + b" HTTP/1.1\r\nHost: shop\r\n\r\n", "longer than 8190 bytes"),
    "too-many-headers": (
        b"GET /healthz HTTP/1.1\r\nHost: shop\r\n" + b"".join(b"X-" + MARK + b"-%d: v\r\n" % i for i in range(200)) + b"\r\n",
        "headers",
    ),
    "control-char-in-header": (b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-A: " + MARK + b"\x01\r\n\r\n", "header"),
    "http2-preface": (H2_PREFACE, "pri"),
    "garbage-request-line": (MARK + b"\x01\x02 hello\r\n\r\n", "method"),
    "tls-client-hello": (TLS_HELLO, "https"),
    "unknown-http-version": (b"GET /" + MARK + b" HTTP/9.9\r\nHost: shop\r\n\r\n", "status line"),
    "chunk-size-not-hex": (_post(b"Transfer-Encoding: chunked\r\n", MARK + b"\r\n{}\r\n0\r\n\r\n"), "chunk"),
    "unknown-transfer-encoding": (_post(b"Transfer-Encoding: chunked, " + MARK + b"\r\n"), "transfer-encoding"),
    "transfer-encoding-and-content-length": (
        _post(b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + MARK),
        "content-length",
    ),
}


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return json.loads(self.body)


class RawConnection:
    """One TCP connection; the server's bytes are read until it closes (a 15 s socket timeout guards a hang)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=15)
        self.buffer = b""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def answer(self) -> Answer:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), f"connection closed before a full response: {self.buffer!r}"
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        length = int(headers["content-length"])
        while len(rest) < length:
            assert self._fill(), "connection closed inside a response body"
            rest = self.buffer.partition(b"\r\n\r\n")[2]
        self.buffer = rest[length:]
        return Answer(int(status_line.split()[1]), headers, rest[:length])

    def closed_by_server(self) -> bool:
        """True once the server closes; False if more bytes arrive instead."""
        return not self._fill() and not self.buffer


def _send_once(url: str, raw: bytes) -> Answer:
    with RawConnection(url) as conn:
        conn.sock.sendall(raw)
        answer = conn.answer()
        assert conn.closed_by_server(), "the server must close the connection after a malformed request"
        return answer


def _log_size(proc: ShopProcess) -> int:
    return proc.log_path.stat().st_size


def _log_since(proc: ShopProcess, offset: int, *, warnings: int, deadline_s: float = 10.0) -> str:
    """The log written since ``offset``, once it holds ``warnings`` malformed-request lines (or the deadline passed)."""
    deadline = time.monotonic() + deadline_s
    while True:
        text = proc.log_path.read_bytes()[offset:].decode(errors="replace")
        if len(WARNING.findall(text)) >= warnings or time.monotonic() > deadline:
            return text
        time.sleep(0.02)


def _assert_one_warning(text: str, detail: str) -> None:
    found = WARNING.findall(text)
    assert len(found) == 1, f"expected one warning line, got:\n{text}"
    assert found[0][1] == detail, text
    assert "Traceback" not in text and "ERROR" not in text, text
    assert MARK.decode() not in text, text


@pytest.fixture(scope="module")
def lone_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopProcess]:
    """A shop of its own: these tests read its whole log."""
    tmp = tmp_path_factory.mktemp("malformed")
    proc = start_shop(tmp, f"sqlite:///{tmp / 'shop.db'}", *FAST_ARGS)
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_request_gets_contract_json_and_one_warning(lone_shop: ShopProcess, name: str) -> None:
    raw, reason_word = MALFORMED[name]
    offset = _log_size(lone_shop)
    answer = _send_once(lone_shop.url, raw)

    assert answer.status == 400
    assert answer.headers["connection"].lower() == "close"
    assert answer.headers["content-type"] == "application/json; charset=utf-8"
    body = answer.json()
    assert set(body) == {"error", "detail"} and body["error"] == "malformed_request", body
    assert reason_word in body["detail"].lower(), body
    assert body["detail"].isprintable() and len(body["detail"]) <= 100, body
    assert MARK not in answer.body
    _assert_one_warning(_log_since(lone_shop, offset, warnings=1), body["detail"])


def test_undecodable_gzip_body_is_a_400_and_one_warning(lone_shop: ShopProcess) -> None:
    offset = _log_size(lone_shop)
    answer = _send_once(lone_shop.url, _post(b"Content-Encoding: gzip\r\nContent-Length: 12\r\n", MARK + b"-gzip"))

    assert answer.status == 400
    assert answer.json() == {"error": "invalid_body", "detail": "request body could not be read: Can not decode content-encoding"}
    _assert_one_warning(_log_since(lone_shop, offset, warnings=1), "Can not decode content-encoding")


def test_http10_without_host_is_answered_normally(lone_shop: ShopProcess) -> None:
    offset = _log_size(lone_shop)
    answer = _send_once(lone_shop.url, b"GET /healthz HTTP/1.0\r\n\r\n")

    assert (answer.status, answer.json()) == (200, {"status": "ok"})
    assert lone_shop.log_path.read_bytes()[offset:] == b""


def test_malformed_request_after_a_good_one_on_the_same_connection(lone_shop: ShopProcess) -> None:
    offset = _log_size(lone_shop)
    with RawConnection(lone_shop.url) as conn:
        conn.sock.sendall(GOOD)
        assert conn.answer().status == 200
        conn.sock.sendall(H2_PREFACE)
        second = conn.answer()
        assert conn.closed_by_server()

    assert (second.status, second.json()["error"]) == (400, "malformed_request")
    _assert_one_warning(_log_since(lone_shop, offset, warnings=1), second.json()["detail"])


def test_client_hanging_up_mid_body_is_not_a_database_outage(lone_shop: ShopProcess) -> None:
    """A body cut short by the client is counted as a 4xx, not logged as "database unavailable" (a 503)."""

    def users_4xx() -> float:
        with urllib.request.urlopen(f"{lone_shop.url}/metrics", timeout=10) as resp:
            text = resp.read().decode()
        return metric_value(text, "storefront_http_requests_total", default=0.0, route="/api/users", status_class="4xx")

    before, offset = users_4xx(), _log_size(lone_shop)
    with RawConnection(lone_shop.url) as conn:
        conn.sock.sendall(_post(b"Content-Length: 100\r\n", b'{"username": "'))
    deadline = time.monotonic() + 10
    while users_4xx() == before and time.monotonic() < deadline:
        time.sleep(0.02)

    assert users_4xx() == before + 1
    with urllib.request.urlopen(f"{lone_shop.url}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert metric_value(text, "storefront_http_requests_total", default=0.0, route="/api/users", status_class="5xx") == 0
    assert lone_shop.log_path.read_bytes()[offset:] == b""


@pytest.fixture(scope="module")
def lone_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopProcess]:
    proc = start_gateway_process(tmp_path_factory.mktemp("malformed-gw"), "--latency-ms", "0", "--jitter-ms", "0")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.mark.parametrize("name", ["nul-in-path", "http2-preface", "chunk-size-not-hex", "header-line-too-long"])
def test_gateway_answers_malformed_requests_the_same_way(lone_gateway: ShopProcess, name: str) -> None:
    offset = _log_size(lone_gateway)
    answer = _send_once(lone_gateway.url, MALFORMED[name][0])

    assert (answer.status, answer.headers["connection"].lower()) == (400, "close")
    body = answer.json()
    assert body["error"] == "malformed_request", body
    _assert_one_warning(_log_since(lone_gateway, offset, warnings=1), body["detail"])


def test_gateway_undecodable_body_is_a_400_not_a_500(lone_gateway: ShopProcess) -> None:
    offset = _log_size(lone_gateway)
    raw = (
        b"POST /charges HTTP/1.1\r\nHost: gw\r\nIdempotency-Key: k1\r\nContent-Encoding: deflate\r\n"
        b"Content-Length: 12\r\n\r\n" + MARK + b"-defl"
    )
    answer = _send_once(lone_gateway.url, raw)

    assert answer.status == 400
    assert answer.json() == {"error": "malformed_request", "detail": "Can not decode content-encoding"}
    _assert_one_warning(_log_since(lone_gateway, offset, warnings=1), "Can not decode content-encoding")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        # aiohttp's pure-Python parser (AIOHTTP_NO_EXTENSIONS=1) quotes the bytes without a colon.
        ("Bad status line 'GET /zq7mark HTTP/1.1'", "Bad status line"),
        ("Bad HTTP method in status line 'zq7mark'", "Bad HTTP method in status line"),
        ("Invalid HTTP header: b'zq7mark'", "Invalid HTTP header"),
        ("Duplicate 'Content-Type' header found.", "Duplicate 'Content-Type' header found"),
        ("Invalid char in url path:\n\n  b'/zq7mark\\x00'\n          ^", "Invalid char in url path"),
        ("Bad line\x1b[2K ending\r", "Bad line [2K ending"),  # no control bytes reach a log line
    ],
)
def test_reason_never_quotes_the_request(message: str, reason: str) -> None:
    assert malformed_reason(BadHttpMessage(message)) == reason
