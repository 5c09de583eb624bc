"""Every API route on a real storefront process, happy paths and ownership."""

from __future__ import annotations

import uuid

from tests.storefront.sfproc import Client, ShopProcess, metric_value, run


def test_health_home_category_search_product(shop: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            assert await c.get("/healthz") == (200, {"status": "ok"})

            status, home = await c.get("/api/home")
            assert status == 200
            assert home["categories"][0] == {"id": 1, "name": "Phones"}
            assert home["hot_products"] and home["banners"]
            assert [p["sku"] for p in home["flash_sale"]] == ["FLASH-0001", "FLASH-0002", "FLASH-0003"]

            status, page2 = await c.get("/api/categories/2/products", params={"page": "2", "size": "5"})
            assert status == 200
            assert (page2["page"], page2["size"], len(page2["items"])) == (2, 5, 5)
            assert all(p["category_id"] == 2 for p in page2["items"])
            status, page1 = await c.get("/api/categories/2/products", params={"page": "1", "size": "5"})
            assert not {p["sku"] for p in page1["items"]} & {p["sku"] for p in page2["items"]}

            status, found = await c.get("/api/search", params={"q": "PHONES"})
            assert status == 200 and found["total"] > 0
            assert all("phones" in p["name"].lower() for p in found["items"])

            status, product = await c.get("/api/products/SKU-000007")
            assert status == 200
            assert set(product) >= {"sku", "name", "price_cents", "stock"} and product["sku"] == "SKU-000007"

            assert (await c.get("/api/products/SKU-999999"))[0] == 404
            assert (await c.get("/api/categories/999/products"))[0] == 404

    run(body())


def test_register_login_cart_checkout_pay_order(shop: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            await c.register_and_login()
            assert (await c.get("/api/cart"))[1] == {"items": [], "total_cents": 0}

            status, cart = await c.put("/api/cart/items/SKU-000010", {"quantity": 2})
            assert status == 200
            status, cart = await c.put("/api/cart/items/SKU-000011", {"quantity": 1})
            status, cart = await c.put("/api/cart/items/SKU-000010", {"quantity": 3})  # update
            assert [(i["sku"], i["quantity"]) for i in cart["items"]] == [("SKU-000010", 3), ("SKU-000011", 1)]
            status, cart = await c.delete("/api/cart/items/SKU-000011")
            assert status == 200 and [i["sku"] for i in cart["items"]] == ["SKU-000010"]
            assert (await c.delete("/api/cart/items/SKU-000011"))[0] == 404
            price = cart["items"][0]["price_cents"]
            assert cart["total_cents"] == 3 * price

            status, order = await c.checkout(coupon="SAVE10")
            assert status == 201, order
            assert order["status"] == "created"
            assert order["total_cents"] == 3 * price - (3 * price * 10 // 100)
            assert (await c.get("/api/cart"))[1]["items"] == []  # checkout empties the ordered lines

            status, paid = await c.pay(order["order_id"])
            assert status == 200
            assert paid["status"] == "paid" and paid["order_id"] == order["order_id"] and paid["payment_id"]

            status, seen = await c.get(f"/api/orders/{order['order_id']}")
            assert status == 200
            assert seen["status"] == "paid"
            assert seen["items"] == [{"sku": "SKU-000010", "quantity": 3, "price_cents": price}]
            assert seen["payment"]["payment_id"] == paid["payment_id"]
            assert seen["address"]["city"] == "Hangzhou"

    run(body())


def test_seeded_user_can_log_in_and_buy_flash_item_from_body(shop: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            await c.login("user00003")
            status, order = await c.checkout(items=[{"sku": "FLASH-0003", "quantity": 1}])
            assert status == 201, order
            status, product = await c.get("/api/products/FLASH-0003")
            assert product["is_flash"] is True

    run(body())


def test_sold_out_is_409(shop: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            await c.register_and_login()
            status, err = await c.checkout(items=[{"sku": "FLASH-0002", "quantity": 6}])  # stock is 5
            assert (status, err["error"]) == (409, "sold_out")

    run(body())


def test_auth_required_and_orders_are_private(shop: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as alice, Client(shop.url) as bob, Client(shop.url) as anon:
            for method, path in [
                ("GET", "/api/cart"),
                ("PUT", "/api/cart/items/SKU-000001"),
                ("DELETE", "/api/cart/items/SKU-000001"),
                ("POST", "/api/orders"),
                ("GET", f"/api/orders/{uuid.uuid4().hex}"),
                ("POST", f"/api/orders/{uuid.uuid4().hex}/payment"),
            ]:
                status, err = await anon.request(method, path, json_body={"quantity": 1})
                assert (status, err["error"]) == (401, "unauthorized"), (method, path)
            anon.token = "x" * 43
            assert (await anon.get("/api/cart"))[0] == 401

            await alice.register_and_login()
            await bob.register_and_login()
            await alice.put("/api/cart/items/SKU-000020", {"quantity": 1})
            status, order = await alice.checkout()
            assert status == 201

            # Bob cannot see, pay, or even learn that Alice's order exists.
            status, err = await bob.get(f"/api/orders/{order['order_id']}")
            assert (status, err["error"]) == (404, "not_found")
            assert (await bob.pay(order["order_id"]))[0] == 404
            assert (await bob.get("/api/cart"))[1]["items"] == []
            assert (await alice.get(f"/api/orders/{order['order_id']}"))[0] == 200

    run(body())


def test_register_duplicate_and_wrong_password(shop: ShopProcess) -> None:
    async def body() -> None:
        async with Client(shop.url) as c:
            name = f"dup{uuid.uuid4().hex[:10]}"
            assert (await c.post("/api/users", {"username": name, "password": "secret1"}))[0] == 201
            status, err = await c.post("/api/users", {"username": name, "password": "secret2"})
            assert (status, err["error"]) == (409, "username_taken")
            status, err = await c.post("/api/sessions", {"username": name, "password": "wrong-pass"})
            assert (status, err["error"]) == (401, "invalid_credentials")

    run(body())


def test_metrics_exposition_has_contract_names(shop: ShopProcess) -> None:
    async def body() -> str:
        async with Client(shop.url) as c:
            await c.get("/api/products/SKU-000001")
            await c.get("/api/products/SKU-000001")
            await c.get("/definitely/not/a/route")
            status, text = await c.get("/metrics")
            assert status == 200
            return text

    text = run(body())
    for name in [
        "storefront_http_requests_total",
        "storefront_http_request_duration_seconds_bucket",
        "storefront_db_pool_connections_in_use",
        "storefront_cache_requests_total",
        "storefront_orders_total",
        "storefront_payments_total",
        "storefront_stockouts_total",
        "storefront_oversell_rejected_total",
        "storefront_flash_sale_stock",
        "storefront_product_views_total",
        "storefront_cart_adds_total",
    ]:
        assert f"\n{name}" in text, name
    assert 'le="0.3"' in text and 'le="2.0"' in text
    assert (
        metric_value(text, "storefront_http_requests_total", route="/api/products/{sku}", method="GET", status_class="2xx", traffic="real")
        >= 2
    )
    assert metric_value(text, "storefront_http_requests_total", route="unmatched", status_class="4xx") >= 1
    assert metric_value(text, "storefront_cache_requests_total", result="hit") >= 1
    assert metric_value(text, "storefront_flash_sale_stock", sku="FLASH-0001") >= 0
    assert 'sku="FLASH-0001"' in text
    # Bounded labels: no SKU or id ever appears as a route.
    assert "SKU-000001" not in text
