"""The signed-in user's cart: view, add/update, remove."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from . import db as schema
from .auth import current_user
from .errors import ApiError, conflict, not_found
from .state import json_response, state_of, traffic_of
from .validation import MAX_QUANTITY, SKU_RE, read_json_object, require_int

__all__ = ["routes", "cart_lines", "MAX_CART_LINES"]

MAX_CART_LINES = 50


async def cart_lines(conn: AsyncConnection, user_id: int) -> list[Any]:
    """Rows (sku, name, quantity, price_cents, stock) of a user's cart, by SKU."""
    c, p = schema.cart_items, schema.products
    return list(
        (
            await conn.execute(
                sa.select(c.c.sku, p.c.name, c.c.quantity, p.c.price_cents, p.c.stock)
                .join(p, p.c.sku == c.c.sku)
                .where(c.c.user_id == user_id)
                .order_by(c.c.sku)
            )
        ).all()
    )


def _cart_body(lines: list[Any]) -> dict[str, Any]:
    items = [{"sku": r.sku, "name": r.name, "quantity": r.quantity, "price_cents": r.price_cents} for r in lines]
    return {"items": items, "total_cents": sum(r.quantity * r.price_cents for r in lines)}


async def view_cart(request: web.Request) -> web.Response:
    """GET /api/cart -> {"items":[{"sku","quantity","price_cents"}],"total_cents"}."""
    user_id = await current_user(request)
    async with state_of(request).db.read() as conn:
        return json_response(_cart_body(await cart_lines(conn, user_id)))


def _upsert(is_sqlite: bool, values: dict[str, Any]) -> Any:
    insert = sqlite.insert if is_sqlite else postgresql.insert
    stmt = insert(schema.cart_items).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=["user_id", "sku"],
        set_={"quantity": stmt.excluded.quantity, "updated_at": stmt.excluded.updated_at},
    )


def _sku_param(request: web.Request) -> str:
    sku = request.match_info["sku"]
    if not SKU_RE.match(sku):
        raise not_found("product")
    return sku


async def put_item(request: web.Request) -> web.Response:
    """PUT /api/cart/items/{sku} {"quantity": n}: set the line's quantity (adds it if new)."""
    user_id = await current_user(request)
    sku = _sku_param(request)
    body = await read_json_object(request)
    quantity = require_int(body.get("quantity"), field="quantity", lo=1, hi=MAX_QUANTITY)
    st = state_of(request)
    async with st.db.write() as conn:
        stock = (await conn.execute(sa.select(schema.products.c.stock).where(schema.products.c.sku == sku))).scalar_one_or_none()
        if stock is None:
            raise not_found(f"product {sku}")
        if stock < quantity:
            raise conflict("sold_out", f"{sku} has {stock} in stock, asked for {quantity}")
        c = schema.cart_items
        others = (await conn.execute(sa.select(sa.func.count()).select_from(c).where(c.c.user_id == user_id, c.c.sku != sku))).scalar_one()
        if others >= MAX_CART_LINES:
            raise ApiError(400, "cart_full", f"a cart holds at most {MAX_CART_LINES} different SKUs")
        await conn.execute(
            _upsert(
                st.db.is_sqlite,
                {
                    "user_id": user_id,
                    "sku": sku,
                    "quantity": quantity,
                    "updated_at": dt.datetime.now(dt.UTC),
                },
            )
        )
        lines = await cart_lines(conn, user_id)
    st.metrics.cart_adds.labels(traffic=traffic_of(request)).inc()
    return json_response(_cart_body(lines))


async def delete_item(request: web.Request) -> web.Response:
    """DELETE /api/cart/items/{sku}: remove the line (404 when it is not in the cart)."""
    user_id = await current_user(request)
    sku = _sku_param(request)
    c = schema.cart_items
    async with state_of(request).db.write() as conn:
        result = await conn.execute(c.delete().where(c.c.user_id == user_id, c.c.sku == sku))
        if result.rowcount == 0:
            raise not_found(f"cart item {sku}")
        lines = await cart_lines(conn, user_id)
    return json_response(_cart_body(lines))


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/cart", view_cart),
        web.put("/api/cart/items/{sku}", put_item),
        web.delete("/api/cart/items/{sku}", delete_item),
    ]
