"""Paying an order through the gateway simulator, at most one charge per order.

Guarantees, all enforced by the database rather than by timing:
- same user + Idempotency-Key -> the same payment (unique constraint);
- at most one ``pending``/``paid`` payment per order (partial unique index),
  so two different keys racing for one order cannot both reach the gateway;
- the gateway call uses the payment id as *its* idempotency key, so a
  payment left ``pending`` by a gateway outage is re-driven safely.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.exc import IntegrityError

from . import db as schema
from .auth import current_user
from .errors import ApiError, bad_request
from .orders import load_owned_order
from .state import State, json_response, state_of, traffic_of
from .validation import idempotency_key, read_json_object

__all__ = ["routes", "PAYMENT_METHODS", "settle", "sweep_pending", "run_sweeper", "GatewayError"]

log = logging.getLogger("storefront.payments")

PAYMENT_METHODS = ("alipay", "wechat", "card")


def _body(payment: Any, *, replayed: bool) -> web.Response:
    headers = {"Idempotent-Replayed": "true"} if replayed else None
    return json_response(
        {"order_id": payment.order_id, "payment_id": payment.id, "status": payment.status, "amount_cents": payment.amount_cents},
        headers=headers,
    )


async def _payment_by_key(st: State, user_id: int, key: str) -> Any:
    pay = schema.payments
    async with st.db.read() as conn:
        return (await conn.execute(sa.select(pay).where(pay.c.user_id == user_id, pay.c.idempotency_key == key))).first()


async def _active_payment(st: State, order_id: str) -> Any:
    pay = schema.payments
    async with st.db.read() as conn:
        return (await conn.execute(sa.select(pay).where(pay.c.order_id == order_id, pay.c.status.in_(["pending", "paid"])))).first()


async def pay(request: web.Request) -> web.Response:
    """POST /api/orders/{order_id}/payment (Idempotency-Key) -> {"order_id","payment_id","status"}."""
    user_id = await current_user(request)
    key = idempotency_key(request) or "auto-" + uuid.uuid4().hex
    if request.body_exists:
        body = await read_json_object(request)
        method = body.get("method", "alipay")
        if method not in PAYMENT_METHODS:
            raise bad_request("invalid_field", f"method must be one of {list(PAYMENT_METHODS)}")
    st = state_of(request)
    async with st.db.read() as conn:
        order = await load_owned_order(conn, request.match_info["order_id"], user_id)

    payment = await _payment_by_key(st, user_id, key)
    if payment is None:
        if order.status == "paid":
            paid = await _active_payment(st, order.id)
            if paid is not None and paid.status == "paid":
                return _body(paid, replayed=True)
        payment = await _start_payment(st, request, order, user_id, key)
    if payment.order_id != order.id:
        raise ApiError(422, "idempotency_key_reused", "this Idempotency-Key was used to pay another order")
    if payment.status != "pending":
        return _body(payment, replayed=True)
    return await _drive(st, request, payment)


async def _start_payment(st: State, request: web.Request, order: Any, user_id: int, key: str) -> Any:
    """Insert a pending payment, or return the row that won a race against us."""
    now = dt.datetime.now(dt.UTC)
    payment_id = uuid.uuid4().hex
    try:
        async with st.db.write() as conn:
            await conn.execute(
                schema.payments.insert().values(
                    id=payment_id,
                    order_id=order.id,
                    user_id=user_id,
                    idempotency_key=key,
                    run_id=request.get("run_id"),
                    status="pending",
                    amount_cents=order.total_cents,
                    gateway_charge_id=None,
                    created_at=now,
                    updated_at=now,
                )
            )
    except IntegrityError:
        # Same key (retry) or another key already paying this order: join that payment.
        existing = await _payment_by_key(st, user_id, key) or await _active_payment(st, order.id)
        if existing is None:
            raise
        return existing
    pay = schema.payments
    async with st.db.read() as conn:
        return (await conn.execute(sa.select(pay).where(pay.c.id == payment_id))).one()


async def _drive(st: State, request: web.Request, payment: Any) -> web.Response:
    """Charge at the gateway (idempotent on the payment id) and record the outcome."""
    try:
        final, changed = await settle(st, payment, traffic=traffic_of(request))
    except GatewayError as exc:
        raise ApiError(502, "gateway_unavailable", f"payment gateway failed ({exc}); retry with the same Idempotency-Key") from None
    return _body(final, replayed=not changed)


class GatewayError(Exception):
    """The gateway could not be reached or gave no usable answer; the payment stays pending."""


async def settle(st: State, payment: Any, *, traffic: str) -> tuple[Any, bool]:
    """Charge ``payment`` and record paid/declined; returns (final row, whether this call recorded it).

    Safe to call concurrently or repeatedly for one payment: the gateway key
    is the payment id and the update only moves a row out of ``pending``.
    """
    try:
        result = await _charge(st, payment)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        st.metrics.payments.labels(outcome="error", traffic=traffic).inc()
        raise GatewayError(type(exc).__name__) from exc
    status = "paid" if result["status"] == "succeeded" else "declined"
    pay, o = schema.payments, schema.orders
    now = dt.datetime.now(dt.UTC)
    async with st.db.write() as conn:
        changed = (
            await conn.execute(
                sa.update(pay)
                .where(pay.c.id == payment.id, pay.c.status == "pending")
                .values(status=status, gateway_charge_id=result.get("charge_id"), updated_at=now)
            )
        ).rowcount
        if status == "paid":
            await conn.execute(sa.update(o).where(o.c.id == payment.order_id, o.c.status != "paid").values(status="paid", updated_at=now))
        final = (await conn.execute(sa.select(pay).where(pay.c.id == payment.id))).one()
    if changed:
        # Only the call that recorded the outcome counts it (a concurrent re-drive does not).
        st.metrics.payments.labels(outcome="success" if status == "paid" else "declined", traffic=traffic).inc()
    return final, bool(changed)


async def sweep_pending(st: State, *, older_than_s: float, limit: int = 100) -> int:
    """Re-drive payments left ``pending`` (gateway outage, client gave up); returns how many settled.

    Without this an order charged at the gateway during a timeout would stay
    unpaid in the shop until the shopper happened to retry.
    """
    pay = schema.payments
    cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=older_than_s)
    async with st.db.read() as conn:
        stuck = (
            await conn.execute(
                sa.select(pay).where(pay.c.status == "pending", pay.c.updated_at < cutoff).order_by(pay.c.updated_at).limit(limit)
            )
        ).all()
    settled = 0
    for payment in stuck:
        try:
            _, changed = await settle(st, payment, traffic="shadow" if payment.run_id else "real")
        except GatewayError:
            break  # still down: try again next round
        settled += changed
    return settled


async def run_sweeper(st: State, *, interval_s: float, older_than_s: float) -> None:
    """Background loop for :func:`sweep_pending` (cancelled on shutdown)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await sweep_pending(st, older_than_s=older_than_s)
        except Exception:  # noqa: BLE001 - e.g. the database is failing over; keep sweeping
            log.warning("pending-payment sweep failed", exc_info=True)


async def _charge(st: State, payment: Any) -> dict[str, Any]:
    if st.http is None or st.gateway_url is None:
        raise ValueError("no payment gateway configured")
    async with st.http.post(
        f"{st.gateway_url}/charges",
        json={"order_id": payment.order_id, "amount_cents": payment.amount_cents, "run_id": payment.run_id},
        headers={"Idempotency-Key": payment.id},
    ) as resp:
        if resp.status not in (200, 201):
            raise aiohttp.ClientResponseError(resp.request_info, resp.history, status=resp.status)
        data = await resp.json()
    if not isinstance(data, dict) or data.get("status") not in ("succeeded", "declined"):
        raise ValueError("gateway answered without a charge status")
    return data


def routes() -> list[web.RouteDef]:
    return [web.post("/api/orders/{order_id}/payment", pay)]
