"""Operator endpoints: health, metrics, live fault injection."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import db as schema
from .errors import ApiError, bad_request
from .state import STATE, json_response, state_of
from .validation import read_json_object

__all__ = ["require_admin", "routes", "refresh_flash_stock"]


def require_admin(request: web.Request) -> None:
    """401 unless the admin token (when one is configured) is presented."""
    token = state_of(request).config.admin_token
    if token is not None and request.headers.get("Authorization", "") != f"Bearer {token}":
        raise ApiError(401, "unauthorized", "admin endpoints need Authorization: Bearer <admin token>")


async def healthz(request: web.Request) -> web.Response:
    """GET /healthz -> {"status":"ok"}; 503 when the database does not answer within 2 s."""
    st = state_of(request)
    try:
        async with asyncio.timeout(2.0):
            async with st.db.read() as conn:
                await conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any DB failure means "not ready"
        return json_response({"status": "degraded", "detail": f"database: {type(exc).__name__}"}, status=503)
    return json_response({"status": "ok"})


async def refresh_flash_stock(request_or_app: web.Request | web.Application) -> None:
    """Set ``storefront_flash_sale_stock`` from the database (other replicas sell too)."""
    app = request_or_app.app if isinstance(request_or_app, web.Request) else request_or_app
    st = app[STATE]
    p = schema.products
    async with st.db.read() as conn:
        rows = (await conn.execute(sa.select(p.c.sku, p.c.stock).where(p.c.is_flash.is_(True)))).all()
    st.flash_skus = tuple(r.sku for r in rows)
    for r in rows:
        st.metrics.flash_stock.labels(sku=r.sku).set(r.stock)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus text exposition of this app's registry."""
    st = state_of(request)
    try:
        async with asyncio.timeout(2.0):
            await refresh_flash_stock(request)
    except Exception:  # noqa: BLE001 - a scrape must still work while the DB is down
        pass
    return web.Response(body=st.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def get_faults(request: web.Request) -> web.Response:
    require_admin(request)
    st = state_of(request)
    return json_response({"latency": st.inject_latency, "errors": st.inject_errors})


async def put_faults(request: web.Request) -> web.Response:
    """PUT /api/admin/faults {"latency": {route: seconds}, "errors": {route: ratio}} replaces both maps."""
    require_admin(request)
    body = await read_json_object(request)
    st = state_of(request)
    parsed: dict[str, dict[str, float]] = {}
    for field, hi in (("latency", 60.0), ("errors", 1.0)):
        value = body.get(field, {})
        if not isinstance(value, dict) or len(value) > 50:
            raise bad_request("invalid_field", f"{field} must be an object of at most 50 route: number pairs")
        out: dict[str, float] = {}
        for route, number in value.items():
            if not route.startswith("/") or len(route) > 200:
                raise bad_request("invalid_field", f"{field} keys must be route templates starting with /")
            if not isinstance(number, (int, float)) or isinstance(number, bool) or not 0 <= number <= hi:
                raise bad_request("invalid_field", f"{field}[{route[:60]}] must be a number within 0..{hi}")
            out[route] = float(number)
        parsed[field] = out
    st.inject_latency = parsed["latency"]
    st.inject_errors = parsed["errors"]
    return json_response({"latency": st.inject_latency, "errors": st.inject_errors})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/healthz", healthz),
        web.get("/metrics", metrics),
        web.get("/api/admin/faults", get_faults),
        web.put("/api/admin/faults", put_faults),
    ]
