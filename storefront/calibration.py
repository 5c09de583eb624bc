"""A calibration target: answers with a known latency distribution, including periodic full stalls.

``GET /`` takes a service time ``X`` uniform on ``[service_min, service_max]``
(a golden-ratio sequence by default: evenly spread and reproducible; or seeded
random). Every ``period`` seconds the target stalls for ``stall`` seconds: a
request received ``u`` seconds into a stall first waits ``stall − u`` for the
stall to end, then takes its service time. Requests are served concurrently
(asyncio), so nothing queues behind anything else. ``GET /healthz`` never
stalls. ``GET /stats`` returns the server-side request count per route, how many
arrived during a stall, the first/last receive time and receptions per second.

Because arrivals of an open workload see the stall phase uniformly (exactly
so for evenly spaced arrivals over whole periods; PASTA for Poisson), the
distribution of intended-start latency is known in closed form whatever the
arrival rate ``λ`` (as long as the client keeps up):
``L = W + X`` with ``W = stall − U`` when ``U < stall`` else 0, ``U`` uniform
on ``[0, period)``. :func:`truth_percentiles` inverts its CDF.

Usage::

    python -m storefront calibrate --port 0 --port-file url.txt --service-ms 50:350 --stall 1 --period 10
    truth_percentiles(service_min=0.05, service_max=0.35, stall=1.0, period=10.0)  # {50: ..., 95: ..., 99: ...}
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from aiohttp import web

from .runner import ShopRunner
from .server import _base_url, _bound_port, announce_and_wait

__all__ = ["CalibrationConfig", "CalibrationTarget", "create_calibration_app", "latency_cdf", "truth_percentiles", "calibrate_forever"]

_GOLDEN = (math.sqrt(5) - 1) / 2  # 0.618…: frac(i·φ) fills [0, 1) evenly


@dataclass(frozen=True, kw_only=True)
class CalibrationConfig:
    """Latency model of the target (seconds)."""

    service_min: float = 0.05
    service_max: float = 0.35
    stall: float = 1.0
    period: float = 10.0
    sequence: Literal["golden", "random"] = "golden"
    seed: int = 1
    epoch: float | None = None  # stall phase origin (epoch s); None = when the target starts

    def __post_init__(self) -> None:
        if not 0 <= self.service_min <= self.service_max:
            raise ValueError(f"service time: expected 0 <= min <= max, got {self.service_min}..{self.service_max}")
        if self.stall < 0 or self.period <= 0 or self.stall >= self.period:
            raise ValueError(f"stall/period: expected 0 <= stall < period, got stall {self.stall}, period {self.period}")


def _uniform_cdf(x: float, a: float, b: float) -> float:
    if x < a:
        return 0.0
    if x >= b:
        return 1.0
    return (x - a) / (b - a)


def _uniform_cdf_integral(y: float, a: float, b: float) -> float:
    """∫_{-∞}^{y} G(v) dv for G the uniform CDF on [a, b] (a step at a when a == b)."""
    if y <= a:
        return 0.0
    if b == a:
        return y - a
    if y < b:
        return (y - a) ** 2 / (2 * (b - a))
    return (b - a) / 2 + (y - b)


def latency_cdf(x: float, *, service_min: float, service_max: float, stall: float, period: float) -> float:
    """P(L <= x) for the intended-start latency ``L = W + X`` of open arrivals.

    ``P(L <= x) = (1 − S/P)·G(x) + (1/P)·∫₀^S G(x − w) dw``, G the service-time CDF.
    """
    a, b, s, p = service_min, service_max, stall, period
    g = 1.0 if (a == b and x >= a) else (0.0 if a == b else _uniform_cdf(x, a, b))
    stalled = _uniform_cdf_integral(x, a, b) - _uniform_cdf_integral(x - s, a, b)
    return (1 - s / p) * g + stalled / p


def truth_percentiles(
    *, service_min: float, service_max: float, stall: float, period: float, percentiles: Iterable[float] = (50, 95, 99)
) -> dict[float, float]:
    """Exact percentiles (seconds) of intended-start latency for open arrivals at any rate the target sustains.

    Usage: ``truth_percentiles(service_min=0.05, service_max=0.35, stall=1, period=10)[99]`` -> about 1.1
    """
    out: dict[float, float] = {}
    for pct in percentiles:
        q = pct / 100.0
        lo, hi = 0.0, stall + service_max + 1.0
        for _ in range(100):  # bisection to ~1e-30 s: far below any histogram's resolution
            mid = (lo + hi) / 2
            if latency_cdf(mid, service_min=service_min, service_max=service_max, stall=stall, period=period) >= q:
                hi = mid
            else:
                lo = mid
        out[pct] = hi
    return out


class CalibrationTarget:
    """The request handlers and their server-side counters."""

    def __init__(self, config: CalibrationConfig) -> None:
        self.config = config
        self.epoch = config.epoch if config.epoch is not None else time.time()
        self._rng = random.Random(config.seed)
        self._served = 0
        self.routes: dict[str, dict[str, Any]] = {}

    def service_time(self) -> float:
        c = self.config
        self._served += 1
        frac = (self._served * _GOLDEN) % 1.0 if c.sequence == "golden" else self._rng.random()
        return c.service_min + (c.service_max - c.service_min) * frac

    def stall_wait(self, t: float) -> float:
        """Seconds until the stall that ``t`` falls in ends (0 outside stalls)."""
        c = self.config
        if c.stall <= 0:
            return 0.0
        u = (t - self.epoch) % c.period
        return c.stall - u if u < c.stall else 0.0

    def _count(self, key: str, t: float) -> None:
        r = self.routes.get(key)
        if r is None:
            r = self.routes[key] = {"count": 0, "stalled": 0, "first": t, "last": t, "per_second": []}
        r["count"] += 1
        if self.stall_wait(t) > 0:
            r["stalled"] += 1
        r["last"] = t
        sec = int(t - r["first"])
        per = r["per_second"]
        if sec < 36_000:  # bounded: ten hours of seconds
            per.extend([0] * (sec + 1 - len(per)))
            per[sec] += 1

    async def work(self, request: web.Request) -> web.Response:
        t = time.time()
        self._count("GET /", t)
        await asyncio.sleep(self.stall_wait(t) + self.service_time())
        return web.Response(text="ok")

    async def health(self, request: web.Request) -> web.Response:
        self._count("GET /healthz", time.time())
        return web.json_response({"status": "ok"})

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": {k: v["count"] for k, v in sorted(self.routes.items())},
                "routes": self.routes,
                "epoch": self.epoch,
                "config": asdict(self.config),
            }
        )

    async def other(self, request: web.Request) -> web.Response:
        key = f"{request.method} {request.path}"
        # bounded: the first 100 unknown routes by name, the rest together
        self._count(key if key in self.routes or len(self.routes) < 100 else "other", time.time())
        return web.json_response({"error": "not_found", "detail": f"no route {request.path}"}, status=404)


def create_calibration_app(config: CalibrationConfig) -> web.Application:
    """The aiohttp app; ``app["target"]`` is the :class:`CalibrationTarget` (counters)."""
    target = CalibrationTarget(config)
    app = web.Application()
    app["target"] = target
    app.router.add_get("/", target.work)
    app.router.add_get("/healthz", target.health)
    app.router.add_get("/stats", target.stats)
    app.router.add_route("*", "/{tail:.*}", target.other)
    return app


async def calibrate_forever(
    config: CalibrationConfig, *, host: str, port: int, port_file: str | None, exit_with_parent: bool = False
) -> None:
    """CLI ``calibrate``: serve until SIGINT/SIGTERM (or the parent dies); announce the URL."""
    runner = ShopRunner(create_calibration_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=4096).start()
    url = _base_url(host, _bound_port(runner))
    try:
        await announce_and_wait(url, port_file=port_file, exit_with_parent=exit_with_parent)
    finally:
        await runner.cleanup()
