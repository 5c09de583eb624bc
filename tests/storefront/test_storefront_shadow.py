"""Shadow traffic is labelled and kept apart; reconciliation adds up after a mixed workload."""

from __future__ import annotations

import asyncio
import collections
import random
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.storefront.sfproc import Client, ShopProcess, metric_value, run, start_shop

RUNS = ("mix-run-a", "mix-run-b")


@pytest.fixture(scope="module")
def declining_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopProcess]:
    tmp = tmp_path_factory.mktemp("mixed")
    shop = start_shop(
        tmp,
        f"sqlite:///{tmp / 'mixed.db'}",
        "--skus",
        "200",
        "--users",
        "5",
        "--password-iterations",
        "1",
        "--flash-skus",
        "2",
        "--flash-stock",
        "6",
        "--gateway-latency-ms",
        "1",
        "--gateway-jitter-ms",
        "1",
        "--gateway-failure-rate",
        "0.3",
    )
    try:
        yield shop
    finally:
        shop.stop()


async def _journey(c: Client, rng: random.Random, seen: collections.Counter) -> None:
    traffic = "shadow" if c.run_id else "real"
    tag = c.run_id or "real"
    await c.register_and_login()
    await c.get("/api/home")
    for _ in range(rng.randint(1, 3)):
        sku = f"SKU-{rng.randint(1, 200):06d}"
        assert (await c.get(f"/api/products/{sku}"))[0] == 200
        seen[(traffic, "views")] += 1
    if rng.random() < 0.4:  # flash buyer: items in the body, may sell out
        flash = {"sku": f"FLASH-000{rng.randint(1, 2)}", "quantity": rng.randint(1, 2)}
        status, order = await c.checkout(items=[flash])
    else:
        for _ in range(rng.randint(1, 3)):
            status, _ = await c.put(f"/api/cart/items/SKU-{rng.randint(1, 200):06d}", {"quantity": rng.randint(1, 3)})
            assert status == 200
            seen[(traffic, "cart_adds")] += 1
        status, order = await c.checkout(coupon=rng.choice([None, "SAVE10"]))
    if status == 409:
        seen[(tag, "sold_out")] += 1
        return
    assert status == 201, order
    seen[(tag, "orders")] += 1
    seen[("traffic", traffic, "orders")] += 1
    if rng.random() < 0.2:
        return  # abandoned after checkout: stock stays reserved, the order stays "created"
    for _attempt in range(2):
        status, payment = await c.pay(order["order_id"])
        assert status == 200, payment
        seen[(tag, payment["status"])] += 1
        seen[("traffic", traffic, payment["status"])] += 1
        if payment["status"] == "paid":
            break


def test_mixed_workload_reconciles_and_shadow_is_kept_apart(declining_shop: ShopProcess) -> None:
    async def body() -> tuple[collections.Counter, dict, str]:
        seen: collections.Counter = collections.Counter()
        rng = random.Random(42)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            clients = [Client(declining_shop.url, run_id=RUNS[i % 3] if i % 3 < 2 else None, session=http) for i in range(60)]
            await asyncio.gather(*[_journey(c, random.Random(rng.random()), seen) for c in clients])
            recs = {}
            for run_id in (*RUNS, None):
                params = {"run_id": run_id} if run_id else {}
                async with http.get(f"{declining_shop.url}/api/admin/reconciliation", params=params) as resp:
                    recs[run_id] = await resp.json()
            async with http.get(f"{declining_shop.url}/metrics") as resp:
                text = await resp.text()
        return seen, recs, text

    seen, recs, text = run(body())
    assert seen[("traffic", "shadow", "declined")] > 0, "the workload should include declined payments"
    for run_id in RUNS:
        rec = recs[run_id]
        assert rec["run_id"] == run_id
        assert rec["orders_created"] == seen[(run_id, "orders")]
        assert rec["orders_paid"] == rec["payments_succeeded"] == seen[(run_id, "paid")]
        assert rec["payments_declined"] == seen[(run_id, "declined")]
        assert rec["charges_at_gateway"] == seen[(run_id, "paid")]
        assert rec["consistent"] is True, rec
    everything = recs[None]
    assert everything["run_id"] is None
    assert everything["orders_created"] == sum(seen[(t, "orders")] for t in (*RUNS, "real"))
    assert everything["orders_paid"] == sum(seen[(t, "paid")] for t in (*RUNS, "real"))
    assert everything["oversold_units"] == 0 and everything["consistent"] is True, everything
    assert all(r["units_sold"] == r["stock_decrement"] for r in everything["skus"])

    # Business counters: real figures exclude the shadow run entirely.
    for traffic in ("real", "shadow"):
        assert metric_value(text, "storefront_orders_total", traffic=traffic) == seen[("traffic", traffic, "orders")]
        assert metric_value(text, "storefront_payments_total", outcome="success", traffic=traffic) == seen[("traffic", traffic, "paid")]
        assert (
            metric_value(text, "storefront_payments_total", outcome="declined", traffic=traffic) == seen[("traffic", traffic, "declined")]
        )
        assert metric_value(text, "storefront_product_views_total", traffic=traffic) == seen[(traffic, "views")]
        assert metric_value(text, "storefront_cart_adds_total", traffic=traffic) == seen[(traffic, "cart_adds")]
    assert metric_value(text, "storefront_http_requests_total", route="/api/orders", traffic="shadow") > 0
    assert metric_value(text, "storefront_http_requests_total", route="/api/orders", traffic="real") > 0


def test_run_header_name_is_configurable(tmp_path: Path) -> None:
    shop = start_shop(tmp_path, f"sqlite:///{tmp_path / 'hdr.db'}", "--skus", "20", "--users", "1", "--run-header", "X-Load-Test")
    try:

        async def body() -> str:
            async with aiohttp.ClientSession() as http:
                await http.get(f"{shop.url}/api/home", headers={"X-Load-Test": "r1"})
                await http.get(f"{shop.url}/api/home", headers={"X-Peakload-Run": "r1"})
                async with http.get(f"{shop.url}/metrics") as resp:
                    return await resp.text()

        text = run(body())
    finally:
        shop.stop()
    assert metric_value(text, "storefront_http_requests_total", route="/api/home", traffic="shadow") == 1
    assert metric_value(text, "storefront_http_requests_total", route="/api/home", traffic="real") == 1
