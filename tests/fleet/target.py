"""The calibration target, also counting ``GET /`` by the peer address it came from (for the namespace fleet test).

Each worker of the fleet test sends from its own network namespace, so its
own address: ``/stats`` gains ``"peers": {address: [receive times]}``, and
the test can hold each worker's requests as the target saw them against what
the master merged from that worker. Everything else is the calibration
target's (:mod:`storefront.calibration`): its service times, its ``/stats``.

Usage (inside the namespace that owns ``--host``)::

    python -m tests.fleet.target --host 10.211.7.1 --port-file url.txt --service-ms 5:20
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiohttp import web

from storefront.calibration import CalibrationConfig, CalibrationTarget
from storefront.server import announce_and_wait

__all__ = ["create_app", "main"]

MAX_TIMES = 100_000  # receive times kept per peer (bounded; the test sends a few hundred)


def create_app(config: CalibrationConfig) -> web.Application:
    """The calibration model behind ``GET /``, with health and ``/stats`` (plus ``peers``)."""
    target = CalibrationTarget(config)
    peers: dict[str, list[float]] = {}

    async def work(request: web.Request) -> web.Response:
        times = peers.setdefault(request.remote or "?", [])
        if len(times) < MAX_TIMES:
            times.append(time.time())
        return await target.work(request)

    async def stats(request: web.Request) -> web.Response:
        base = await target.stats(request)
        return web.json_response({**_body(base), "peers": peers})

    app = web.Application()
    app.router.add_get("/", work)
    app.router.add_get("/healthz", target.health)
    app.router.add_get("/stats", stats)
    app.router.add_route("*", "/{tail:.*}", target.other)
    return app


def _body(resp: web.StreamResponse) -> dict:
    import json

    assert isinstance(resp, web.Response) and resp.text is not None
    return json.loads(resp.text)


async def _serve(config: CalibrationConfig, host: str, port_file: str) -> None:
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, 0, backlog=1024).start()
    bound_host, port = runner.addresses[0][:2]
    try:
        await announce_and_wait(f"http://{bound_host}:{port}", port_file=port_file, exit_with_parent=True)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", required=True, help="the address to listen on (one of the namespace's own)")
    parser.add_argument("--port-file", required=True, help="where to write the base URL once listening")
    parser.add_argument("--service-ms", default="5:20", help="service time range MIN:MAX in ms")
    args = parser.parse_args(argv)
    low, high = (float(x) / 1000 for x in args.service_ms.split(":"))
    asyncio.run(_serve(CalibrationConfig(service_min=low, service_max=high, stall=0.0, period=10.0), args.host, args.port_file))


if __name__ == "__main__":
    main()
