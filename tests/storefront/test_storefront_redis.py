"""The shared Redis cache (--redis-url): used when up, the database when it is down."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.storefront.redisproc import redis_missing, start_redis
from tests.storefront.sfproc import Client, metric_value, run, start_shop


@pytest.mark.skipif(redis_missing() is not None, reason=redis_missing() or "")
def test_redis_cache_hits_and_survives_a_redis_outage(tmp_path: Path) -> None:
    redis = pytest.importorskip("redis", reason="the 'redis' package is not installed (pip install 'redis>=5,<9')")
    server = start_redis(tmp_path)
    shop = None
    try:
        shop = start_shop(
            tmp_path, f"sqlite:///{tmp_path / 'r.db'}", "--skus", "30", "--users", "1", "--cache-ttl", "30", "--redis-url", server.url
        )

        async def browse() -> tuple[list[int], str]:
            async with Client(shop.url) as c:
                codes = [(await c.get("/api/products/SKU-000005"))[0] for _ in range(3)]
                return codes, (await c.get("/metrics"))[1]

        codes, text = run(browse())
        assert codes == [200, 200, 200]
        assert metric_value(text, "storefront_cache_requests_total", result="hit") == 2
        assert redis.Redis(port=server.port).get("storefront:product:SKU-000005") is not None

        server.stop()  # Redis dies mid-run: pages still come from the database
        codes, text = run(browse())
        assert codes == [200, 200, 200]
        assert metric_value(text, "storefront_cache_errors_total") >= 1
        # The 5xx child is created by the first 5xx: absence is the pass.
        assert metric_value(text, "storefront_http_requests_total", status_class="5xx", default=0.0) == 0
    finally:
        if shop is not None:
            shop.stop()
        server.stop()
