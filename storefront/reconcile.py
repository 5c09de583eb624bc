"""Reconciliation (docs/contracts.md §4): do orders, payments, charges and stock agree?"""

from __future__ import annotations

from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from . import db as schema
from .admin import require_admin
from .db import Database
from .state import json_response, state_of
from .validation import check_text

__all__ = ["reconcile", "gateway_summary", "routes"]


def _count(table: sa.Table, *conds: Any) -> sa.Select:
    return sa.select(sa.func.count()).select_from(table).where(*conds)


def _duplicate_flash_orders(*conds: Any) -> sa.Select:
    """Σ (orders − 1) over (run, buyer, flash SKU) groups holding more than one order.

    The flash sale allows one order per buyer, and nothing in the schema says
    so: this counts what a shopper (or the shop's accountant) would notice,
    rather than re-checking the (user, Idempotency-Key) unique constraint,
    which can never be violated. Grouping by run keeps separate rehearsals
    (and real traffic, run NULL) apart, since they reuse the seeded accounts.
    """
    o, oi, p = schema.orders, schema.order_items, schema.products
    orders_in_group = sa.func.count(sa.distinct(o.c.id))
    groups = (
        sa.select(orders_in_group.label("n"))
        .select_from(o.join(oi, oi.c.order_id == o.c.id).join(p, p.c.sku == oi.c.sku))
        .where(p.c.is_flash.is_(True), o.c.status != "cancelled", *conds)
        .group_by(o.c.run_id, o.c.user_id, oi.c.sku)
        .having(orders_in_group > 1)
        .subquery()
    )
    return sa.select(sa.func.coalesce(sa.func.sum(groups.c.n - 1), 0))


def _count_field(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _gateway_counts(gateway: dict[str, Any] | None) -> tuple[int, int] | None:
    """(succeeded, duplicate_charges) from the gateway's summary, or None when it gave no usable counts."""
    if gateway is None:
        return None
    succeeded, duplicates = _count_field(gateway, "succeeded"), _count_field(gateway, "duplicate_charges")
    # A summary without the counts (another gateway, an error body) is not a clean ledger.
    if succeeded is None or duplicates is None:
        return None
    return succeeded, duplicates


async def gateway_summary(
    gateway_url: str,
    run_id: str | None,
    *,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, Any] | None:
    """The gateway's own counts (``GET /charges/summary``), or None when it cannot be asked."""
    params = {"run_id": run_id} if run_id else {}
    own = session is None
    http = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5))
    try:
        async with http.get(f"{gateway_url}/charges/summary", params=params) as resp:
            if resp.status != 200:
                return None
            data = await resp.json()
            return data if isinstance(data, dict) else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    finally:
        if own:
            await http.close()


async def reconcile(
    database: Database,
    run_id: str | None = None,
    *,
    gateway: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compute the §4 JSON for one run (``run_id``) or for all traffic (None).

    ``gateway`` is the gateway's ``/charges/summary`` when it could be asked.
    ``duplicate_charges`` comes only from that ledger (the shop's payments
    table cannot hold two paid payments for one order, so it would always say
    0); without it ``gateway_checked`` is false, ``charges_at_gateway`` falls
    back to the shop's recorded charge ids and ``consistent`` is false,
    because nobody looked at what the shoppers were charged.

    Usage: ``print(json.dumps(await reconcile(Database(url), "run-1")))``
    """
    o, oi, pay, p, mv = schema.orders, schema.order_items, schema.payments, schema.products, schema.stock_movements
    o_run = [o.c.run_id == run_id] if run_id is not None else []
    pay_run = [pay.c.run_id == run_id] if run_id is not None else []
    async with database.read() as conn:

        async def scalar(stmt: sa.Select) -> int:
            return int((await conn.execute(stmt)).scalar_one() or 0)

        orders_created = await scalar(_count(o, *o_run))
        orders_paid = await scalar(_count(o, o.c.status == "paid", *o_run))
        payments_succeeded = await scalar(_count(pay, pay.c.status == "paid", *pay_run))
        payments_declined = await scalar(_count(pay, pay.c.status == "declined", *pay_run))
        recorded_charges = await scalar(_count(pay, pay.c.status == "paid", pay.c.gateway_charge_id.is_not(None), *pay_run))
        duplicate_orders = await scalar(_duplicate_flash_orders(*o_run))

        sold = {
            r.sku: int(r.units)
            for r in (
                await conn.execute(
                    sa.select(oi.c.sku, sa.func.sum(oi.c.quantity).label("units"))
                    .join(o, o.c.id == oi.c.order_id)
                    .where(o.c.status != "cancelled", *o_run)
                    .group_by(oi.c.sku)
                )
            ).all()
        }
        if run_id is None:
            # All traffic: the physical truth is initial_stock − stock on each product row.
            moved = {
                r.sku: int(r.dec)
                for r in (
                    await conn.execute(
                        sa.select(p.c.sku, (p.c.initial_stock - p.c.stock).label("dec")).where(p.c.stock != p.c.initial_stock)
                    )
                ).all()
            }
        else:
            # One run among others sharing stock: its own ledger entries.
            moved = {
                r.sku: int(r.dec)
                for r in (
                    await conn.execute(
                        sa.select(mv.c.sku, (-sa.func.sum(mv.c.delta)).label("dec")).where(mv.c.run_id == run_id).group_by(mv.c.sku)
                    )
                ).all()
            }
        skus = sorted(set(sold) | set(moved))
        initial = (
            {
                r.sku: int(r.initial_stock)
                for r in (await conn.execute(sa.select(p.c.sku, p.c.initial_stock).where(p.c.sku.in_(skus)))).all()
            }
            if skus
            else {}
        )
        negative_stock = await scalar(sa.select(sa.func.coalesce(sa.func.sum(-p.c.stock), 0)).where(p.c.stock < 0))

    sku_rows = [{"sku": s, "units_sold": sold.get(s, 0), "stock_decrement": moved.get(s, 0)} for s in skus]
    oversold = sum(max(0, sold.get(s, 0) - initial.get(s, 0)) for s in skus) + negative_stock
    ledger = _gateway_counts(gateway)
    charges_at_gateway, duplicate_charges = ledger if ledger is not None else (recorded_charges, 0)
    consistent = (
        ledger is not None
        and oversold == 0
        and duplicate_orders == 0
        and duplicate_charges == 0
        and payments_succeeded == orders_paid
        and all(r["units_sold"] == r["stock_decrement"] for r in sku_rows)
    )
    return {
        "run_id": run_id,
        "orders_created": orders_created,
        "orders_paid": orders_paid,
        "payments_succeeded": payments_succeeded,
        "payments_declined": payments_declined,
        "charges_at_gateway": charges_at_gateway,
        "duplicate_orders": duplicate_orders,
        "duplicate_charges": duplicate_charges,
        "gateway_checked": ledger is not None,
        "oversold_units": oversold,
        "skus": sku_rows,
        "consistent": consistent,
    }


async def reconciliation(request: web.Request) -> web.Response:
    """GET /api/admin/reconciliation[?run_id=X]."""
    require_admin(request)
    st = state_of(request)
    run_id = request.query.get("run_id") or None
    if run_id is not None:
        check_text(run_id, field="run_id", max_len=128)
    summary = None
    if st.gateway_url is not None:
        summary = await gateway_summary(st.gateway_url, run_id, session=st.http)
    return json_response(await reconcile(st.db, run_id, gateway=summary))


def routes() -> list[web.RouteDef]:
    return [web.get("/api/admin/reconciliation", reconciliation)]
