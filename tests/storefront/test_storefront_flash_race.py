"""Flash sale: 500 concurrent buyers (some retrying) for 50 units, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from storefront.db import Database, products
from tests.storefront.sfproc import Client, metric_value, run, start_shop

BUYERS = 500
STOCK = 50
SKU = "FLASH-0001"
RUN_ID = "flash-race"


async def _stock_in_db(db_url: str) -> int:
    database = Database(db_url, pool_size=1)
    try:
        async with database.read() as conn:
            return int((await conn.execute(sa.select(products.c.stock).where(products.c.sku == SKU))).scalar_one())
    finally:
        await database.dispose()


async def _stampede(url: str) -> dict[str, Any]:
    outcomes: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int] = collections.Counter()
    won: dict[int, str] = {}
    payments: dict[str, set[str]] = collections.defaultdict(set)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as http:
        buyers = [Client(url, run_id=RUN_ID, session=http) for _ in range(BUYERS)]
        sem = asyncio.Semaphore(50)

        async def login(i: int) -> None:
            async with sem:
                await buyers[i].login(f"user{i + 1:05d}")

        await asyncio.gather(*[login(i) for i in range(BUYERS)])
        start = asyncio.Event()

        async def buy(i: int) -> None:
            c = buyers[i]
            await start.wait()
            key = f"flash-buyer-{i}"
            # Every 5th buyer's request is "retried" while the first is still in flight.
            tries = 2 if i % 5 == 0 else 1
            results = await asyncio.gather(*[c.checkout(key=key, items=[{"sku": SKU, "quantity": 1}]) for _ in range(tries)])
            for status, _ in results:
                statuses[status] += 1
            ok = [b["order_id"] for s, b in results if s == 201]
            if not ok:
                errors = {b.get("error") for _, b in results}
                outcomes["sold_out" if errors == {"sold_out"} else f"other:{errors}"] += 1
                return
            assert len(set(ok)) == 1, f"buyer {i} got two different orders for one key"
            outcomes["won"] += 1
            won[i] = ok[0]
            pay_tries = 2 if i % 3 == 0 else 1
            paid = await asyncio.gather(*[c.pay(ok[0], key=f"pay-{i}") for _ in range(pay_tries)])
            for status, body in paid:
                statuses[status] += 1
                assert status == 200, body
                payments[ok[0]].add(body["payment_id"])

        tasks = [asyncio.create_task(buy(i)) for i in range(BUYERS)]
        start.set()
        await asyncio.gather(*tasks)
        async with http.get(f"{url}/api/admin/reconciliation", params={"run_id": RUN_ID}) as resp:
            rec = await resp.json()
        async with http.get(f"{url}/api/admin/reconciliation") as resp:
            rec_all = await resp.json()
        async with http.get(f"{url}/metrics") as resp:
            metrics_text = await resp.text()
    return {
        "outcomes": outcomes,
        "statuses": statuses,
        "won": won,
        "payments": payments,
        "rec": rec,
        "rec_all": rec_all,
        "metrics": metrics_text,
    }


def _check(result: dict[str, Any], stock_left: int) -> None:
    assert not [s for s in result["statuses"] if s >= 500], result["statuses"]
    assert result["outcomes"] == {"won": STOCK, "sold_out": BUYERS - STOCK}, result["outcomes"]
    assert len(set(result["won"].values())) == STOCK
    assert all(len(ids) == 1 for ids in result["payments"].values())
    assert stock_left == 0
    for rec in (result["rec"], result["rec_all"]):
        assert rec["orders_created"] == STOCK
        assert rec["orders_paid"] == STOCK
        assert rec["payments_succeeded"] == STOCK
        assert rec["charges_at_gateway"] == STOCK
        assert rec["duplicate_orders"] == 0
        assert rec["duplicate_charges"] == 0
        assert rec["oversold_units"] == 0
        assert rec["skus"] == [{"sku": SKU, "units_sold": STOCK, "stock_decrement": STOCK}]
        assert rec["consistent"] is True
    text = result["metrics"]
    assert metric_value(text, "storefront_flash_sale_stock", sku=SKU) == 0
    assert metric_value(text, "storefront_orders_total", traffic="shadow") == STOCK
    assert metric_value(text, "storefront_orders_total", traffic="real") == 0
    assert metric_value(text, "storefront_stockouts_total", traffic="shadow") >= BUYERS - STOCK


def _race(tmp_path: Path, db_url: str) -> None:
    shop = start_shop(
        tmp_path,
        db_url,
        "--skus",
        "100",
        "--users",
        str(BUYERS),
        "--flash-skus",
        "1",
        "--flash-stock",
        str(STOCK),
        "--password-iterations",
        "1",
        "--gateway-latency-ms",
        "2",
        "--gateway-jitter-ms",
        "2",
        "--gateway-failure-rate",
        "0",
    )
    try:
        result = run(_stampede(shop.url))
    except BaseException:
        print(shop.log())
        raise
    finally:
        shop.stop()
    _check(result, run(_stock_in_db(db_url)))


def test_flash_sale_race_sqlite(tmp_path: Path) -> None:
    _race(tmp_path, f"sqlite:///{tmp_path / 'flash.db'}")


@pytest.mark.platform
def test_flash_sale_race_postgresql(tmp_path: Path, pg_url: str) -> None:
    _race(tmp_path, pg_url)
