"""The shop client against real HTTP with crafted answers: names, headers, body checks, outcomes."""

from __future__ import annotations

from typing import Any

PRODUCT = {"sku": "SKU-000042", "name": "Tea", "price_cents": 1999, "stock": 7}
ORDER_ID = "0123456789abcdef0123456789abcdef"
ADDRESS = {"name": "A", "city": "Hangzhou"}


def checkout(key: str = "key-1", **kw: Any) -> dict[str, Any]:
    return {"call": "checkout", "kwargs": {"address": ADDRESS, "idempotency_key": key, **kw}}


def only_request(out: dict[str, Any]) -> dict[str, Any]:
    assert len(out["requests"]) == 1, out["requests"]
    return out["requests"][0]


def test_product_is_named_by_template_and_carries_run_header_and_token(crafted_shop, drive) -> None:
    crafted_shop.answer("GET", "/api/products/SKU-000042", 200, PRODUCT)
    out = drive(crafted_shop.url, [{"call": "product", "args": ["SKU-000042"]}], token="tok-abc")
    req = only_request(out)
    assert req["name"] == "/api/products/{sku}" and req["method"] == "GET" and req["failure"] is None
    assert out["results"] == ["Product(sku='SKU-000042', price_cents=1999, stock=7)"]
    headers = crafted_shop.seen[0]["headers"]
    assert headers["X-Peakload-Run"] == "test-run-1"
    assert headers["Authorization"] == "Bearer tok-abc"


def test_product_without_price_is_a_failure(crafted_shop, drive) -> None:
    crafted_shop.answer("GET", "/api/products/SKU-000042", 200, {k: v for k, v in PRODUCT.items() if k != "price_cents"})
    out = drive(crafted_shop.url, [{"call": "product", "args": ["SKU-000042"]}])
    req = only_request(out)
    assert req["exception_type"] == "CatchResponseError"
    assert "price_cents missing" in req["failure"]
    assert out["results"] == ["None"]


def test_product_with_negative_stock_or_other_sku_is_a_failure(crafted_shop, drive) -> None:
    crafted_shop.answer("GET", "/api/products/SKU-000001", 200, {**PRODUCT, "sku": "SKU-000001", "stock": -1})
    crafted_shop.answer("GET", "/api/products/SKU-000002", 200, PRODUCT)  # answers with another SKU
    out = drive(crafted_shop.url, [{"call": "product", "args": ["SKU-000001"]}, {"call": "product", "args": ["SKU-000002"]}])
    assert [r["failure"] for r in out["requests"]] == [
        "stock missing or not an integer >= 0",
        "sku missing or not the one asked for",
    ]


def test_not_json_is_a_failure(crafted_shop, drive) -> None:
    crafted_shop.answer("GET", "/api/home", 200, "<html>maintenance</html>")
    req = only_request(drive(crafted_shop.url, [{"call": "home"}]))
    assert req["failure"] == "body is not JSON"


def test_checkout_created_sends_key_address_coupon(crafted_shop, drive) -> None:
    crafted_shop.answer("POST", "/api/orders", 201, {"order_id": ORDER_ID, "total_cents": 1799, "status": "created"})
    out = drive(crafted_shop.url, [checkout("k-123", coupon="SAVE10")], token="t")
    req = only_request(out)
    assert req["name"] == "/api/orders" and req["failure"] is None
    assert "outcome='created'" in out["results"][0] and ORDER_ID in out["results"][0]
    sent = crafted_shop.seen[0]
    assert sent["headers"]["Idempotency-Key"] == "k-123"
    assert sent["body"] == {"address": ADDRESS, "coupon": "SAVE10"}


def test_checkout_without_order_id_is_a_failure(crafted_shop, drive) -> None:
    crafted_shop.answer("POST", "/api/orders", 201, {"total_cents": 1799, "status": "created"})
    out = drive(crafted_shop.url, [checkout()])
    assert only_request(out)["failure"] == "order_id missing"
    assert "outcome='error'" in out["results"][0]


def test_checkout_sold_out_is_a_success_and_a_business_outcome(crafted_shop, drive) -> None:
    crafted_shop.answer("POST", "/api/orders", 409, {"error": "sold_out", "detail": "FLASH-0001 has 0 left"})
    out = drive(crafted_shop.url, [checkout(items=[{"sku": "FLASH-0001", "quantity": 1}])])
    req = only_request(out)
    assert req["status"] == 409 and req["failure"] is None
    assert "outcome='sold_out'" in out["results"][0]
    assert crafted_shop.seen[0]["body"]["items"] == [{"sku": "FLASH-0001", "quantity": 1}]


def test_checkout_other_conflict_and_5xx_stay_failures(crafted_shop, drive) -> None:
    crafted_shop.answer("POST", "/api/orders", 409, {"error": "idempotency_key_reused", "detail": "x"})
    out = drive(crafted_shop.url, [checkout()])
    assert only_request(out)["failure"] is not None and "retryable=False" in out["results"][0]
    crafted_shop.answer("POST", "/api/orders", 503, {"error": "unavailable", "detail": "x"})
    out = drive(crafted_shop.url, [checkout()])
    req = only_request(out)
    assert req["status"] == 503 and req["exception_type"] == "LocustBadStatusCode"  # Locust's own, not a body check
    assert "retryable=True" in out["results"][0]


def test_connection_error_is_retryable_and_keeps_its_exception(drive) -> None:
    out = drive("http://127.0.0.1:9", [checkout()])  # discard port: nothing listens
    req = only_request(out)
    assert req["status"] == 0 and "onnection" in req["exception_type"]
    assert "retryable=True" in out["results"][0]


def test_payment_declined_is_a_success_missing_status_is_not(crafted_shop, drive) -> None:
    path = f"/api/orders/{ORDER_ID}/payment"
    crafted_shop.answer("POST", path, 200, {"order_id": ORDER_ID, "payment_id": "p1", "status": "declined"})
    out = drive(crafted_shop.url, [{"call": "pay", "args": [ORDER_ID], "kwargs": {"idempotency_key": "pk"}}])
    req = only_request(out)
    assert req["name"] == "/api/orders/{order_id}/payment" and req["failure"] is None
    assert "outcome='declined'" in out["results"][0]
    assert crafted_shop.seen[0]["headers"]["Idempotency-Key"] == "pk"
    crafted_shop.answer("POST", path, 200, {"order_id": ORDER_ID, "payment_id": "p1"})
    out = drive(crafted_shop.url, [{"call": "pay", "args": [ORDER_ID], "kwargs": {"idempotency_key": "pk"}}])
    assert only_request(out)["failure"] == "payment status is not paid or declined"


def test_sign_in_registers_after_401_then_logs_in(crafted_shop, drive) -> None:
    crafted_shop.answer_in_turn(
        "POST",
        "/api/sessions",
        (401, {"error": "invalid_credentials", "detail": "x"}),
        (200, {"token": "fresh-token", "user_id": 7}),
    )
    crafted_shop.answer("POST", "/api/users", 201, {"user_id": 7})
    out = drive(crafted_shop.url, [{"call": "sign_in", "args": ["user00042", "peakload"]}])
    assert out["results"] == ["True"] and out["token"] == "fresh-token"
    assert [(r["method"], r["name"], r["failure"]) for r in out["requests"]] == [
        ("POST", "/api/sessions", None),  # 401 is expected before registering
        ("POST", "/api/users", None),
        ("POST", "/api/sessions", None),
    ]
    assert crafted_shop.seen[1]["body"] == {"username": "user00042", "password": "peakload"}


def test_login_token_is_used_and_missing_token_fails(crafted_shop, drive) -> None:
    crafted_shop.answer("POST", "/api/sessions", 200, {"token": "tok-1", "user_id": 3})
    crafted_shop.answer("GET", "/api/cart", 200, {"items": [], "total_cents": 0})
    out = drive(crafted_shop.url, [{"call": "sign_in", "args": ["u", "p"]}, {"call": "cart"}])
    assert out["results"][0] == "True" and out["token"] == "tok-1"
    assert crafted_shop.seen[1]["headers"]["Authorization"] == "Bearer tok-1"
    crafted_shop.answer("POST", "/api/sessions", 200, {"user_id": 3})
    out = drive(crafted_shop.url, [{"call": "login", "args": ["u", "p"]}])
    assert only_request(out)["failure"] == "token missing"


def test_register_conflict_is_a_failure(crafted_shop, drive) -> None:
    crafted_shop.answer("POST", "/api/sessions", 401, {"error": "invalid_credentials", "detail": "x"})
    crafted_shop.answer("POST", "/api/users", 409, {"error": "username_taken", "detail": "x"})
    out = drive(crafted_shop.url, [{"call": "sign_in", "args": ["user00001", "wrong-password"]}])
    assert out["results"] == ["False"]
    assert out["requests"][1]["name"] == "/api/users" and out["requests"][1]["status"] == 409
    assert out["requests"][1]["failure"] is not None


def test_cart_total_must_match_items(crafted_shop, drive) -> None:
    crafted_shop.answer("GET", "/api/cart", 200, {"items": [{"sku": "A", "quantity": 2, "price_cents": 100}], "total_cents": 150})
    assert only_request(drive(crafted_shop.url, [{"call": "cart"}], token="t"))["failure"] == "total_cents does not match the items"


def test_cart_add_sold_out_is_a_success_missing_line_is_not(crafted_shop, drive) -> None:
    crafted_shop.answer("PUT", "/api/cart/items/SKU-000001", 409, {"error": "sold_out", "detail": "x"})
    crafted_shop.answer("PUT", "/api/cart/items/SKU-000002", 200, {"items": [], "total_cents": 0})
    out = drive(
        crafted_shop.url,
        [
            {"call": "set_cart_item", "args": ["SKU-000001", 1]},
            {"call": "set_cart_item", "args": ["SKU-000002", 1]},
        ],
        token="t",
    )
    assert out["results"] == ["'sold_out'", "'error'"]
    assert [r["failure"] for r in out["requests"]] == [None, "cart line missing after update"]
    assert all(r["name"] == "/api/cart/items/{sku}" for r in out["requests"])
    assert crafted_shop.seen[0]["body"] == {"quantity": 1}


def test_paths_come_from_the_target_description(crafted_shop, drive) -> None:
    target = {"paths": {"product": "/v2/items/{sku}"}, "run_header": "X-Shadow"}
    crafted_shop.answer("GET", "/v2/items/SKU 1", 200, {**PRODUCT, "sku": "SKU 1"})
    out = drive(crafted_shop.url, [{"call": "product", "args": ["SKU 1"]}], target=target)
    req = only_request(out)
    assert req["name"] == "/v2/items/{sku}" and req["failure"] is None
    assert req["url"].endswith("/v2/items/SKU%201")  # path values are quoted
    assert crafted_shop.seen[0]["headers"]["X-Shadow"] == "test-run-1"


def test_category_and_search_listing_checks(crafted_shop, drive) -> None:
    crafted_shop.answer("GET", "/api/categories/3/products", 200, {"items": [PRODUCT], "total": 1})
    crafted_shop.answer("GET", "/api/search", 200, {"q": "tea"})
    out = drive(
        crafted_shop.url,
        [
            {"call": "category", "args": [3], "kwargs": {"page": 2, "size": 10}},
            {"call": "search", "args": ["red tea"]},
        ],
    )
    assert out["results"][0] == "Listing(skus=('SKU-000042',), total=1)"
    assert [r["name"] for r in out["requests"]] == ["/api/categories/{category_id}/products", "/api/search"]
    assert [r["failure"] for r in out["requests"]] == [None, "items missing"]
    assert crafted_shop.seen[0]["query"] == {"page": "2", "size": "10"}
    assert crafted_shop.seen[1]["query"] == {"q": "red tea", "page": "1"}


def test_every_request_carries_its_journey_step(crafted_shop, drive) -> None:
    crafted_shop.answer("GET", "/api/products/SKU-000042", 200, PRODUCT)
    crafted_shop.answer("PUT", "/api/cart/items/SKU-000042", 204, "")
    crafted_shop.answer("DELETE", "/api/cart/items/SKU-000042", 204, "")
    crafted_shop.answer("POST", "/api/orders", 201, {"order_id": ORDER_ID, "total_cents": 100, "status": "created"})
    out = drive(
        crafted_shop.url,
        [
            {"call": "product", "args": ["SKU-000042"]},
            {"call": "cart_update", "args": ["SKU-000042", 2]},
            {"call": "cart_remove", "args": ["SKU-000042"]},
            checkout("k1"),
            {"call": "checkout", "kwargs": {"address": ADDRESS, "idempotency_key": "k2", "flash": True}},
        ],
        token="t",
    )
    # one route, two steps: the cart line PUT is cart_update here, the order POST checkout or flash_checkout
    assert [(r["name"], r["step"]) for r in out["requests"]] == [
        ("/api/products/{sku}", "product"),
        ("/api/cart/items/{sku}", "cart_update"),
        ("/api/cart/items/{sku}", "cart_remove"),
        ("/api/orders", "checkout"),
        ("/api/orders", "flash_checkout"),
    ]
