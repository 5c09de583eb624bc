"""The django-oscar test shop itself (tests/oscar/shop.py), driven over HTTP with the stdlib only.

What these tests pin down is what tests/oscar/API.md says: the endpoints, the bodies, CSRF on
every write of a signed-in user, and that an order placed over the API is one new row in
``order_order`` whose stock is allocated (``num_allocated``), not taken off ``num_in_stock``.
"""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import sqlite3
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.oscar.shop import OscarShop, ensure_venv, repo_root


class Session:
    """One shopper: a cookie jar, JSON in and out, ``X-CSRFToken`` from the ``csrftoken`` cookie on writes."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def cookie(self, name: str) -> str | None:
        return next((c.value for c in self.jar if c.name == name), None)

    def call(self, method: str, path: str, body: Any = None, *, csrf: bool = True) -> tuple[int, Any]:
        url = path if path.startswith("http") else self.base + path
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        token = self.cookie("csrftoken")
        if csrf and token and method not in ("GET", "HEAD"):
            headers["X-CSRFToken"] = token
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with self.opener.open(req, timeout=30) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode("utf-8", "replace")

    def sign_in(self, username: str, password: str = "peakload") -> None:
        status, body = self.call("POST", "/api/login/", {"username": username, "password": password})
        assert (status, body) == (200, ""), (status, body)


def address(shop: OscarShop, country: str = "CN") -> dict[str, str]:
    return {
        "first_name": "Li",
        "last_name": "Lei",
        "line1": "1 Peak Road",
        "line4": "Hangzhou",
        "postcode": "310000",
        "phone_number": "",
        "country": f"{shop.url}/api/countries/{country}/",
    }


def stock(shop: OscarShop, product_id: int) -> tuple[int, int]:
    con = sqlite3.connect(f"file:{shop.db_path}?mode=ro", uri=True)
    try:
        n, allocated = con.execute(
            "SELECT num_in_stock, num_allocated FROM partner_stockrecord WHERE product_id = ?", (product_id,)
        ).fetchone()
    finally:
        con.close()
    return int(n), int(allocated or 0)


def test_the_shop_answers_on_loopback(oscar_shop: OscarShop) -> None:
    assert oscar_shop.running and re.fullmatch(r"http://127\.0\.0\.1:\d+", oscar_shop.url)
    status, root = Session(oscar_shop.url).call("GET", "/api/")
    assert status == 200
    for name in ("login", "basket", "basket-add-product", "products", "categories", "checkout", "orders", "countries"):
        assert root[name].startswith(oscar_shop.url + "/api/"), name
    assert oscar_shop.db_path.is_file() and oscar_shop.flash_sku == "FLASH-0001"


def test_catalogue_products_prices_and_availability(oscar_shop: OscarShop) -> None:
    s = Session(oscar_shop.url)
    status, products = s.call("GET", "/api/products/")
    assert status == 200 and isinstance(products, list) and len(products) >= 200  # no pagination: every product at once
    by_upc = {p["upc"]: p for p in products}
    assert "SKU-000001" in by_upc and "SKU-000240" in by_upc and "FLASH-0001" in by_upc
    first = by_upc["SKU-000001"]
    assert first["url"] == f"{oscar_shop.url}/api/products/{first['id']}/" and len(first["title"].split()) >= 2

    status, detail = s.call("GET", first["url"])
    assert status == 200 and detail["upc"] == "SKU-000001" and detail["price"] == first["url"] + "price/"
    status, price = s.call("GET", detail["price"])
    assert status == 200 and price["currency"] == "CNY" and price["excl_tax"] == price["incl_tax"] and Decimal(price["incl_tax"]) > 0
    status, avail = s.call("GET", detail["availability"])
    assert status == 200 and avail["is_available_to_buy"] is True and avail["num_available"] > 1000

    status, flash = s.call("GET", f"{by_upc['FLASH-0001']['url']}availability/")
    in_stock, allocated = stock(oscar_shop, by_upc["FLASH-0001"]["id"])
    assert status == 200 and in_stock == 20 and flash["num_available"] == in_stock - allocated


def test_categories_and_the_html_pages_that_list_products(oscar_shop: OscarShop) -> None:
    s = Session(oscar_shop.url)
    status, cats = s.call("GET", "/api/categories/")
    assert status == 200 and len(cats) == 8 and cats[0]["name"] == "Phones" and cats[0]["slug"] == "phones"
    cat_id = cats[0]["url"].rstrip("/").rsplit("/", 1)[1]
    status, page = s.call("GET", f"/catalogue/category/phones_{cat_id}/")  # the API cannot filter products by category
    assert status == 200 and "<html" in page[:2000].lower()
    listed = re.search(r"<strong>(\d+)</strong> results", page)
    assert listed and int(listed.group(1)) == 31  # 240 products over 8 categories, and the flash product
    status, found = s.call("GET", "/search/?q=tea")
    hits = re.search(r"Found <strong>(\d+)</strong> result", found)
    assert status == 200 and hits and int(hits.group(1)) > 0


def test_sign_in_needs_the_right_password_and_writes_need_the_csrf_token(oscar_shop: OscarShop) -> None:
    s = Session(oscar_shop.url)
    status, body = s.call("POST", "/api/login/", {"username": "user00007", "password": "wrong"})
    assert status == 401 and body == {"non_field_errors": ["invalid login"]}
    s.sign_in("user00007")
    assert s.cookie("sessionid") and s.cookie("csrftoken")
    product = f"{oscar_shop.url}/api/products/3/"
    status, body = s.call("POST", "/api/basket/add-product/", {"url": product, "quantity": 1}, csrf=False)
    assert status == 403 and "CSRF" in body["detail"]
    status, basket = s.call("POST", "/api/basket/add-product/", {"url": product, "quantity": 1})
    assert status == 200 and basket["status"] == "Open" and basket["total_incl_tax"] != "0.00"


def test_adding_more_than_is_available_is_refused_with_406(oscar_shop: OscarShop) -> None:
    s = Session(oscar_shop.url)
    s.sign_in("user00008")
    status, avail = s.call("GET", "/api/products/4/availability/")
    n = avail["num_available"]
    status, body = s.call("POST", "/api/basket/add-product/", {"url": f"{oscar_shop.url}/api/products/4/", "quantity": n + 1})
    assert status == 406 and body == {"reason": f"a maximum of {n} can be bought"}


def test_a_signed_in_journey_places_exactly_one_order(oscar_shop: OscarShop) -> None:
    orders_before = oscar_shop.count("SELECT COUNT(*) FROM order_order")
    in_stock, allocated = stock(oscar_shop, 10)
    s = Session(oscar_shop.url)
    s.sign_in("user00009")
    product = f"{oscar_shop.url}/api/products/10/"

    status, basket = s.call("POST", "/api/basket/add-product/", {"url": product, "quantity": 1})
    assert status == 200
    status, lines = s.call("GET", basket["lines"])
    assert status == 200 and [(x["product"], x["quantity"]) for x in lines] == [(product, 1)]
    line = lines[0]["url"]
    assert re.fullmatch(rf"{re.escape(oscar_shop.url)}/api/baskets/{basket['id']}/lines/\d+/", line)

    status, changed = s.call("PATCH", line, {"quantity": 3})
    assert status == 200 and changed["quantity"] == 3
    assert Decimal(changed["price_incl_tax"]) == 3 * Decimal(lines[0]["price_incl_tax"])
    status, _ = s.call("DELETE", line)
    assert status == 204
    status, lines = s.call("GET", basket["lines"])
    assert status == 200 and lines == []

    status, basket = s.call("POST", "/api/basket/add-product/", {"url": product, "quantity": 2})
    assert status == 200
    status, basket = s.call("GET", "/api/basket/")
    total = basket["total_incl_tax"]
    assert status == 200 and Decimal(total) > 0

    checkout = {"basket": basket["url"], "total": total, "shipping_address": address(oscar_shop)}
    status, order = s.call("POST", "/api/checkout/", checkout)
    assert status == 200, order
    assert order["number"] == str(100000 + basket["id"]) and order["total_incl_tax"] == total and order["status"] == "new"
    assert order["email"] == "user00009@example.test" and order["shipping_address"]["country"].endswith("/api/countries/CN/")

    status, again = s.call("GET", order["url"])
    assert status == 200 and again["number"] == order["number"] and again["total_incl_tax"] == total
    status, order_lines = s.call("GET", order["lines"])
    assert status == 200 and [(x["product"], x["quantity"]) for x in order_lines] == [(product, 2)]
    status, body = s.call("POST", "/api/checkout/", checkout)  # the same basket twice: it is frozen now
    assert status == 401 and body == "Unauthorized"
    status, fresh = s.call("GET", "/api/basket/")
    assert status == 200 and fresh["id"] != basket["id"] and fresh["status"] == "Open"

    assert oscar_shop.count("SELECT COUNT(*) FROM order_order") == orders_before + 1
    order_id = int(order["url"].rstrip("/").rsplit("/", 1)[1])
    assert oscar_shop.count("SELECT basket_id FROM order_order WHERE id = ?", (order_id,)) == basket["id"]
    assert oscar_shop.count("SELECT SUM(quantity) FROM order_line WHERE order_id = ? AND partner_sku = 'SKU-000010'", (order_id,)) == 2
    assert stock(oscar_shop, 10) == (in_stock, allocated + 2)  # allocated at checkout; num_in_stock is untouched
    assert oscar_shop.count("SELECT COUNT(*) FROM basket_basket WHERE id = ? AND status = 'Frozen'", (basket["id"],)) == 1

    status, _ = s.call("DELETE", "/api/login/")
    assert status == 200 and s.cookie("sessionid") is None
    status, _ = s.call("GET", order["url"])
    assert status == 403


def test_ensure_venv_is_quick_when_the_venv_is_there() -> None:
    first = ensure_venv(repo_root())
    t0 = time.monotonic()
    assert ensure_venv(repo_root()) == first and first.is_file()
    assert time.monotonic() - t0 < 1.0


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.add(int(stat.parent.name))
    return out


def test_a_second_shop_starts_from_the_cached_database_and_leaves_no_process(oscar_shop: OscarShop, tmp_path: Path) -> None:
    with OscarShop(tmp_path, flash_stock=20) as shop:
        assert shop.timings["db_cached"] is True and shop.url != oscar_shop.url
        assert shop.timings["database"] + shop.timings["ready"] < 30
        assert Session(shop.url).call("GET", "/api/")[0] == 200
        master = shop._proc.pid if shop._proc else 0
        workers = _children(master)
        assert len(workers) == 2
    for pid in {master, *workers}:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    try:
        urllib.request.urlopen(shop.url + "/api/", timeout=2)
        raise AssertionError("the stopped shop still answers")
    except (urllib.error.URLError, OSError):
        pass
    assert os.path.exists(shop.access_log)
