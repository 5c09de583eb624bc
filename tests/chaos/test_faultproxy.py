"""The fault proxy: a real subprocess in front of a real echo server on loopback."""

from __future__ import annotations

import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chaos.faultproxy import FaultProxyClient
from chaos.platform.procs import free_ports, wait_http

ROOT = Path(__file__).resolve().parents[2]


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture()
def echo_port() -> Iterator[int]:
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


@pytest.fixture()
def proxy(echo_port: int) -> Iterator[tuple[FaultProxyClient, int]]:
    api, listen = free_ports(2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "chaos.faultproxy", "--api-port", str(api), "--proxy", f"echo=127.0.0.1:{listen}>127.0.0.1:{echo_port}"],
        cwd=ROOT,
    )
    try:
        wait_http(f"http://127.0.0.1:{api}/version", timeout=15, pid=proc.pid, what="faultproxy")
        yield FaultProxyClient(f"http://127.0.0.1:{api}"), listen
    finally:
        proc.terminate()
        proc.wait(10)


def _roundtrip(port: int, payload: bytes = b"ping", timeout: float = 5.0) -> tuple[bytes, float]:
    t0 = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    return got, time.monotonic() - t0


def _how_it_ends(s: socket.socket, within: float = 5.0) -> str:
    """How the proxy ends a connection: "reset" (RST: recv fails with ECONNRESET), "eof" (a clean FIN) or "open".

    Only reads, never writes: writing after the peer's FIN makes the kernel answer with an RST, which would
    turn a clean close into a "reset" and hide exactly the bug these tests are about.
    """
    s.settimeout(within)
    try:
        while data := s.recv(65536):
            del data  # bytes still in flight before the end are not the end
    except ConnectionResetError:
        return "reset"
    except TimeoutError:
        return "open"
    return "eof"


def _fate_of_new_connection(port: int, within: float = 5.0) -> tuple[str, socket.socket | None]:
    """Connect and watch without writing; the RST of an immediate reset may already arrive during connect."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except ConnectionResetError:
        return "reset", None
    end = _how_it_ends(s, within)
    if end != "open":
        s.close()
        return end, None
    return end, s


def test_proxy_forwards_bytes_unchanged(proxy: tuple[FaultProxyClient, int]) -> None:
    client, port = proxy
    payload = bytes(range(256)) * 1000
    got, _ = _roundtrip(port, payload)
    assert got == payload
    assert client.proxies()["echo"]["enabled"] is True


def test_latency_toxic_delays_and_removal_restores(proxy: tuple[FaultProxyClient, int]) -> None:
    client, port = proxy
    client.add_toxic("echo", type="latency", attributes={"latency": 300, "jitter": 0})
    assert [t["type"] for t in client.proxies()["echo"]["toxics"]] == ["latency"]
    got, slow = _roundtrip(port)
    assert got == b"ping"
    assert slow >= 0.3  # the answer was held for the toxic's latency
    client.remove_toxic("echo", "latency_downstream")
    assert client.proxies()["echo"]["toxics"] == []
    assert _roundtrip(port)[0] == b"ping"


def test_reset_peer_resets_new_connections(proxy: tuple[FaultProxyClient, int]) -> None:
    client, port = proxy
    client.add_toxic("echo", type="reset_peer", attributes={"timeout": 0})
    assert _fate_of_new_connection(port)[0] == "reset"  # an RST, not the FIN of a clean close
    client.reset()
    assert _roundtrip(port)[0] == b"ping"


def test_timeout_toxic_closes_cleanly_which_the_reset_tests_tell_apart(proxy: tuple[FaultProxyClient, int]) -> None:
    # The same observable as the reset tests, on a close that is clean by design: it must read "eof".
    client, port = proxy
    client.add_toxic("echo", type="timeout", stream="upstream", attributes={"timeout": 200})
    assert _fate_of_new_connection(port)[0] == "eof"


def test_timeout_zero_blackholes_until_removed(proxy: tuple[FaultProxyClient, int]) -> None:
    client, port = proxy
    client.add_toxic("echo", type="timeout", stream="upstream", attributes={"timeout": 0})
    with pytest.raises(socket.timeout):
        _roundtrip(port, timeout=0.5)
    client.reset()
    assert _roundtrip(port)[0] == b"ping"


def test_api_rejects_unknown_toxic_with_message(proxy: tuple[FaultProxyClient, int]) -> None:
    client, _ = proxy
    with pytest.raises(RuntimeError, match="toxic type must be one of"):
        client.add_toxic("echo", type="bandwidth")
    with pytest.raises(RuntimeError, match="404"):
        client.add_toxic("nope", type="latency")


def test_toxicity_applies_per_connection(proxy: tuple[FaultProxyClient, int]) -> None:
    client, port = proxy
    client.add_toxic("echo", type="reset_peer", toxicity=0.5, attributes={"timeout": 0})
    outcomes = []
    for _ in range(40):
        # a toxic connection is reset on accept; a spared one stays open and echoes
        end, s = _fate_of_new_connection(port, within=0.2)
        if s is not None:
            with s:
                s.settimeout(5)
                s.sendall(b"ping")
                end = "echo" if s.recv(4) == b"ping" else "no echo"
        outcomes.append(end)
    assert set(outcomes) == {"reset", "echo"}, outcomes  # some pass, some are reset, none closed any other way


def test_reset_peer_with_timeout_cuts_an_open_connection(proxy: tuple[FaultProxyClient, int]) -> None:
    client, port = proxy
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"a")
        assert s.recv(1) == b"a"  # the connection works before the toxic
        t0 = time.monotonic()
        client.add_toxic("echo", type="reset_peer", attributes={"timeout": 200})
        assert _how_it_ends(s) == "reset"  # an RST, not the FIN of a clean close
        assert time.monotonic() - t0 >= 0.2  # not before the toxic's timeout
