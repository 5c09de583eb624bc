"""The control endpoint of one master (``peakload run --control HOST:PORT``): the fleet gate stops the run through it.

A tiny HTTP server on a thread of the ``peakload run`` process, bound to loopback
(or an address allowlisted with ``--allow-control``), every request authenticated
with the fleet's shared token (``Authorization: Bearer <token>``, compared in
constant time):

- ``POST /abort`` with ``{"reason": "..."}`` → 202; the run aborts as its own
  live gate would (``aborted: <reason> (from the fleet gate at <peer>)``);
  409 once the run no longer runs.
- ``GET /status`` → ``{"run_id", "shard", "state", "aborted"}``; ``state`` is
  ``starting``, ``running``, ``stopping`` or ``finished``.

401 without the right token, 400 for a body that is not that JSON object, 413 over
:data:`MAX_BODY_BYTES`, 404/405 for any other path or method.

Usage::

    spec = check_control("127.0.0.1:9700", Path("fleet.token"), allow=[])   # UsageError (exit 2) when wrong
    server = ControlServer(spec, run_id="r1", shard="0/3"); server.start()
    asked = server.poll(None)   # the runner's loop: an abort reason asked for, or None
    server.close(aborted); server.finish(); server.stop()
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from peakload.core import ConfigError, UsageError
from peakload.core.inputs import decode_utf8, read_bytes
from peakload.core.net import is_loopback

__all__ = [
    "ControlSpec",
    "ControlServer",
    "check_control",
    "parse_listen",
    "read_token",
    "MAX_BODY_BYTES",
    "MAX_REASON_CHARS",
    "MAX_TOKEN_BYTES",
    "MIN_TOKEN_CHARS",
]

MAX_BODY_BYTES = 4096
MAX_REASON_CHARS = 500
MAX_TOKEN_BYTES = 4096
MIN_TOKEN_CHARS = 16  # a shared secret shorter than this is guessable
LINGER_S = 15.0  # a run that aborted itself answers /status this long at most, until a fleet gate has read why
_REQUEST_TIMEOUT_S = 5.0  # a client that opens a connection and sends nothing holds a thread this long at most


def parse_listen(text: str, *, field_name: str = "--control") -> tuple[str, int]:
    """``127.0.0.1:9700`` or ``[::1]:9700`` → (host, port); the host is an IP address or ``localhost``, the port 1..65535."""
    example = "like 127.0.0.1:9700"
    text = text.strip()
    if text.startswith("["):
        host, sep, port = text[1:].partition("]:")
    else:
        host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise UsageError(f"{field_name}: expected HOST:PORT {example}, got {text[:60]!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UsageError(f"{field_name}: expected a port 1..65535 in {text[:60]!r}, got {port[:20]!r}")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UsageError(f"{field_name}: expected an IP address or localhost to listen on, got {host[:60]!r}") from None
    return host, int(port)


def read_token(path: Path, *, field_name: str = "--control-token-file") -> str:
    """The shared token: the file's text without surrounding whitespace, printable ASCII without spaces, 16..4096 chars."""
    try:
        raw = read_bytes(path, what="token", max_bytes=MAX_TOKEN_BYTES)
        text = decode_utf8(raw, what="token", path=path).strip()
    except ConfigError as exc:
        raise UsageError(f"{field_name}: {exc}") from None
    if not text:
        raise UsageError(f"{field_name}: {path}: is empty; expected one line with the fleet's shared token")
    if any(not (33 <= ord(ch) <= 126) for ch in text):
        raise UsageError(f"{field_name}: {path}: expected one token of printable ASCII without spaces or line breaks")
    if len(text) < MIN_TOKEN_CHARS:
        raise UsageError(
            f"{field_name}: {path}: the token is {len(text)} characters; expected at least {MIN_TOKEN_CHARS} "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return text


@dataclass(frozen=True, kw_only=True)
class ControlSpec:
    """Where the control endpoint listens and the token it accepts (checked by :func:`check_control`)."""

    host: str
    port: int
    token_file: Path
    token: str = field(repr=False)


def check_control(listen: str | None, token_file: Path | None, *, allow: list[str]) -> ControlSpec | None:
    """``--control`` and ``--control-token-file`` checked together (both or neither); None when neither is given.

    The host must be loopback, or allowlisted with ``--allow-control HOST`` (``0.0.0.0`` too, for a pod).
    """
    if listen is None and token_file is None:
        return None
    if listen is None:
        raise UsageError("--control-token-file: give --control HOST:PORT too (where the control endpoint listens)")
    if token_file is None:
        raise UsageError("--control: give --control-token-file FILE too (the fleet's shared token; the endpoint has no open mode)")
    host, port = parse_listen(listen)
    if not is_loopback(host) and host not in allow:
        raise UsageError(
            f"--control: refusing to listen on {host}: only loopback addresses unless the address is allowlisted (--allow-control {host})"
        )
    return ControlSpec(host=host, port=port, token_file=token_file, token=read_token(token_file))


class ControlServer:
    """The endpoint of one run; the runner's loop asks :meth:`poll` for an abort and reports its own state."""

    def __init__(self, spec: ControlSpec, *, run_id: str, shard: str | None) -> None:
        self.spec = spec
        self.run_id = run_id
        self.shard = shard
        self._lock = threading.Lock()
        self._state = "starting"
        self._asked: str | None = None  # the fleet gate's reason, with where it came from
        self._aborted: str | None = None  # the run's outcome reason, once it has one
        self._told = threading.Event()  # a /status has shown this run's own abort after the load stopped
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.spec.host}]" if ":" in self.spec.host else self.spec.host
        return f"http://{host}:{self.spec.port}"

    def start(self) -> str:
        """Bind and serve on a daemon thread; UsageError (exit 2) when the address cannot be bound."""
        handler = type("Handler", (_Handler,), {"control": self})
        server_class = type("Server", (ThreadingHTTPServer,), {"daemon_threads": True})
        if ":" in self.spec.host:
            server_class.address_family = socket.AF_INET6
        try:
            self._httpd = server_class((self.spec.host, self.spec.port), handler)
        except OSError as exc:
            raise UsageError(f"--control: cannot listen on {self.spec.host}:{self.spec.port}: {exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self.url

    def stop(self, *, linger: float = LINGER_S) -> None:
        """Stop serving (idempotent): the fleet gate then finds the endpoint gone.

        A run that aborted on its own (not on the fleet gate's word) first waits, up to ``linger`` seconds,
        for a /status to show that abort: the gate passes it on to every other shard."""
        with self._lock:
            own_abort = self._aborted is not None and self._asked is None and self._httpd is not None
        if own_abort:
            self._told.wait(linger)
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # the runner's side

    def running(self) -> None:
        with self._lock:
            if self._state == "starting":
                self._state = "running"

    def poll(self, aborted: str | None) -> str | None:
        """Record the run's own abort (shown by /status); return the abort reason the fleet gate asked for, if any."""
        with self._lock:
            if aborted and self._aborted is None:
                self._aborted = aborted
            return self._asked

    def close(self, aborted: str | None) -> None:
        """The load generator has stopped: no more aborts are taken (409), and /status shows the outcome."""
        with self._lock:
            self._state = "stopping"
            self._aborted = aborted

    def finish(self) -> None:
        with self._lock:
            self._state = "finished"

    # the handler's side

    def status(self) -> dict[str, Any]:
        with self._lock:
            if self._aborted is not None and self._state in ("stopping", "finished"):
                self._told.set()
            return {"run_id": self.run_id, "shard": self.shard, "state": self._state, "aborted": self._aborted}

    def ask_abort(self, reason: str, peer: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            if self._state not in ("starting", "running"):
                return 409, {"error": f"the run is no longer running (state: {self._state})", "state": self._state}
            if self._asked is None:
                self._asked = f"{reason} (from the fleet gate at {peer})"
            return 202, {"state": "aborting", "reason": self._asked}

    def authorized(self, header: str | None) -> bool:
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.strip().encode("utf-8", "replace"), self.spec.token.encode())


class _Handler(BaseHTTPRequestHandler):
    control: ControlServer  # set on the subclass ControlServer.start makes
    timeout = _REQUEST_TIMEOUT_S
    server_version = "peakload-control"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return  # the run's own output stays the progress line

    def _send(self, status: int, doc: dict[str, Any], *, extra: dict[str, str] | None = None) -> None:
        body = (json.dumps(doc) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        if self.control.authorized(self.headers.get("Authorization")):
            return True
        self.close_connection = True
        self._send(401, {"error": "expected Authorization: Bearer <the fleet's token>"}, extra={"WWW-Authenticate": "Bearer"})
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path != "/status":
            self._send(404 if self.path != "/abort" else 405, {"error": "expected GET /status or POST /abort"})
            return
        if self._authorized():
            self._send(200, self.control.status())

    def do_POST(self) -> None:  # noqa: N802
        if self.path != "/abort":
            self.close_connection = True
            self._send(404 if self.path != "/status" else 405, {"error": "expected GET /status or POST /abort"})
            return
        if not self._authorized():
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            self.close_connection = True
            self._send(411 if length_text is None else 400, {"error": "expected a Content-Length"})
            return
        length = int(length_text)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(413, {"error": f"body is {length} bytes; expected at most {MAX_BODY_BYTES}"})
            return
        raw = self.rfile.read(length)
        reason, problem = _reason_of(raw)
        if problem is not None:
            self._send(400, {"error": problem})
            return
        status, doc = self.control.ask_abort(reason, self.client_address[0])
        self._send(status, doc)

    def do_PUT(self) -> None:  # noqa: N802
        self.close_connection = True
        self._send(405, {"error": "expected GET /status or POST /abort"})

    do_DELETE = do_PATCH = do_PUT  # noqa: N815


def _reason_of(raw: bytes) -> tuple[str, str | None]:
    """The ``reason`` of an abort body, or ("", what is wrong with the body)."""
    expected = f'expected a JSON object {{"reason": "..."}} with 1..{MAX_REASON_CHARS} printable characters'
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "", f"body is not JSON; {expected}"
    if not isinstance(doc, dict) or not isinstance(doc.get("reason"), str):
        return "", expected
    reason = doc["reason"].strip()
    if not reason or len(reason) > MAX_REASON_CHARS or not reason.isprintable():
        return "", f"reason: {expected} (got {len(reason)} characters)"
    return reason, None
