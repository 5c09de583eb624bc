"""The calibration target's latency model on the shopper's first screen, for calibrating the shopper journey.

``python -m storefront calibrate`` holds ``GET /`` and answers plain text; a
shopper visit opens ``GET /api/home`` and checks for a JSON body. This serves
the same :class:`~storefront.calibration.CalibrationTarget` — the same stalls,
service times and counters (its receptions count as ``GET /`` in ``/stats``)
— on ``GET /api/home`` with a JSON first screen. The rest of a visit gets the
target's immediate 404: only the journey's first request is under test.

Usage::

    python -m tests.openmodel.shopper_target --port-file url.txt --service-ms 100:500 --stall 1 --period 10
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from storefront.calibration import CalibrationConfig, CalibrationTarget
from storefront.server import announce_and_wait

__all__ = ["create_app", "main"]


def create_app(config: CalibrationConfig) -> web.Application:
    """The calibration model behind ``GET /api/home``, health and ``/stats`` as on the calibration target."""
    target = CalibrationTarget(config)

    async def first_screen(request: web.Request) -> web.Response:
        await target.work(request)  # counted as "GET /", held through a stall, then the service time
        return web.json_response({"categories": []})

    app = web.Application()
    app.router.add_get("/api/home", first_screen)
    app.router.add_get("/healthz", target.health)
    app.router.add_get("/stats", target.stats)
    app.router.add_route("*", "/{tail:.*}", target.other)
    return app


async def _serve(config: CalibrationConfig, port_file: str) -> None:
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, backlog=4096).start()
    host, port = runner.addresses[0][:2]
    try:
        await announce_and_wait(f"http://{host}:{port}", port_file=port_file, exit_with_parent=True)
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port-file", required=True, help="where to write the base URL once listening")
    parser.add_argument("--service-ms", default="100:500", help="service time range MIN:MAX in ms")
    parser.add_argument("--stall", type=float, default=1.0, help="seconds every response is held in each stall")
    parser.add_argument("--period", type=float, default=10.0, help="seconds from one stall start to the next")
    args = parser.parse_args(argv)
    low, high = (float(x) / 1000 for x in args.service_ms.split(":"))
    asyncio.run(_serve(CalibrationConfig(service_min=low, service_max=high, stall=args.stall, period=args.period), args.port_file))


if __name__ == "__main__":
    main()
