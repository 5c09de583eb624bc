"""Reconciliation catches what a shopper would notice: plant each fault in a real shop and see it reported.

The schema already forbids two orders for one Idempotency-Key and two paid
payments for one order, so those cannot be the duplicates the gate looks for.
These tests plant the duplicates that *can* happen — a second flash-sale order
for one buyer, a second successful charge for one order at the gateway — and
check that a clean run next to them still reports 0.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from storefront import db as schema
from storefront.db import Database
from tests.storefront.sfproc import (
    Client,
    ShopProcess,
    run,
    start_gateway_process,
    start_shop,
)

FLASH = "FLASH-0001"


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[tuple[ShopProcess, ShopProcess, str]]:
    """A gateway process of our own (its ledger is what we plant into) and a SQLite shop using it."""
    gateway = start_gateway_process(tmp_path, "--latency-ms", "1", "--jitter-ms", "0", "--failure-rate", "0")
    db_url = f"sqlite:///{tmp_path / 'planted.db'}"
    try:
        shop = start_shop(
            tmp_path,
            db_url,
            "--skus",
            "50",
            "--users",
            "5",
            "--password-iterations",
            "1",
            "--flash-skus",
            "1",
            "--flash-stock",
            "20",
            "--gateway-url",
            gateway.url,
        )
    except BaseException:
        gateway.stop()
        raise
    try:
        yield shop, gateway, db_url
    finally:
        shop.stop()
        gateway.stop()


async def _rec(c: Client, run_id: str | None) -> dict:
    status, body = await c.get("/api/admin/reconciliation", params={"run_id": run_id} if run_id else None)
    assert status == 200, body
    return body


async def _buy(c: Client, sku: str, *, pay: bool = True) -> dict:
    status, order = await c.checkout(items=[{"sku": sku, "quantity": 1}])
    assert status == 201, order
    if pay:
        status, payment = await c.pay(order["order_id"])
        assert (status, payment["status"]) == (200, "paid"), payment
    return order


async def _plant_second_flash_order(db_url: str, *, user_id: int, run_id: str) -> None:
    """Write a whole second order for one buyer, the way checkout writes one (stock and ledger included).

    Everything else the reconciliation checks still agrees afterwards, so the
    duplicate alone has to be what turns ``consistent`` false.
    """
    o, oi, p, mv = schema.orders, schema.order_items, schema.products, schema.stock_movements
    order_id, now = uuid.uuid4().hex, dt.datetime.now(dt.UTC)
    database = Database(db_url, pool_size=1)
    try:
        async with database.write() as conn:
            price = (await conn.execute(sa.select(p.c.price_cents).where(p.c.sku == FLASH))).scalar_one()
            await conn.execute(
                o.insert().values(
                    id=order_id,
                    user_id=user_id,
                    idempotency_key=f"planted-{order_id}",
                    request_hash="planted",
                    run_id=run_id,
                    status="created",
                    total_cents=price,
                    discount_cents=0,
                    coupon=None,
                    address='{"name": "planted"}',
                    created_at=now,
                    updated_at=now,
                )
            )
            await conn.execute(oi.insert().values(order_id=order_id, sku=FLASH, quantity=1, price_cents=price))
            await conn.execute(sa.update(p).where(p.c.sku == FLASH).values(stock=p.c.stock - 1))
            await conn.execute(mv.insert().values(sku=FLASH, order_id=order_id, run_id=run_id, delta=-1, created_at=now))
    finally:
        await database.dispose()


def test_a_second_flash_order_for_one_buyer_is_a_duplicate(site: tuple[ShopProcess, ShopProcess, str]) -> None:
    shop, _gateway, db_url = site
    run_id, other_run = f"planted-orders-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"

    async def body() -> None:
        async with (
            Client(shop.url, run_id=run_id) as buyer,
            Client(shop.url, run_id=run_id) as neighbour,
            Client(shop.url, run_id=other_run) as same_account_later,
            Client(shop.url) as real,
        ):
            await buyer.login("user00001")
            await neighbour.login("user00002")
            await same_account_later.login("user00001")
            await real.login("user00001")
            await _buy(buyer, FLASH)
            # Not duplicates: a normal SKU bought twice, another buyer's flash order, and the
            # same seeded account in another rehearsal and in real traffic.
            await _buy(buyer, "SKU-000003")
            await _buy(buyer, "SKU-000003", pay=False)
            await _buy(neighbour, FLASH)
            await _buy(same_account_later, FLASH)
            await _buy(real, FLASH)

            clean, clean_all = await _rec(buyer, run_id), await _rec(buyer, None)
            assert (clean["orders_created"], clean["duplicate_orders"], clean["consistent"]) == (4, 0, True), clean
            assert (clean_all["duplicate_orders"], clean_all["consistent"]) == (0, True), clean_all

            assert buyer.user_id is not None
            await _plant_second_flash_order(db_url, user_id=buyer.user_id, run_id=run_id)

            caught, caught_all, elsewhere = await _rec(buyer, run_id), await _rec(buyer, None), await _rec(buyer, other_run)
            assert caught["orders_created"] == 5 and caught["duplicate_orders"] == 1, caught
            assert caught["consistent"] is False
            # The planted order is coherent, so nothing but the duplicate can have failed the books.
            assert caught["oversold_units"] == 0 and caught["duplicate_charges"] == 0
            assert caught["payments_succeeded"] == caught["orders_paid"] and caught["gateway_checked"] is True
            assert all(r["units_sold"] == r["stock_decrement"] for r in caught["skus"]), caught["skus"]
            assert (caught_all["duplicate_orders"], caught_all["consistent"]) == (1, False), caught_all
            assert (elsewhere["duplicate_orders"], elsewhere["consistent"]) == (0, True), elsewhere

    run(body())


async def _double_charge(gateway_url: str, order: dict, run_id: str) -> dict:
    """What a shop bug would do: charge the same order again under a fresh Idempotency-Key."""
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{gateway_url}/charges",
            headers={"Idempotency-Key": f"again-{uuid.uuid4().hex}"},
            json={"order_id": order["order_id"], "amount_cents": order["total_cents"], "run_id": run_id},
        ) as resp:
            assert resp.status == 201, await resp.text()
            return await resp.json()


def test_a_second_successful_charge_at_the_gateway_is_a_duplicate(
    site: tuple[ShopProcess, ShopProcess, str],
) -> None:
    shop, gateway, _db_url = site
    run_id, clean_run = f"planted-charges-{uuid.uuid4().hex[:6]}", f"clean-{uuid.uuid4().hex[:6]}"

    async def body() -> None:
        async with Client(shop.url, run_id=run_id) as buyer, Client(shop.url, run_id=clean_run) as other:
            await buyer.login("user00003")
            await other.login("user00004")
            order = await _buy(buyer, "SKU-000007")
            await _buy(other, "SKU-000008")
            clean = await _rec(buyer, run_id)
            assert (clean["charges_at_gateway"], clean["duplicate_charges"], clean["consistent"]) == (1, 0, True)

            second = await _double_charge(gateway.url, order, run_id)
            assert second["status"] == "succeeded" and second["replayed"] is False

            caught, caught_all, untouched = await _rec(buyer, run_id), await _rec(buyer, None), await _rec(buyer, clean_run)
            assert caught["duplicate_charges"] == 1 and caught["charges_at_gateway"] == 2, caught
            assert caught["consistent"] is False
            # The shop's own books still say one payment: only the gateway's ledger shows it.
            assert caught["payments_succeeded"] == caught["orders_paid"] == 1
            assert caught["duplicate_orders"] == 0 and caught["oversold_units"] == 0
            assert (caught_all["duplicate_charges"], caught_all["consistent"]) == (1, False), caught_all
            assert (untouched["duplicate_charges"], untouched["consistent"]) == (0, True), untouched

            # A gateway that cannot be asked is not a clean ledger either.
            gateway.stop()
            blind = await _rec(other, clean_run)
            assert (blind["gateway_checked"], blind["consistent"]) == (False, False), blind
            assert blind["duplicate_charges"] == 0 and blind["charges_at_gateway"] == 1

    run(body())
