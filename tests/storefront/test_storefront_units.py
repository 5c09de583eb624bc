"""Pure pieces: URL handling, seed determinism, the cache, metric buckets."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storefront import SeedConfig, engine_url
from storefront.cache import CachedLoader, MemoryCache
from storefront.db import Database, products
from storefront.metrics import DURATION_BUCKETS, StorefrontMetrics
from storefront.seed import generate_catalogue, init_database
from tests.storefront.sfproc import Client, MissingSeries, metric_value, run, start_shop


@pytest.mark.parametrize(
    "given, expected",
    [
        ("sqlite:///tmp/x.db", "sqlite+aiosqlite:///tmp/x.db"),
        ("sqlite:////abs/x.db", "sqlite+aiosqlite:////abs/x.db"),
        ("postgresql://app:pw@db:5432/shop", "postgresql+asyncpg://app:pw@db:5432/shop"),
        ("postgres://app@db/shop", "postgresql+asyncpg://app@db/shop"),
        (
            "postgresql://app@h1:5432,h2:5433/shop?target_session_attrs=read-write",
            "postgresql+asyncpg://app@/shop?host=h1%3A5432&host=h2%3A5433&target_session_attrs=read-write",
        ),
        ("postgresql://app@h1,h2:6000/shop", "postgresql+asyncpg://app@/shop?host=h1%3A5432&host=h2%3A6000"),
        ("postgresql://h1:1,h2:2/shop", "postgresql+asyncpg:///shop?host=h1%3A1&host=h2%3A2"),
    ],
)
def test_engine_url(given: str, expected: str) -> None:
    assert engine_url(given) == expected


def test_engine_url_rejects_other_databases() -> None:
    with pytest.raises(ValueError, match="sqlite:// or postgresql://"):
        engine_url("mysql://x/y")


def test_catalogue_is_deterministic_and_sized() -> None:
    cfg = SeedConfig(skus=10_000, flash_skus=3, flash_stock=7, seed=5)
    cats, prods = generate_catalogue(cfg)
    assert (cats, prods) == generate_catalogue(cfg)
    assert generate_catalogue(SeedConfig(skus=10_000, seed=6))[1] != prods
    assert len(prods) == 10_003 and len({p["sku"] for p in prods}) == 10_003
    flash = [p for p in prods if p["is_flash"]]
    assert [(p["sku"], p["stock"]) for p in flash] == [("FLASH-0001", 7), ("FLASH-0002", 7), ("FLASH-0003", 7)]
    assert all(p["stock"] == p["initial_stock"] >= 0 for p in prods)


def test_seed_10k_skus_into_sqlite_and_only_once(tmp_path: Path) -> None:
    async def body() -> tuple[bool, bool, int]:
        database = Database(f"sqlite:///{tmp_path / 's.db'}")
        try:
            first = await init_database(database, SeedConfig(), password_iterations=1)
            second = await init_database(database, SeedConfig(), password_iterations=1)
            async with database.read() as conn:
                count = (await conn.execute(select(func.count()).select_from(products))).scalar_one()
            return first, second, count
        finally:
            await database.dispose()

    assert run(body()) == (True, False, 10_003)


def test_cache_single_flight_and_expiry() -> None:
    now = [0.0]
    results: list[str] = []
    loads = 0

    async def body() -> None:
        nonlocal loads
        loader = CachedLoader(MemoryCache(clock=lambda: now[0]), ttl_s=1.0, on_result=results.append)

        async def load() -> bytes:
            nonlocal loads
            loads += 1
            await asyncio.sleep(0.01)
            return b"v%d" % loads

        values = await asyncio.gather(*[loader.get_or_load("k", load) for _ in range(10)])
        assert values == [b"v1"] * 10 and loads == 1
        assert await loader.get_or_load("k", load) == b"v1"
        now[0] = 1.5  # past the TTL
        assert await loader.get_or_load("k", load) == b"v2"

    run(body())
    assert results.count("hit") == 1 and results.count("miss") == 11


def test_cache_backend_errors_fall_back_to_loading() -> None:
    class Broken:
        async def get(self, key: str) -> bytes | None:
            raise ConnectionError("redis down")

        async def set(self, key: str, value: bytes, ttl_s: float) -> None:
            raise ConnectionError("redis down")

    async def body() -> bytes:
        async def load() -> bytes:
            return b"from-db"

        return await CachedLoader(Broken(), ttl_s=1.0, on_result=lambda r: None).get_or_load("k", load)

    assert run(body()) == b"from-db"


def test_histogram_buckets_include_slo_thresholds() -> None:
    assert 0.3 in DURATION_BUCKETS and 2.0 in DURATION_BUCKETS
    m = StorefrontMetrics()
    m.observe_request("/api/home", "GET", 200, "real", 0.31)
    text = m.exposition().decode()
    assert ('storefront_http_request_duration_seconds_bucket{le="0.3",method="GET",route="/api/home",traffic="real"} 0.0') in text
    assert ('storefront_http_request_duration_seconds_bucket{le="0.5",method="GET",route="/api/home",traffic="real"} 1.0') in text


def test_metric_value_raises_on_a_series_that_is_not_exported() -> None:
    """``stock == 0`` must not pass when the gauge was never set: a missing series is an error, not 0."""
    m = StorefrontMetrics()
    m.orders.labels(traffic="shadow").inc()
    text = m.exposition().decode()
    assert metric_value(text, "storefront_orders_total", traffic="shadow") == 1
    assert metric_value(text, "storefront_orders_total", traffic="real") == 0  # exported, at 0
    with pytest.raises(MissingSeries, match=r'storefront_flash_sale_stock\{sku="FLASH-0001"\}'):
        metric_value(text, "storefront_flash_sale_stock", sku="FLASH-0001")
    with pytest.raises(LookupError, match=r'exported with: .*traffic="real"'):
        metric_value(text, "storefront_orders_total", traffic="canary")
    with pytest.raises(AssertionError, match="similar names: storefront_orders_total"):
        metric_value(text, "storefront_order_total")
    # Absence is accepted only when the caller says so.
    assert metric_value(text, "storefront_flash_sale_stock", sku="FLASH-0001", default=0.0) == 0.0


def test_multi_host_postgresql_url_with_read_write_attrs(tmp_path: Path, pg_cluster) -> None:  # type: ignore[no-untyped-def]
    """The first host refuses connections; asyncpg moves on to the live read-write one."""
    name = pg_cluster.create_database()
    try:
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]
        url = f"postgresql://postgres@127.0.0.1:{dead},127.0.0.1:{pg_cluster.port}/{name}?target_session_attrs=read-write"
        shop = start_shop(tmp_path, url, "--skus", "10", "--users", "1")
        try:

            async def body() -> int:
                async with Client(shop.url) as c:
                    return (await c.get("/api/products/SKU-000010"))[0]

            assert run(body()) == 200
        finally:
            shop.stop()
    finally:
        pg_cluster.drop_database(name)
