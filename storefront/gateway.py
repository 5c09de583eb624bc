"""Payment-gateway simulator (a separate aiohttp app, embedded or standalone).

API:
- ``POST /charges`` with ``Idempotency-Key`` and ``{"order_id","amount_cents","run_id"?}`` ->
  201 ``{"charge_id","status":"succeeded"|"declined","order_id","amount_cents"}``;
  the same key again returns the same result (200, ``"replayed": true``) and
  never charges twice, also when the two requests overlap.
- ``GET /charges?order_id=X`` -> that order's charges and how many succeeded.
- ``GET /charges/summary[?run_id=X]`` -> counts for reconciliation.
- ``PUT /admin/config`` ``{"latency_ms","jitter_ms","failure_rate","outage"}`` -> change behaviour live.
- ``GET /healthz``.

The decline decision is a pure function of (seed, key), so runs are repeatable.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
import uuid
from typing import Any

from aiohttp import web

from .config import GatewayConfig

__all__ = ["GatewaySimulator", "create_gateway_app", "GATEWAY"]


@dataclasses.dataclass
class _Charge:
    charge_id: str
    key: str
    order_id: str
    amount_cents: int
    run_id: str | None
    status: str

    def as_json(self) -> dict[str, Any]:
        return {"charge_id": self.charge_id, "status": self.status, "order_id": self.order_id, "amount_cents": self.amount_cents}


class GatewaySimulator:
    """In-memory ledger of charges with configurable latency and decline rate.

    Usage::

        sim = GatewaySimulator(GatewayConfig(failure_rate=0.1))
        charge, replayed = await sim.charge(key="k", order_id="o", amount_cents=100)
    """

    def __init__(self, cfg: GatewayConfig) -> None:
        self.latency_ms = cfg.latency_ms
        self.jitter_ms = cfg.jitter_ms
        self.failure_rate = cfg.failure_rate
        self.outage = False
        self._seed = cfg.seed
        self._rng = random.Random(cfg.seed)
        self._by_key: dict[str, _Charge] = {}
        self._inflight: dict[str, asyncio.Future[_Charge]] = {}
        self._by_order: dict[str, list[_Charge]] = {}

    def _declines(self, key: str) -> bool:
        digest = hashlib.sha256(f"{self._seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.failure_rate

    async def charge(
        self,
        *,
        key: str,
        order_id: str,
        amount_cents: int,
        run_id: str | None = None,
    ) -> tuple[_Charge, bool]:
        """Charge once per key; returns (charge, replayed)."""
        done = self._by_key.get(key)
        if done is None and key in self._inflight:
            done = await asyncio.shield(self._inflight[key])
        if done is not None:
            if (done.order_id, done.amount_cents) != (order_id, amount_cents):
                raise ValueError("Idempotency-Key was used with another order or amount")
            return done, True
        future: asyncio.Future[_Charge] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            delay = max(0.0, self._rng.uniform(self.latency_ms - self.jitter_ms, self.latency_ms + self.jitter_ms))
            if delay:
                await asyncio.sleep(delay / 1000.0)
            status = "declined" if self._declines(key) else "succeeded"
            charge = _Charge(f"ch_{uuid.uuid4().hex}", key, order_id, amount_cents, run_id, status)
            self._by_key[key] = charge
            self._by_order.setdefault(order_id, []).append(charge)
            future.set_result(charge)
            return charge, False
        except BaseException as exc:
            future.set_exception(ConnectionAbortedError(f"charge {key} was interrupted: {type(exc).__name__}"))
            future.exception()
            raise
        finally:
            self._inflight.pop(key, None)

    def charges_for(self, order_id: str) -> list[_Charge]:
        return list(self._by_order.get(order_id, ()))

    def summary(self, run_id: str | None) -> dict[str, Any]:
        succeeded = declined = duplicate = orders_dup = 0
        for charges in self._by_order.values():
            mine = [c for c in charges if run_id is None or c.run_id == run_id]
            ok = sum(1 for c in mine if c.status == "succeeded")
            succeeded += ok
            declined += len(mine) - ok
            if ok > 1:
                orders_dup += 1
                duplicate += ok - 1
        return {
            "run_id": run_id,
            "succeeded": succeeded,
            "declined": declined,
            "duplicate_charges": duplicate,
            "orders_with_duplicate_charges": orders_dup,
        }


GATEWAY = web.AppKey("gateway", GatewaySimulator)


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)


async def _post_charge(request: web.Request) -> web.Response:
    sim = request.app[GATEWAY]
    if sim.outage:
        return _error(503, "outage", "gateway outage (simulated)")
    key = request.headers.get("Idempotency-Key", "")
    if not 1 <= len(key) <= 128:
        return _error(400, "missing_idempotency_key", "send Idempotency-Key (1..128 characters)")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _error(400, "invalid_json", "body must be a JSON object")
    if not isinstance(body, dict):
        return _error(400, "invalid_json", "body must be a JSON object")
    order_id, amount, run_id = body.get("order_id"), body.get("amount_cents"), body.get("run_id")
    if not isinstance(order_id, str) or not 1 <= len(order_id) <= 64:
        return _error(400, "invalid_field", "order_id must be a string of 1..64 characters")
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 <= amount <= 10**9:
        return _error(400, "invalid_field", "amount_cents must be an integer within 0..1e9")
    if run_id is not None and (not isinstance(run_id, str) or len(run_id) > 128):
        return _error(400, "invalid_field", "run_id must be null or a string of at most 128 characters")
    try:
        charge, replayed = await sim.charge(key=key, order_id=order_id, amount_cents=amount, run_id=run_id)
    except ValueError as exc:
        return _error(422, "idempotency_key_reused", str(exc))
    return web.json_response({**charge.as_json(), "replayed": replayed}, status=200 if replayed else 201)


async def _get_charges(request: web.Request) -> web.Response:
    order_id = request.query.get("order_id")
    if not order_id:
        return _error(400, "invalid_query", "order_id is required")
    charges = request.app[GATEWAY].charges_for(order_id)
    return web.json_response(
        {
            "order_id": order_id,
            "charges": [c.as_json() for c in charges],
            "succeeded": sum(1 for c in charges if c.status == "succeeded"),
        }
    )


async def _summary(request: web.Request) -> web.Response:
    return web.json_response(request.app[GATEWAY].summary(request.query.get("run_id") or None))


async def _put_config(request: web.Request) -> web.Response:
    sim = request.app[GATEWAY]
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        return _error(400, "invalid_json", "body must be a JSON object")
    if not isinstance(body, dict):
        return _error(400, "invalid_json", "body must be a JSON object")
    for name in ("latency_ms", "jitter_ms"):
        if name in body:
            value = body[name]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 60_000:
                return _error(400, "invalid_field", f"{name} must be a number within 0..60000")
            setattr(sim, name, float(value))
    if "failure_rate" in body:
        value = body["failure_rate"]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
            return _error(400, "invalid_field", "failure_rate must be a number within 0..1")
        sim.failure_rate = float(value)
    if "outage" in body:
        if not isinstance(body["outage"], bool):
            return _error(400, "invalid_field", "outage must be true or false")
        sim.outage = body["outage"]
    return web.json_response(
        {"latency_ms": sim.latency_ms, "jitter_ms": sim.jitter_ms, "failure_rate": sim.failure_rate, "outage": sim.outage}
    )


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_gateway_app(cfg: GatewayConfig | None = None) -> web.Application:
    """The simulator as an aiohttp application.

    Usage: ``web.run_app(create_gateway_app(GatewayConfig(failure_rate=0.05)), port=9100)``
    """
    app = web.Application(client_max_size=64 * 1024)
    app[GATEWAY] = GatewaySimulator(cfg or GatewayConfig())
    app.add_routes(
        [
            web.post("/charges", _post_charge),
            web.get("/charges", _get_charges),
            web.get("/charges/summary", _summary),
            web.put("/admin/config", _put_config),
            web.get("/healthz", _healthz),
        ]
    )
    return app
