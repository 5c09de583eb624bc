"""A fault-injecting TCP proxy with a Toxiproxy-style HTTP API (asyncio).

Usage::

    python -m chaos.faultproxy --api-port 8474 --proxy db=127.0.0.1:6001>127.0.0.1:5432

    client = FaultProxyClient("http://127.0.0.1:8474")
    client.add_toxic("db", type="latency", attributes={"latency": 200, "jitter": 50})
    client.reset()

API (a subset of Toxiproxy 2.x, same JSON shapes)::

    GET    /version                       GET /proxies           POST /proxies {name, listen, upstream, enabled}
    GET    /proxies/{p}                   POST /proxies/{p} {enabled|listen|upstream}       DELETE /proxies/{p}
    GET    /proxies/{p}/toxics            POST /proxies/{p}/toxics {name, type, stream, toxicity, attributes}
    GET|POST|DELETE /proxies/{p}/toxics/{t}                      POST /reset (enable all, drop all toxics)

Toxics (``stream`` is ``downstream`` = upstream→client, the default, or ``upstream``):

- ``latency`` {latency, jitter} ms: every chunk is held ``latency ± jitter`` (order kept);
- ``reset_peer`` {timeout} ms: the client connection is reset (TCP RST) ``timeout`` after the toxic applies;
- ``timeout`` {timeout} ms: data is dropped; the connection closes after ``timeout`` (0 = held open: a blackhole).

``toxicity`` (0..1) is the chance that a toxic applies to a given connection,
decided once per connection, as in Toxiproxy.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from chaos.faultclient import FaultProxyClient

__all__ = ["Toxic", "Proxy", "FaultProxy", "FaultProxyClient", "TOXIC_TYPES", "main"]

VERSION = "peakload-faultproxy 1.0 (toxiproxy-compatible subset)"
TOXIC_TYPES = {"latency": {"latency": 0, "jitter": 0}, "reset_peer": {"timeout": 0}, "timeout": {"timeout": 0}}
CHUNK = 32 * 1024


@dataclass
class Toxic:
    """One fault on one direction of a proxy."""

    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict[str, float] = field(default_factory=dict)
    added: float = field(default_factory=time.monotonic)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": self.toxicity, "attributes": self.attributes}


class _Conn:
    """One client connection and its upstream connection."""

    def __init__(self, proxy: Proxy, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.cr, self.cw = cr, cw
        self.uw: asyncio.StreamWriter | None = None
        self.started = time.monotonic()
        self.applies: dict[str, bool] = {}  # toxic name -> does it apply to this connection
        self.closed = asyncio.Event()

    def active(self, stream: str | None = None) -> list[Toxic]:
        out = []
        for t in list(self.proxy.toxics.values()):
            if stream is not None and t.stream != stream:
                continue
            key = f"{t.name}@{t.added}"
            if key not in self.applies:
                self.applies[key] = random.random() < t.toxicity
            if self.applies[key]:
                out.append(t)
        return out

    def reset(self) -> None:
        """Close the client side with an RST (SO_LINGER 0) and the upstream side plainly."""
        sock = self.cw.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()

    def close(self) -> None:
        for w in (self.cw, self.uw):
            if w is not None:
                with contextlib.suppress(Exception):
                    w.close()
        self.closed.set()

    def _due_reset(self) -> bool:
        now = time.monotonic()
        return any(
            t.type == "reset_peer" and now - max(t.added, self.started) >= float(t.attributes.get("timeout", 0)) / 1000
            for t in self.active()
        )

    async def run(self) -> None:
        if self._due_reset():
            self.reset()
            return
        up = self.proxy.upstream.rsplit(":", 1)
        try:
            ur, self.uw = await asyncio.wait_for(asyncio.open_connection(up[0], int(up[1])), timeout=5)
        except (TimeoutError, OSError):
            self.reset()  # the client sees "connection reset", like a refused upstream behind a proxy
            return
        tasks = [
            asyncio.create_task(self._pump(self.cr, self.uw, "upstream")),
            asyncio.create_task(self._pump(ur, self.cw, "downstream")),
            asyncio.create_task(self._supervise()),
        ]
        await self.closed.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _supervise(self) -> None:
        # Time-based toxics: reset_peer and timeout close connections after their delay.
        while not self.closed.is_set():
            now = time.monotonic()
            for t in self.active():
                since = max(t.added, self.started)
                delay = float(t.attributes.get("timeout", 0)) / 1000
                if t.type == "reset_peer" and now - since >= delay:
                    self.reset()
                    return
                if t.type == "timeout" and delay > 0 and now - since >= delay:
                    self.close()
                    return
            await asyncio.sleep(0.02)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stream: str) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        sender = asyncio.create_task(self._send(queue, writer))
        last_release = 0.0
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                if self._due_reset():
                    self.reset()
                    break
                toxics = self.active(stream)
                if any(t.type == "timeout" for t in toxics):
                    continue  # blackholed
                release = time.monotonic()
                for t in toxics:
                    if t.type == "latency":
                        lat = float(t.attributes.get("latency", 0))
                        jit = float(t.attributes.get("jitter", 0))
                        release += max(0.0, lat + random.uniform(-jit, jit)) / 1000
                last_release = max(last_release, release)  # keep byte order under jitter
                queue.put_nowait((last_release, data))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            queue.put_nowait((0.0, b""))
            with contextlib.suppress(Exception):
                await sender
            self.close()

    async def _send(self, queue: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter) -> None:
        while True:
            release, data = await queue.get()
            if not data:
                return
            wait = release - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                writer.write(data)
                await writer.drain()
            except (OSError, RuntimeError):
                return


class Proxy:
    """A listening port forwarding to ``upstream`` with toxics."""

    def __init__(self, name: str, listen: str, upstream: str, enabled: bool = True) -> None:
        self.name, self.listen, self.upstream, self.enabled = name, listen, upstream, enabled
        self.toxics: dict[str, Toxic] = {}
        self.server: asyncio.base_events.Server | None = None
        self.conns: set[_Conn] = set()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_json() for t in self.toxics.values()],
        }

    async def start(self) -> None:
        if self.server is not None:
            return
        host, port = self.listen.rsplit(":", 1)
        self.server = await asyncio.start_server(self._accept, host, int(port), reuse_address=True)
        self.listen = f"{host}:{self.server.sockets[0].getsockname()[1]}"
        self.enabled = True

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None
        for c in list(self.conns):
            c.close()
        self.enabled = False

    async def _accept(self, cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        conn = _Conn(self, cr, cw)
        self.conns.add(conn)
        try:
            await conn.run()
        finally:
            self.conns.discard(conn)


def _toxic_from(body: dict[str, Any], existing: Toxic | None = None) -> Toxic:
    ttype = body.get("type", existing.type if existing else None)
    if ttype not in TOXIC_TYPES:
        raise ValueError(f"toxic type must be one of {sorted(TOXIC_TYPES)}, got {ttype!r}")
    stream = body.get("stream", existing.stream if existing else "downstream")
    if stream not in ("upstream", "downstream"):
        raise ValueError(f"stream must be 'upstream' or 'downstream', got {stream!r}")
    toxicity = float(body.get("toxicity", existing.toxicity if existing else 1.0))
    if not 0.0 <= toxicity <= 1.0:
        raise ValueError(f"toxicity must be within 0..1, got {toxicity}")
    attrs = dict(TOXIC_TYPES[ttype])
    if existing:
        attrs.update(existing.attributes)
    for k, v in (body.get("attributes") or {}).items():
        if k not in attrs:
            raise ValueError(f"{ttype} toxic has no attribute {k!r}; expected {sorted(attrs)}")
        if float(v) < 0:
            raise ValueError(f"{ttype}.{k} must be >= 0, got {v}")
        attrs[k] = float(v)
    name = body.get("name") or (existing.name if existing else f"{ttype}_{stream}")
    return Toxic(name=name, type=ttype, stream=stream, toxicity=toxicity, attributes=attrs)


class FaultProxy:
    """The proxies plus the HTTP API (an aiohttp app)."""

    def __init__(self) -> None:
        self.proxies: dict[str, Proxy] = {}

    async def add_proxy(self, name: str, listen: str, upstream: str, enabled: bool = True) -> Proxy:
        if name in self.proxies:
            raise KeyError(name)
        p = Proxy(name, listen, upstream, enabled)
        if enabled:
            await p.start()
        self.proxies[name] = p
        return p

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_errors])
        r = app.router
        r.add_get("/version", lambda _: web.Response(text=VERSION))
        r.add_get("/metrics", self._metrics)
        r.add_get("/proxies", self._list)
        r.add_post("/proxies", self._create)
        r.add_post("/reset", self._reset)
        r.add_get("/proxies/{p}", self._get)
        r.add_post("/proxies/{p}", self._update)
        r.add_delete("/proxies/{p}", self._delete)
        r.add_get("/proxies/{p}/toxics", self._toxics)
        r.add_post("/proxies/{p}/toxics", self._add_toxic)
        r.add_get("/proxies/{p}/toxics/{t}", self._get_toxic)
        r.add_post("/proxies/{p}/toxics/{t}", self._update_toxic)
        r.add_delete("/proxies/{p}/toxics/{t}", self._delete_toxic)
        return app

    def _proxy(self, req: web.Request) -> Proxy:
        name = req.match_info["p"]
        if name not in self.proxies:
            raise web.HTTPNotFound(text=json.dumps({"error": "proxy not found", "status": 404}), content_type="application/json")
        return self.proxies[name]

    async def _metrics(self, _: web.Request) -> web.Response:
        lines = ["# HELP faultproxy_toxics Toxics currently set, by proxy and type.", "# TYPE faultproxy_toxics gauge"]
        for p in self.proxies.values():
            for ttype in TOXIC_TYPES:
                n = sum(1 for t in p.toxics.values() if t.type == ttype)
                lines.append(f'faultproxy_toxics{{proxy="{p.name}",type="{ttype}"}} {n}')
        lines += ["# HELP faultproxy_connections Open client connections by proxy.", "# TYPE faultproxy_connections gauge"]
        lines += [f'faultproxy_connections{{proxy="{p.name}"}} {len(p.conns)}' for p in self.proxies.values()]
        lines += ["# HELP faultproxy_enabled 1 when the proxy listens.", "# TYPE faultproxy_enabled gauge"]
        lines += [f'faultproxy_enabled{{proxy="{p.name}"}} {int(p.enabled)}' for p in self.proxies.values()]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _list(self, _: web.Request) -> web.Response:
        return web.json_response({n: p.to_json() for n, p in self.proxies.items()})

    async def _create(self, req: web.Request) -> web.Response:
        body = await req.json()
        for k in ("name", "upstream"):
            if not body.get(k):
                raise ValueError(f"missing field {k!r}")
        if body["name"] in self.proxies:
            return web.json_response({"error": "proxy already exists", "status": 409}, status=409)
        p = await self.add_proxy(body["name"], body.get("listen") or "127.0.0.1:0", body["upstream"], bool(body.get("enabled", True)))
        return web.json_response(p.to_json(), status=201)

    async def _get(self, req: web.Request) -> web.Response:
        return web.json_response(self._proxy(req).to_json())

    async def _update(self, req: web.Request) -> web.Response:
        p, body = self._proxy(req), await req.json()
        if "upstream" in body:
            p.upstream = body["upstream"]
        if "listen" in body and body["listen"] != p.listen:
            await p.stop()
            p.listen = body["listen"]
            if body.get("enabled", True):
                await p.start()
        if "enabled" in body:
            await (p.start() if body["enabled"] else p.stop())
        return web.json_response(p.to_json())

    async def _delete(self, req: web.Request) -> web.Response:
        p = self._proxy(req)
        await p.stop()
        del self.proxies[p.name]
        return web.Response(status=204)

    async def _reset(self, _: web.Request) -> web.Response:
        for p in self.proxies.values():
            p.toxics.clear()
            if not p.enabled:
                await p.start()
        return web.Response(status=204)

    async def _toxics(self, req: web.Request) -> web.Response:
        return web.json_response([t.to_json() for t in self._proxy(req).toxics.values()])

    async def _add_toxic(self, req: web.Request) -> web.Response:
        p = self._proxy(req)
        toxic = _toxic_from(await req.json())
        if toxic.name in p.toxics:
            return web.json_response({"error": "toxic already exists", "status": 409}, status=409)
        p.toxics[toxic.name] = toxic
        return web.json_response(toxic.to_json())

    def _toxic(self, req: web.Request) -> tuple[Proxy, Toxic]:
        p = self._proxy(req)
        t = p.toxics.get(req.match_info["t"])
        if t is None:
            raise web.HTTPNotFound(text=json.dumps({"error": "toxic not found", "status": 404}), content_type="application/json")
        return p, t

    async def _get_toxic(self, req: web.Request) -> web.Response:
        return web.json_response(self._toxic(req)[1].to_json())

    async def _update_toxic(self, req: web.Request) -> web.Response:
        p, t = self._toxic(req)
        new = _toxic_from({**await req.json(), "name": t.name, "type": t.type}, existing=t)
        new.added = t.added
        p.toxics[t.name] = new
        return web.json_response(new.to_json())

    async def _delete_toxic(self, req: web.Request) -> web.Response:
        p, t = self._toxic(req)
        del p.toxics[t.name]
        return web.Response(status=204)


@web.middleware
async def _errors(req: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(req)
    except (ValueError, KeyError, json.JSONDecodeError) as exc:
        return web.json_response({"error": str(exc), "status": 400}, status=400)


async def _serve(api_port: int, proxies: list[tuple[str, str, str]], port_file: str | None) -> None:
    fp = FaultProxy()
    for name, listen, upstream in proxies:
        await fp.add_proxy(name, listen, upstream)
    runner = web.AppRunner(fp.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", api_port)
    await site.start()
    if port_file:
        bound = runner.addresses[0][1]
        with open(port_file, "w") as f:
            f.write(f"{bound}\n")
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """``python -m chaos.faultproxy --api-port 8474 --proxy NAME=LISTEN>UPSTREAM ...``"""
    ap = argparse.ArgumentParser(prog="python -m chaos.faultproxy", description=__doc__.splitlines()[0])
    ap.add_argument("--api-port", type=int, default=8474)
    ap.add_argument("--proxy", action="append", default=[], help="NAME=127.0.0.1:LISTEN>127.0.0.1:UPSTREAM")
    ap.add_argument("--port-file")
    args = ap.parse_args(argv)
    proxies = []
    for spec in args.proxy:
        name, _, rest = spec.partition("=")
        listen, _, upstream = rest.partition(">")
        if not (name and listen and upstream):
            ap.error(f"--proxy must look like NAME=HOST:PORT>HOST:PORT, got {spec!r}")
        proxies.append((name, listen, upstream))
    asyncio.run(_serve(args.api_port, proxies, args.port_file))


if __name__ == "__main__":
    main()
