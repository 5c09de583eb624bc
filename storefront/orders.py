"""Checkout (idempotent, oversell-proof) and order status."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from . import db as schema
from .auth import current_user
from .cart import MAX_CART_LINES, cart_lines
from .errors import ApiError, bad_request, conflict, not_found
from .state import State, json_response, run_id_of, state_of, traffic_of
from .validation import (
    MAX_QUANTITY,
    ORDER_ID_RE,
    SKU_RE,
    check_text,
    idempotency_key,
    read_json_object,
    require_int,
)

__all__ = ["routes", "COUPONS", "load_owned_order"]

# coupon code -> percent off the subtotal
COUPONS = {"SAVE10": 10, "DOUBLE11": 11}
_MAX_ADDRESS_FIELDS = 12


def _address(value: Any) -> str:
    """The address as canonical JSON text; an object of short strings or one string."""
    if isinstance(value, str):
        return json.dumps(check_text(value.strip(), field="address", max_len=500), ensure_ascii=False)
    if not isinstance(value, dict) or not value:
        raise bad_request("invalid_field", "address must be a non-empty object (or a string)")
    if len(value) > _MAX_ADDRESS_FIELDS:
        raise bad_request("invalid_field", f"address has at most {_MAX_ADDRESS_FIELDS} fields, got {len(value)}")
    clean: dict[str, str] = {}
    for key, field_value in value.items():
        check_text(key, field="address field name", max_len=40)
        if not isinstance(field_value, str):
            raise bad_request("invalid_field", f"address.{key[:40]} must be a string")
        clean[key] = check_text(field_value, field=f"address.{key}", max_len=200, min_len=0)
    return json.dumps(clean, sort_keys=True, ensure_ascii=False)


def _coupon(value: Any) -> tuple[str | None, int]:
    if value is None:
        return None, 0
    if not isinstance(value, str) or value.upper() not in COUPONS:
        shown = value[:32] if isinstance(value, str) else type(value).__name__
        raise bad_request("invalid_coupon", f"coupon must be one of {sorted(COUPONS)}, got {shown!r}")
    return value.upper(), COUPONS[value.upper()]


def _body_items(value: Any) -> dict[str, int] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CART_LINES:
        raise bad_request("invalid_field", f"items must be an array of 1..{MAX_CART_LINES} {{sku, quantity}} objects")
    items: dict[str, int] = {}
    for n, item in enumerate(value):
        if not isinstance(item, dict):
            raise bad_request("invalid_field", f"items[{n}] must be an object with sku and quantity")
        sku = item.get("sku")
        if not isinstance(sku, str) or not SKU_RE.match(sku):
            raise bad_request("invalid_field", f"items[{n}].sku must be a SKU like SKU-000001")
        if sku in items:
            raise bad_request("invalid_field", f"items lists {sku} twice")
        items[sku] = require_int(item.get("quantity"), field=f"items[{n}].quantity", lo=1, hi=MAX_QUANTITY)
    return items


def _request_hash(address: str, coupon: str | None, items: dict[str, int] | None) -> str:
    canonical = json.dumps({"a": address, "c": coupon, "i": sorted(items.items()) if items else "cart"})
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


async def _existing(conn: AsyncConnection, user_id: int, key: str) -> Any:
    o = schema.orders
    return (
        await conn.execute(
            sa.select(o.c.id, o.c.request_hash, o.c.status, o.c.total_cents, o.c.discount_cents).where(
                o.c.user_id == user_id, o.c.idempotency_key == key
            )
        )
    ).first()


def _replay(row: Any, request_hash: str) -> web.Response:
    if row.request_hash != request_hash:
        raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used for a different checkout")
    return json_response(
        {"order_id": row.id, "total_cents": row.total_cents, "status": row.status, "discount_cents": row.discount_cents},
        status=201,
        headers={"Idempotent-Replayed": "true"},
    )


async def checkout(request: web.Request) -> web.Response:
    """POST /api/orders (Idempotency-Key) -> 201 {"order_id","total_cents","status"}; 409 sold_out."""
    user_id = await current_user(request)
    key = idempotency_key(request) or "auto-" + uuid.uuid4().hex
    body = await read_json_object(request)
    if "address" not in body:
        raise bad_request("invalid_field", "address is required")
    address = _address(body["address"])
    coupon, percent_off = _coupon(body.get("coupon"))
    items = _body_items(body.get("items"))
    req_hash = _request_hash(address, coupon, items)
    st = state_of(request)
    traffic = traffic_of(request)

    async with st.db.read() as conn:
        prior = await _existing(conn, user_id, key)
        if prior is not None:
            return _replay(prior, req_hash)
        from_cart = items is None
        if from_cart:
            lines = await cart_lines(conn, user_id)
            if not lines:
                raise bad_request("empty_cart", "the cart is empty; add items or send items in the body")
            items = {r.sku: r.quantity for r in lines}
        p = schema.products
        found = {
            r.sku: r for r in (await conn.execute(sa.select(p.c.sku, p.c.price_cents, p.c.stock).where(p.c.sku.in_(list(items))))).all()
        }
    missing = sorted(set(items) - set(found))
    if missing:
        raise ApiError(404, "unknown_sku", f"no such product: {', '.join(missing[:5])}")
    # Cheap pre-check without the write path: most flash-sale losers stop here.
    short = [sku for sku, q in items.items() if found[sku].stock < q]
    if short:
        st.metrics.stockouts.labels(traffic=traffic).inc()
        raise conflict("sold_out", f"not enough stock for {', '.join(short[:5])}")

    subtotal = sum(found[sku].price_cents * q for sku, q in items.items())
    discount = subtotal * percent_off // 100
    order_id = uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC)
    run_id = run_id_of(request)
    try:
        async with st.db.write() as conn:
            # Insert first: a concurrent request with the same key fails here
            # (unique constraint) before it touches any stock.
            await conn.execute(
                schema.orders.insert().values(
                    id=order_id,
                    user_id=user_id,
                    idempotency_key=key,
                    request_hash=req_hash,
                    run_id=run_id,
                    status="created",
                    total_cents=subtotal - discount,
                    discount_cents=discount,
                    coupon=coupon,
                    address=address,
                    created_at=now,
                    updated_at=now,
                )
            )
            await _take_stock(st, conn, order_id, run_id, items, now, traffic)
            await conn.execute(
                schema.order_items.insert(),
                [
                    {"order_id": order_id, "sku": sku, "quantity": q, "price_cents": found[sku].price_cents}
                    for sku, q in sorted(items.items())
                ],
            )
            if from_cart:
                c = schema.cart_items
                await conn.execute(c.delete().where(c.c.user_id == user_id, c.c.sku.in_(list(items))))
    except IntegrityError:
        async with st.db.read() as conn:
            prior = await _existing(conn, user_id, key)
        if prior is None:
            raise
        return _replay(prior, req_hash)
    st.metrics.orders.labels(traffic=traffic).inc()
    return json_response(
        {"order_id": order_id, "total_cents": subtotal - discount, "status": "created", "discount_cents": discount},
        status=201,
    )


async def _take_stock(
    st: State,
    conn: AsyncConnection,
    order_id: str,
    run_id: str | None,
    items: dict[str, int],
    now: dt.datetime,
    traffic: str,
) -> None:
    """Decrement every line atomically or raise 409 (the caller's transaction rolls back)."""
    p = schema.products
    # Sorted SKUs: concurrent multi-line orders lock rows in one order (no deadlock on PostgreSQL).
    for sku, q in sorted(items.items()):
        row = (
            await conn.execute(
                sa.update(p).where(p.c.sku == sku, p.c.stock >= q).values(stock=p.c.stock - q).returning(p.c.stock, p.c.is_flash)
            )
        ).first()
        if row is None:
            st.metrics.oversell_rejected.labels(traffic=traffic).inc()
            st.metrics.stockouts.labels(traffic=traffic).inc()
            raise conflict("sold_out", f"not enough stock for {sku}")
        if row.is_flash:
            st.metrics.flash_stock.labels(sku=sku).set(row.stock)
    await conn.execute(
        schema.stock_movements.insert(),
        [{"sku": sku, "order_id": order_id, "run_id": run_id, "delta": -q, "created_at": now} for sku, q in sorted(items.items())],
    )


async def load_owned_order(conn: AsyncConnection, order_id: str, user_id: int) -> Any:
    """The order row if it exists and belongs to ``user_id``; 404 otherwise (never 403: no existence leak)."""
    if not ORDER_ID_RE.match(order_id):
        raise not_found("order")
    o = schema.orders
    row = (await conn.execute(sa.select(o).where(o.c.id == order_id, o.c.user_id == user_id))).first()
    if row is None:
        raise not_found("order")
    return row


async def order_status(request: web.Request) -> web.Response:
    """GET /api/orders/{order_id}: the caller's own order with items and latest payment."""
    user_id = await current_user(request)
    st = state_of(request)
    async with st.db.read() as conn:
        order = await load_owned_order(conn, request.match_info["order_id"], user_id)
        oi, pay = schema.order_items, schema.payments
        items = (
            await conn.execute(sa.select(oi.c.sku, oi.c.quantity, oi.c.price_cents).where(oi.c.order_id == order.id).order_by(oi.c.sku))
        ).all()
        payment = (
            await conn.execute(
                sa.select(pay.c.id, pay.c.status, pay.c.amount_cents)
                .where(pay.c.order_id == order.id)
                .order_by(pay.c.created_at.desc(), pay.c.id)
                .limit(1)
            )
        ).first()
    return json_response(
        {
            "order_id": order.id,
            "status": order.status,
            "total_cents": order.total_cents,
            "discount_cents": order.discount_cents,
            "coupon": order.coupon,
            "address": json.loads(order.address),
            "items": [{"sku": i.sku, "quantity": i.quantity, "price_cents": i.price_cents} for i in items],
            "payment": None
            if payment is None
            else {"payment_id": payment.id, "status": payment.status, "amount_cents": payment.amount_cents},
            "created_at": order.created_at.isoformat() if hasattr(order.created_at, "isoformat") else str(order.created_at),
        }
    )


def routes() -> list[web.RouteDef]:
    return [web.post("/api/orders", checkout), web.get("/api/orders/{order_id}", order_status)]
