"""When dependencies fail: gateway outages, a broken database table."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import aiohttp

from tests.storefront.sfproc import (
    Client,
    ShopProcess,
    metric_value,
    run,
    start_gateway_process,
    start_shop,
)


async def _set_outage(gateway: ShopProcess, outage: bool) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.put(f"{gateway.url}/admin/config", json={"outage": outage}) as resp:
            assert resp.status == 200


async def _charges(gateway: ShopProcess, order_id: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/charges", params={"order_id": order_id}) as resp:
            return len((await resp.json())["charges"])


def _shop_and_gateway(tmp_path: Path, *extra: str) -> tuple[ShopProcess, ShopProcess]:
    gateway = start_gateway_process(tmp_path, "--latency-ms", "1", "--jitter-ms", "0", "--failure-rate", "0")
    shop = start_shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'f.db'}",
        "--skus",
        "20",
        "--users",
        "2",
        "--password-iterations",
        "1",
        "--gateway-url",
        gateway.url,
        *extra,
    )
    return shop, gateway


def test_gateway_outage_then_retry_with_same_key(tmp_path: Path) -> None:
    shop, gateway = _shop_and_gateway(tmp_path, "--sweep-interval", "0")
    try:

        async def body() -> None:
            async with Client(shop.url, run_id="outage") as c:
                await c.login("user00001")
                _, order = await c.checkout(items=[{"sku": "SKU-000002", "quantity": 1}])
                await _set_outage(gateway, True)
                status, err = await c.pay(order["order_id"], key="p1")
                assert (status, err["error"]) == (502, "gateway_unavailable")
                assert (await c.get(f"/api/orders/{order['order_id']}"))[1]["payment"]["status"] == "pending"
                await _set_outage(gateway, False)
                status, paid = await c.pay(order["order_id"], key="p1")
                assert (status, paid["status"]) == (200, "paid")
                assert await _charges(gateway, order["order_id"]) == 1
                rec = (await c.get("/api/admin/reconciliation", params={"run_id": "outage"}))[1]
                assert rec["consistent"] is True and rec["charges_at_gateway"] == 1
                _, text = await c.get("/metrics")
                assert metric_value(text, "storefront_payments_total", outcome="error", traffic="shadow") == 1
                assert metric_value(text, "storefront_payments_total", outcome="success", traffic="shadow") == 1

        run(body())
    finally:
        shop.stop()
        gateway.stop()


def test_sweeper_settles_payments_left_pending(tmp_path: Path) -> None:
    shop, gateway = _shop_and_gateway(tmp_path, "--sweep-interval", "0.1", "--pending-retry-after", "0.2")
    try:

        async def body() -> None:
            async with Client(shop.url) as c:
                await c.login("user00002")
                _, order = await c.checkout(items=[{"sku": "SKU-000003", "quantity": 1}])
                await _set_outage(gateway, True)
                assert (await c.pay(order["order_id"], key="p1"))[0] == 502
                await _set_outage(gateway, False)
                # The shopper never retries; the shop settles the payment by itself.
                deadline = time.monotonic() + 30
                while (await c.get(f"/api/orders/{order['order_id']}"))[1]["status"] != "paid":
                    assert time.monotonic() < deadline, "pending payment was never settled"
                    await asyncio.sleep(0.05)
                replay = await c.pay(order["order_id"], key="p1")
                assert replay[1]["status"] == "paid"
                assert await _charges(gateway, order["order_id"]) == 1

        run(body())
    finally:
        shop.stop()
        gateway.stop()


def test_unexpected_database_error_is_a_counted_json_500(tmp_path: Path) -> None:
    shop, gateway = _shop_and_gateway(tmp_path)
    try:

        async def body() -> None:
            async with Client(shop.url) as c:
                await c.login("user00001")
                with sqlite3.connect(tmp_path / "f.db", timeout=10) as conn:  # someone breaks the schema
                    conn.execute("DROP TABLE cart_items")
                status, err = await c.get("/api/cart")
                assert status == 500
                assert err == {"error": "internal", "detail": "unexpected server error"}
                assert (await c.get("/api/products/SKU-000001"))[0] == 200  # the process carries on
                _, text = await c.get("/metrics")
                assert metric_value(text, "storefront_unhandled_exceptions_total", route="/api/cart") == 1
                assert metric_value(text, "storefront_http_requests_total", route="/api/cart", status_class="5xx") == 1

        run(body())
    finally:
        shop.stop()
        gateway.stop()
    assert "unhandled error on GET /api/cart" in shop.log_path.read_text()
