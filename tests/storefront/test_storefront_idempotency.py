"""Retried checkouts and payments: same answer, one order, one charge."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from tests.storefront.sfproc import Client, ShopProcess, run


async def _gateway_charges(gateway_url: str, order_id: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway_url}/charges", params={"order_id": order_id}) as resp:
            return len((await resp.json())["charges"])


async def _reconcile(c: Client, run_id: str) -> dict:
    status, body = await c.get("/api/admin/reconciliation", params={"run_id": run_id})
    assert status == 200, body
    return body


def test_checkout_retry_returns_same_order(shop: ShopProcess) -> None:
    run_id = f"idem-seq-{uuid.uuid4().hex[:8]}"

    async def body() -> None:
        async with Client(shop.url, run_id=run_id) as c:
            await c.register_and_login()
            items = [{"sku": "SKU-000100", "quantity": 2}]
            first = await c.checkout(key="retry-1", items=items)
            second = await c.checkout(key="retry-1", items=items)
            assert first[0] == second[0] == 201
            assert first[1]["order_id"] == second[1]["order_id"]
            assert first[1]["total_cents"] == second[1]["total_cents"]

            # Same key, different request: refused rather than silently answered.
            status, err = await c.checkout(key="retry-1", items=[{"sku": "SKU-000101", "quantity": 1}])
            assert (status, err["error"]) == (422, "idempotency_key_reused")

            rec = await _reconcile(c, run_id)
            assert rec["orders_created"] == 1 and rec["duplicate_orders"] == 0
            assert rec["skus"] == [{"sku": "SKU-000100", "units_sold": 2, "stock_decrement": 2}]
            assert rec["consistent"] is True

    run(body())


def test_concurrent_identical_checkouts_make_one_order(shop: ShopProcess) -> None:
    run_id = f"idem-par-{uuid.uuid4().hex[:8]}"

    async def body() -> None:
        async with Client(shop.url, run_id=run_id) as c:
            await c.register_and_login()
            results = await asyncio.gather(*[c.checkout(key="burst", items=[{"sku": "SKU-000102", "quantity": 1}]) for _ in range(25)])
            assert {status for status, _ in results} == {201}
            assert len({b["order_id"] for _, b in results}) == 1
            rec = await _reconcile(c, run_id)
            assert (rec["orders_created"], rec["duplicate_orders"]) == (1, 0)
            assert rec["skus"] == [{"sku": "SKU-000102", "units_sold": 1, "stock_decrement": 1}]

    run(body())


def test_pay_retries_charge_once(shop: ShopProcess, gateway_proc: ShopProcess) -> None:
    run_id = f"idem-pay-{uuid.uuid4().hex[:8]}"

    async def body() -> None:
        async with Client(shop.url, run_id=run_id) as c:
            await c.register_and_login()
            status, order = await c.checkout(items=[{"sku": "SKU-000103", "quantity": 1}])
            assert status == 201
            oid = order["order_id"]

            # The same key, sequentially and concurrently.
            first = await c.pay(oid, key="pay-1")
            burst = await asyncio.gather(*[c.pay(oid, key="pay-1") for _ in range(10)])
            assert first[0] == 200 and first[1]["status"] == "paid"
            assert {b["payment_id"] for _, b in burst} == {first[1]["payment_id"]}
            # A new key for an already-paid order: the existing payment, not a second charge.
            again = await c.pay(oid, key="pay-2")
            assert again[1]["payment_id"] == first[1]["payment_id"] and again[1]["status"] == "paid"

            assert await _gateway_charges(gateway_proc.url, oid) == 1
            rec = await _reconcile(c, run_id)
            assert rec["orders_paid"] == rec["payments_succeeded"] == rec["charges_at_gateway"] == 1
            assert rec["duplicate_charges"] == 0 and rec["consistent"] is True

    run(body())


def test_racing_pays_with_different_keys_charge_once(shop: ShopProcess, gateway_proc: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            await c.register_and_login()
            status, order = await c.checkout(items=[{"sku": "SKU-000104", "quantity": 1}])
            oid = order["order_id"]
            results = await asyncio.gather(*[c.pay(oid, key=f"k{i}") for i in range(15)])
            assert {s for s, _ in results} == {200}
            assert {b["status"] for _, b in results} == {"paid"}
            assert len({b["payment_id"] for _, b in results}) == 1
            assert await _gateway_charges(gateway_proc.url, oid) == 1

    run(body())


def test_payment_key_cannot_be_reused_for_another_order(shop: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            await c.register_and_login()
            _, a = await c.checkout(items=[{"sku": "SKU-000105", "quantity": 1}])
            _, b = await c.checkout(items=[{"sku": "SKU-000106", "quantity": 1}])
            assert (await c.pay(a["order_id"], key="same"))[0] == 200
            status, err = await c.pay(b["order_id"], key="same")
            assert (status, err["error"]) == (422, "idempotency_key_reused")

    run(body())
