"""Fixtures for the exporters tests: the repo's SLO spec and a request-counting HTTP server.

Nothing here imports ``locust``: Locust runs in subprocesses, so this pytest
process is never monkey-patched by gevent.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from peakload.core import SLOSpec, load_slo_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def slo_spec() -> SLOSpec:
    return load_slo_spec(REPO / "profiles" / "slo.yaml")


class CountingServer:
    """aiohttp on 127.0.0.1 in its own thread; counts requests per route template server-side.

    Routes: ``GET /api/products/{sku}`` 200 JSON; ``/api/missing`` 404;
    ``/api/boom`` 503; ``/api/bad-body`` 200 with a body a check rejects.
    """

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="counting-server", daemon=True)
        self._runner: web.AppRunner | None = None

    def _app(self) -> web.Application:
        @web.middleware
        async def count(request: web.Request, handler):  # type: ignore[no-untyped-def]
            resp = await handler(request)
            self.counts[request.match_info.route.resource.canonical] += 1
            return resp

        async def product(request: web.Request) -> web.Response:
            return web.json_response({"sku": request.match_info["sku"], "price_cents": 1999})

        async def missing(request: web.Request) -> web.Response:
            return web.json_response({"error": "not_found", "detail": "no such thing"}, status=404)

        async def boom(request: web.Request) -> web.Response:
            return web.json_response({"error": "unavailable", "detail": "injected"}, status=503)

        async def bad_body(request: web.Request) -> web.Response:
            return web.json_response({"status": "degraded"})

        app = web.Application(middlewares=[count])
        app.router.add_get("/api/products/{sku}", product)
        app.router.add_get("/api/missing", missing)
        app.router.add_get("/api/boom", boom)
        app.router.add_get("/api/bad-body", bad_body)
        return app

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def start() -> None:
            self._runner = web.AppRunner(self._app(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._ready.set()

        self._loop.run_until_complete(start())
        self._loop.run_forever()

    def start(self) -> CountingServer:
        self._thread.start()
        if not self._ready.wait(timeout=10):
            raise RuntimeError("counting server did not start within 10 s")
        return self

    def snapshot(self) -> dict[str, int]:
        """Counts as of now, read on the server's loop (no torn reads)."""
        fut = asyncio.run_coroutine_threadsafe(self._copy(), self._loop)
        return fut.result(timeout=10)

    async def _copy(self) -> dict[str, int]:
        return dict(self.counts)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer().start()
    try:
        yield server
    finally:
        server.stop()
