"""The lean HTTP path (scenarios/http.py) against a real aiohttp server: keep-alive, cookies, redirects, framing, failures.

The session runs in a child process (importing Locust monkey-patches the importer); it prints, per
request, the status, the body the session read, and the request event Locust's listeners got.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from peakload.core.net import free_port
from tests.aiohttp_thread import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]

_DRIVER = r"""
import json, sys
from locust.contrib.fasthttp import FastHttpSession
from locust.event import Events
from scenarios.http import LeanSession

spec = json.load(sys.stdin)
events = Events()
seen = []
events.request.add_listener(lambda **kw: seen.append({
    "type": kw["request_type"], "name": kw["name"], "url": kw["url"], "length": kw["response_length"],
    "context": kw["context"], "status": getattr(kw["response"], "status_code", None),
    "exception": None if kw["exception"] is None else type(kw["exception"]).__name__,
    "message": None if kw["exception"] is None else str(kw["exception"]),
}))
http = FastHttpSession(spec["url"], request_event=events.request, user=None, network_timeout=spec.get("timeout", 5.0), connection_timeout=2.0)
session = LeanSession.of(http)
from gevent.monkey import get_original
busy = get_original("time", "sleep")  # the real sleep: this greenlet holds the loop, as a long run of greenlets would
out = []
for r in spec["requests"]:
    if r.get("hold_loop"):
        busy(r["hold_loop"])
    with session.request(r["method"], r["path"], name=r.get("name"), json=r.get("json"), headers={"X-Peakload-Run": "t"},
                         context={"step": r["path"]}) as resp:
        if r.get("fail"):
            resp.failure(r["fail"])
        out.append({"status": resp.status_code, "body": (resp.content or b"").decode(), "cookies": dict(session.cookies),
                    "jar": sorted(f"{c.name}={c.value}" for c in http.cookiejar)})
json.dump({"out": out, "events": seen}, sys.stdout)
"""


def _app(peers: list[Any]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        peers.append(request.transport.get_extra_info("peername")[1] if request.transport else None)
        path = request.path
        if path == "/set":
            resp = web.json_response({"ok": True})
            resp.set_cookie("csrftoken", "abc")
            resp.set_cookie("sessionid", "s1")
            return resp
        if path == "/echo":
            body = await request.read()
            if request.query.get("headers"):
                return web.json_response([[k.decode(), v.decode()] for k, v in request.raw_headers])
            return web.json_response({"cookie": request.headers.get("Cookie"), "method": request.method, "body": body.decode()})
        if path == "/forget":
            resp = web.json_response({})
            resp.del_cookie("sessionid")
            return resp
        if path == "/moved":
            raise web.HTTPFound("/echo")
        if path == "/chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            resp.content_type = "application/json"
            await resp.prepare(request)
            await resp.write(b'{"part": ')
            await resp.write(b'"two"}')
            await resp.write_eof()
            return resp
        if path == "/gzip":
            resp = web.json_response({"big": "x" * 2000})
            resp.enable_compression(web.ContentCoding.gzip)
            return resp
        if path == "/close":
            resp = web.json_response({"closing": True})
            resp.force_close()
            return resp
        if path == "/slow":
            await asyncio.sleep(2.0)
            return web.json_response({"late": True})
        if path == "/wait":
            await asyncio.sleep(float(request.query["s"]))
            return web.json_response({"waited": request.query["s"]})
        if path == "/boom":
            return web.json_response({"error": "boom"}, status=500)
        return web.json_response({"path": path})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
def server() -> Any:
    peers: list[Any] = []
    with serve_in_thread(_app(peers)) as url:
        yield url, peers


def drive(url: str, requests: list[dict[str, Any]], *, timeout: float = 5.0) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER],
        input=json.dumps({"url": url, "requests": requests, "timeout": timeout}),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_one_kept_connection_and_locusts_event_fields(server) -> None:
    url, peers = server
    got = drive(url, [{"method": "GET", "path": f"/p/{i}", "name": "/p/{i}"} for i in range(5)])
    assert len(set(peers)) == 1 and len(peers) == 5  # five requests, one connection
    assert [e["name"] for e in got["events"]] == ["/p/{i}"] * 5
    first = got["events"][0]
    assert first["url"] == url + "/p/0" and first["type"] == "GET" and first["exception"] is None
    assert first["context"] == {"step": "/p/0"} and first["length"] == len(got["out"][0]["body"])


def test_cookies_kept_sent_and_forgotten_redirect_followed(server) -> None:
    url, _ = server
    got = drive(
        url,
        [
            {"method": "POST", "path": "/set", "json": {"u": 1}},
            {"method": "GET", "path": "/echo"},
            {"method": "POST", "path": "/forget"},
            {"method": "POST", "path": "/moved", "json": {"x": 1}},
        ],
    )
    out = got["out"]
    assert out[0]["cookies"] == {"csrftoken": "abc", "sessionid": "s1"}
    assert json.loads(out[1]["body"])["cookie"] in ("csrftoken=abc; sessionid=s1", "sessionid=s1; csrftoken=abc")
    assert out[2]["cookies"] == {"csrftoken": "abc"}
    assert out[0]["jar"] == ["csrftoken=abc", "sessionid=s1"] and out[2]["jar"] == ["csrftoken=abc"]  # mirrored for adapters reading it
    moved = json.loads(out[3]["body"])  # 302 after a POST: the browser's GET, without the body, with the cookies
    assert out[3]["status"] == 200 and moved == {"cookie": "csrftoken=abc", "method": "GET", "body": ""}
    assert len(got["events"]) == 4 and got["events"][3]["url"] == url + "/moved" and got["events"][3]["type"] == "POST"


def test_chunked_gzip_and_a_closing_server(server) -> None:
    url, peers = server
    got = drive(url, [{"method": "GET", "path": p} for p in ("/chunked", "/gzip", "/close", "/after")])
    out = got["out"]
    assert json.loads(out[0]["body"]) == {"part": "two"}
    assert json.loads(out[1]["body"]) == {"big": "x" * 2000}
    assert [o["status"] for o in out] == [200, 200, 200, 200] and all(e["exception"] is None for e in got["events"])
    assert peers[2] != peers[3]  # the server closed after /close: a new connection for the next request


def test_bad_status_no_answer_and_a_marked_failure(server) -> None:
    url, _ = server
    got = drive(url, [{"method": "GET", "path": "/boom"}, {"method": "GET", "path": "/fine", "fail": "order_id missing"}])
    assert got["events"][0]["exception"] == "LocustBadStatusCode" and got["out"][0]["status"] == 500
    assert got["events"][1]["exception"] == "CatchResponseError" and got["events"][1]["message"] == "order_id missing"
    dead = drive(f"http://127.0.0.1:{free_port()}", [{"method": "POST", "path": "/x", "json": {}}])
    assert dead["out"][0]["status"] == 0 and dead["events"][0]["exception"] == "ConnectionRefusedError"


def test_an_answer_later_than_the_network_timeout_fails_and_the_next_request_gets_a_new_connection(server) -> None:
    url, peers = server
    got = drive(
        url, [{"method": "GET", "path": "/first"}, {"method": "GET", "path": "/slow"}, {"method": "GET", "path": "/next"}], timeout=0.5
    )
    assert [o["status"] for o in got["out"]] == [200, 0, 200], [(e["exception"], e["message"]) for e in got["events"]]
    assert got["events"][1]["exception"] == "TimeoutError" and got["events"][2]["exception"] is None
    assert got["events"][1]["context"] == {"step": "/slow"} and got["events"][1]["length"] == 0
    assert peers[0] == peers[1] != peers[2]  # the timed-out connection is not reused


def test_the_network_timeout_counts_from_when_the_request_starts_not_from_the_loops_last_turn(server) -> None:
    """A request made after greenlets held the loop for 1.2 s still gets its whole 1.5 s network timeout.

    libev's cached time is as old as the loop's last turn; a timer started from it (without update) would
    expire 1.2 s early and fail this 0.6 s answer: the lean path's session timer starts from the real now.
    """
    url, _ = server
    got = drive(url, [{"method": "GET", "path": "/first"}, {"method": "GET", "path": "/wait?s=0.6", "hold_loop": 1.2}], timeout=1.5)
    assert [o["status"] for o in got["out"]] == [200, 200], [(e["exception"], e["message"]) for e in got["events"]]
    assert json.loads(got["out"][1]["body"]) == {"waited": "0.6"}


def test_each_request_gets_the_whole_network_timeout_however_long_the_ones_before_took(server) -> None:
    """Four 0.4 s answers on one kept connection with a 1 s timeout: each is bounded on its own, none adds up.

    (A libev timer restarted after a stop goes on with what was left of its time: one timer kept per
    session failed the third of these.)
    """
    url, peers = server
    got = drive(url, [{"method": "GET", "path": "/wait?s=0.4"} for _ in range(4)], timeout=1.0)
    assert [o["status"] for o in got["out"]] == [200] * 4, [(e["exception"], e["message"]) for e in got["events"]]
    assert len(set(peers)) == 1


_SHOP_DRIVER = r"""
import json, sys
from locust.contrib.fasthttp import FastHttpSession
from locust.event import Events
from peakload.core import TargetSpec
from scenarios.shop import BaseShop

class EchoShop(BaseShop):
    PATHS = {"health": "/echo", "echo": "/echo"}

events = Events()
shop = EchoShop(FastHttpSession(sys.argv[1], request_event=events.request, user=None), target=TargetSpec(), run_id="run-7")
out = []
for extra in ({"Idempotency-Key": "k1"}, {"Accept": "text/html"}):
    with shop.call("home", "GET", "echo", query={"headers": 1}, headers=extra) as resp:
        out.append(resp.js())
json.dump({"lean": shop.session is not None, "out": out}, sys.stdout)
"""


def test_an_adapters_own_headers_are_added_or_override_the_usual_ones_once(server) -> None:
    url, _ = server
    proc = subprocess.run(
        [sys.executable, "-c", _SHOP_DRIVER, url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout)
    assert got["lean"] is True
    first, second = ([(k.lower(), v) for k, v in seen] for seen in got["out"])
    assert ("x-peakload-run", "run-7") in first and ("idempotency-key", "k1") in first and ("accept", "application/json") in first
    assert [v for k, v in second if k == "accept"] == ["text/html"]  # overridden, sent once
    assert not any(k == "idempotency-key" for k, _ in second)  # the first request's own header is not kept
