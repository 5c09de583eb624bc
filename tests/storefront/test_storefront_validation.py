"""Bad input always gets a 4xx JSON error, never a 500 (and the shop keeps working)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.storefront.sfproc import Client, ShopProcess, metric_value, run

DROP = "'; DROP TABLE products; --"
SCRIPT = "<script>alert(1)</script>"
GOOD_ADDRESS = {"line1": "1 Test Road", "city": "Hangzhou"}

# (method, path, raw body or JSON body, extra headers)
CASES: list[tuple[str, str, Any, dict[str, str]]] = [
    # bad JSON / wrong shapes
    ("PUT", "/api/cart/items/SKU-000001", b"{not json", {}),
    ("PUT", "/api/cart/items/SKU-000001", b"", {}),
    ("PUT", "/api/cart/items/SKU-000001", b"\xff\xfe", {}),
    ("PUT", "/api/cart/items/SKU-000001", b"[1, 2]", {}),
    ("PUT", "/api/cart/items/SKU-000001", b'{"quantity": NaN}', {}),
    ("PUT", "/api/cart/items/SKU-000001", b"[" * 30_000 + b"]" * 30_000, {}),  # deep nesting
    # wrong types and ranges
    ("PUT", "/api/cart/items/SKU-000001", {"quantity": "2"}, {}),
    ("PUT", "/api/cart/items/SKU-000001", {"quantity": 1.5}, {}),
    ("PUT", "/api/cart/items/SKU-000001", {"quantity": True}, {}),
    ("PUT", "/api/cart/items/SKU-000001", {"quantity": None}, {}),
    ("PUT", "/api/cart/items/SKU-000001", {"quantity": -1}, {}),
    ("PUT", "/api/cart/items/SKU-000001", {"quantity": 0}, {}),
    ("PUT", "/api/cart/items/SKU-000001", {"quantity": 101}, {}),
    ("PUT", "/api/cart/items/SKU-000001", {"quantity": 10**30}, {}),
    ("PUT", "/api/cart/items/SKU-000001", b'{"quantity": 1' + b"0" * 5000 + b"}", {}),
    ("PUT", f"/api/cart/items/{DROP}", {"quantity": 1}, {}),
    ("PUT", "/api/cart/items/SKU-999999", {"quantity": 1}, {}),
    ("DELETE", f"/api/cart/items/{SCRIPT}", None, {}),
    # checkout
    ("POST", "/api/orders", {"items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),  # no address
    ("POST", "/api/orders", {"address": {}, "items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": 42, "items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": {"line1": ["x"]}, "items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": {"line1": "x" * 5000}, "items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": {"line1": "a\u0000b"}, "items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": {"line1": "\ud800"}, "items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "items": [{"sku": "SKU-000001", "quantity": -5}]}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "items": [{"sku": "SKU-000001", "quantity": 1000}]}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "items": [{"sku": DROP, "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "items": [{"sku": "SKU-999999", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "items": "SKU-000001"}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "items": []}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "items": [{"sku": "SKU-000001", "quantity": 1}] * 2}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "coupon": "FREE100", "items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "coupon": 10, "items": [{"sku": "SKU-000001", "quantity": 1}]}, {}),
    ("POST", "/api/orders", {"address": GOOD_ADDRESS}, {}),  # empty cart
    ("POST", "/api/orders", {"address": GOOD_ADDRESS, "items": [{"sku": "SKU-000001", "quantity": 1}]}, {"Idempotency-Key": "k" * 500}),
    (
        "POST",
        "/api/orders",
        {"address": GOOD_ADDRESS, "items": [{"sku": "SKU-000001", "quantity": 1}]},
        {"X-Peakload-Run": "bad run id with spaces"},
    ),
    # order / payment ids
    ("GET", f"/api/orders/{DROP}", None, {}),
    ("GET", "/api/orders/1%20OR%201=1", None, {}),
    ("POST", f"/api/orders/{SCRIPT}/payment", None, {}),
    ("POST", f"/api/orders/{uuid.uuid4().hex}/payment", b"{oops", {}),
    # auth bodies
    ("POST", "/api/users", {"username": DROP, "password": "secret1"}, {}),
    ("POST", "/api/users", {"username": "ok_name", "password": 123456}, {}),
    ("POST", "/api/users", {"username": "ab", "password": "secret1"}, {}),
    ("POST", "/api/users", {"username": "x" * 65, "password": "secret1"}, {}),
    ("POST", "/api/sessions", {"username": SCRIPT, "password": "secret1"}, {}),
    ("POST", "/api/sessions", b"null", {}),
    # catalogue queries
    ("GET", "/api/search", None, {}),
    ("GET", "/api/search?q=" + "a" * 1000, None, {}),
    ("GET", "/api/search?q=a%00b", None, {}),
    ("GET", "/api/search?q=phone&page=-1", None, {}),
    ("GET", "/api/search?q=phone&page=abc", None, {}),
    ("GET", "/api/search?q=phone&size=100000", None, {}),
    ("GET", "/api/categories/1/products?page=99999999999999", None, {}),
    ("GET", "/api/categories/-1/products", None, {}),
    ("GET", f"/api/categories/{DROP}/products", None, {}),
    ("GET", f"/api/products/{DROP}", None, {}),
    ("GET", f"/api/products/{SCRIPT}", None, {}),
    ("GET", "/api/products/" + "A" * 300, None, {}),
    ("PATCH", "/api/cart", None, {}),
    ("PUT", "/api/cart/items/SKU-000001", b"{" + b'"a":1,' * 20_000 + b'"quantity":1}', {}),  # > 64 KiB
]


@pytest.fixture(scope="module")
def buyer_token(shop: ShopProcess) -> str:
    async def body() -> str:
        async with Client(shop.url) as c:
            await c.register_and_login()
            assert c.token
            return c.token

    return run(body())


def test_bad_inputs_get_4xx_json_never_500(shop: ShopProcess, buyer_token: str) -> None:
    async def body() -> list[str]:
        problems = []
        async with Client(shop.url) as c:
            c.token = buyer_token
            for method, path, payload, headers in CASES:
                raw = payload if isinstance(payload, bytes) else None
                status, err = await c.request(method, path, data=raw, headers=headers, json_body=None if raw is not None else payload)
                shown = f"{method} {path[:60]} {str(payload)[:60]!r}"
                if not 400 <= status < 500:
                    problems.append(f"{shown}: status {status}")
                elif not (isinstance(err, dict) and isinstance(err.get("error"), str) and isinstance(err.get("detail"), str)):
                    problems.append(f"{shown}: body is not contract error JSON: {str(err)[:100]}")
            # The shop is still fine: tables exist, catalogue intact.
            assert (await c.get("/api/products/SKU-000001"))[0] == 200
            status, text = await c.get("/metrics")
            # Both children appear only once a 5xx / an unhandled error happens: absence is the pass.
            assert metric_value(text, "storefront_http_requests_total", status_class="2xx") > 0
            assert metric_value(text, "storefront_http_requests_total", status_class="5xx", default=0.0) == 0
            assert metric_value(text, "storefront_unhandled_exceptions_total", default=0.0) == 0
        return problems

    problems = run(body())
    assert not problems, "\n".join(problems)


def test_metacharacters_are_data_not_code(shop: ShopProcess, buyer_token: str) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            # LIKE wildcards and quotes in search match literally.
            for q in ["%", "_", "\\", DROP, SCRIPT, "100%_off"]:
                status, found = await c.get("/api/search", params={"q": q})
                assert status == 200, (q, found)
                assert found["total"] == 0, q
            c.token = buyer_token
            address = {"line1": SCRIPT, "line2": DROP, "city": "杭州"}
            status, order = await c.post(
                "/api/orders",
                {"address": address, "items": [{"sku": "SKU-000050", "quantity": 1}]},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert status == 201, order
            status, seen = await c.get(f"/api/orders/{order['order_id']}")
            assert seen["address"] == address  # stored verbatim, served as JSON
            assert (await c.get("/api/products/SKU-000050"))[0] == 200

    run(body())


def test_error_responses_are_json_with_nosniff(shop: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            async with c._session.get(f"{shop.url}/api/products/{SCRIPT}") as resp:  # type: ignore[union-attr]
                assert resp.status == 404
                assert resp.headers["Content-Type"].startswith("application/json")
                assert resp.headers["X-Content-Type-Options"] == "nosniff"

    run(body())
