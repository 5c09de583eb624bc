"""The django-oscar dialect (``target.dialect: oscar``): django-oscar-api 3.x over a session cookie and CSRF.

How Oscar says the journey (verified against django-oscar 4.2 + django-oscar-api 3.3,
tests/oscar/API.md):

- sign in: ``POST /api/login/ {"username", "password"}`` → 200 with an empty body and a
  ``sessionid`` cookie; every later write sends ``X-CSRFToken`` copied from the
  ``csrftoken`` cookie (and a ``Referer``, which Django's CSRF check wants);
- products are addressed by numeric id (``/api/products/{id}/``); price and stock sit on
  the ``price`` and ``availability`` sub-resources;
- the basket: ``POST /api/basket/add-product/ {"url": <product URL>, "quantity"}``; lines
  are edited by their own URL (``PATCH``/``DELETE``), learnt from ``GET <basket.lines>``;
- checkout: ``POST /api/checkout/ {"basket": <basket URL>, "total", "shipping_address"}``
  with a country URL; there is no payment endpoint and no idempotency key, so ``pay``
  is not offered and a retried checkout is not idempotent (the journey does not retry it);
- the books come from the shop's database, read-only (:meth:`OscarShop.reconcile`).

Oscar does not isolate test traffic: the run's orders are real rows in its order table.

Usage: ``target: {url: http://127.0.0.1:8000, dialect: oscar}`` in a profile.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urljoin, urlsplit

from peakload.core import TargetSpec
from peakload.core.steps import STEPS
from scenarios.shop import (
    BaseShop,
    Cart,
    CartOutcome,
    Catalogue,
    CheckoutResult,
    Home,
    Listing,
    PaymentResult,
    Product,
    is_count,
)

__all__ = ["OscarShop", "cents"]

_COUNTRY = "CN"  # the shipping country the journey's address names (ISO 3166-1 alpha-2)


def cents(value: Any) -> int | None:
    """Oscar's decimal string ``"12.99"`` → 1299; None when it is not a non-negative amount."""
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite() or d < 0:
        return None
    return int((d * 100).to_integral_value())


class OscarShop(BaseShop):
    """One shopper's session with a django-oscar shop."""

    PATHS = {
        "root": "/api/",
        "login": "/api/login/",
        "products": "/api/products/",
        "product": "/api/products/{id}/",
        "price": "/api/products/{id}/price/",
        "availability": "/api/products/{id}/availability/",
        "categories": "/api/categories/",
        "category": "/catalogue/category/{id}/",  # the HTML category page: Oscar's product listing (slug_id)
        "search": "/search/",
        "basket": "/api/basket/",
        "lines": "/api/baskets/{id}/lines/",
        "line": "/api/baskets/{basket}/lines/{id}/",
        "add_product": "/api/basket/add-product/",
        "checkout": "/api/checkout/",
        "order": "/api/orders/{id}/",
        "countries": "/api/countries/",
    }
    OFFERS = frozenset(STEPS) - {"pay"}  # Oscar's API has no payment endpoint
    LOG_STEPS = {
        ("POST", "login"): "sign_in",
        ("GET", "categories"): "home",
        ("GET", "category"): "category",
        ("GET", "search"): "search",
        ("GET", "product"): "product",
        ("GET", "price"): "",  # the product view's second request
        ("GET", "availability"): "",
        ("GET", "basket"): "cart",
        ("GET", "lines"): "",
        ("POST", "add_product"): "cart_add",
        ("PATCH", "line"): "cart_update",
        ("DELETE", "line"): "cart_remove",
        ("POST", "checkout"): "checkout",
        ("GET", "order"): "order",
    }
    BOOKS = frozenset({"orders_created", "oversold_units", "duplicate_orders"})
    ISOLATES = False
    HEALTH = "root"

    def __init__(self, http: Any, *, target: TargetSpec, run_id: str) -> None:
        super().__init__(http, target=target, run_id=run_id)
        self.base = (getattr(http, "base_url", None) or "").rstrip("/")
        self.basket_url: str | None = None
        self.lines_url: str | None = None
        self.line_urls: dict[str, str] = {}  # item id -> line URL
        self.country_url: str | None = None

    # ------------------------------------------------------------ plumbing

    def _cookies(self) -> Any:
        """The cookies the shop set: the lean session's (``scenarios.http``), else the handed session's jar."""
        return self.session.cookiejar if self.session is not None else getattr(self.http, "cookiejar", None) or ()

    def _csrf(self) -> str | None:
        if self.session is not None:
            return self.session.cookies.get("csrftoken")
        for cookie in self._cookies():
            if cookie.name == "csrftoken":
                return str(cookie.value)
        return None

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        token = self._csrf()
        if token:
            headers["X-CSRFToken"] = token
        if self.base:
            headers["Referer"] = self.base + "/"  # Django's CSRF check compares it with the host
        return headers

    def _abs(self, url: str) -> str:
        return urljoin(self.base + "/", url)

    def product_url(self, item: str) -> str:
        return self._abs(self.path("product").format(id=item))

    @staticmethod
    def _id_of(url: Any) -> str | None:
        """The trailing numeric id of an Oscar API URL (``.../products/17/`` → ``"17"``)."""
        if not isinstance(url, str):
            return None
        tail = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
        return tail if tail.isdigit() else None

    # ------------------------------------------------------------ discovery

    def discover(self, *, flash_sku: str | None = None) -> Catalogue:
        with self.call("", "GET", "products") as resp:
            if resp.status_code != 200:
                raise ValueError(f"GET {self.path('products')} answered {resp.status_code}")
            data = self.body(resp, kind=object)
        rows = data.get("results") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValueError(f"GET {self.path('products')}: expected a list of products")
        items, flash_item, words = [], None, set()
        # popularity rank = id order (Oscar lists newest first; rank 1 is the first product created)
        rows = sorted((r for r in rows if isinstance(r, dict) and is_count(r.get("id"), lo=1)), key=lambda r: int(r["id"]))
        for row in rows:
            if not isinstance(row, dict) or not is_count(row.get("id"), lo=1):
                continue
            pid = str(row["id"])
            upc = row.get("upc")
            if flash_sku is not None and flash_sku in (upc, pid, row.get("title")):
                flash_item = pid  # the flash product is not part of the everyday Zipf picks
                continue
            items.append(pid)
            words.update(w.lower() for w in str(row.get("title", "")).split() if len(w) > 2 and w.isalpha())
        with self.call("", "GET", "categories") as resp:
            cats = self.body(resp, kind=list) if resp.status_code == 200 else None
        categories = self._category_ids(cats or [])
        flash_stock = self._available(flash_item, step="") if flash_item is not None else None
        notes = () if flash_sku is None or flash_item is not None else (f"flash SKU {flash_sku!r} not found among the products",)
        return Catalogue(
            items=tuple(items),
            categories=categories,
            flash_item=flash_item,
            flash_stock=flash_stock,
            words=tuple(sorted(words)),
            notes=notes,
        )

    def _available(self, item: str, *, step: str) -> int | None:
        with self.call(step, "GET", "availability", params={"id": item}) as resp:
            if resp.status_code != 200:
                return None
            data = self.body(resp)
            if data is None:
                return None
            n = data.get("num_available")
            if n is None and data.get("is_available_to_buy") is True:
                return 10**9  # no stock tracking for this product: always available
            if not isinstance(n, int) or isinstance(n, bool):
                resp.failure("availability num_available missing")
                return None
            return max(n, 0)  # Oscar shows a negative count after it oversold: nothing left to buy

    # ------------------------------------------------------------ sign-in and browsing

    def sign_in(self, username: str, password: str) -> bool:
        with self.call("sign_in", "POST", "login", json={"username": username, "password": password}) as resp:
            if resp.status_code not in (200, 204):
                return False
            if not any(c.name == "sessionid" for c in self._cookies()):
                resp.failure("no session cookie after login")
                return False
        return True

    def home(self) -> Home | None:
        with self.call("home", "GET", "categories") as resp:
            if resp.status_code != 200:
                return None
            cats = self.body(resp, kind=list)
            if cats is None:
                return None
            ids = self._category_ids(cats)
            words = {w.lower() for c in cats if isinstance(c, dict) for w in str(c.get("name", "")).split() if len(w) > 2 and w.isalpha()}
            return Home(categories=ids, words=tuple(sorted(words)))

    @classmethod
    def _category_ids(cls, cats: list[Any]) -> tuple[str, ...]:
        """``slug_id`` of each category (how Oscar's category page is addressed)."""
        out = []
        for c in cats:
            cid = cls._id_of(c.get("url")) if isinstance(c, dict) else None
            if cid is not None and isinstance(c.get("slug"), str):
                out.append(f"{c['slug']}_{cid}")
        return tuple(out)

    def category(self, category_id: str, *, page: int = 1, size: int = 20) -> Listing | None:
        query = {"page": page} if page > 1 else None
        with self.call("category", "GET", "category", params={"id": category_id}, query=query) as resp:
            if resp.status_code == 404 and page > 1:
                resp.success()  # past the last page: Oscar's paginator answers 404
                return Listing(skus=(), total=0)
            if resp.status_code != 200:
                return None
            if b"<html" not in (resp.content or b"")[:2000].lower():
                resp.failure("category page is not HTML")
                return None
            return Listing(skus=(), total=None)

    def search(self, q: str, *, page: int = 1) -> Listing | None:
        # Oscar's search is its HTML search page (the API has none)
        with self.call("search", "GET", "search", query={"q": q, "page": page}) as resp:
            if resp.status_code == 404 and page > 1:
                resp.success()  # past the last page of results: Oscar's paginator answers 404
                return Listing(skus=(), total=0)
            if resp.status_code != 200:
                return None
            if b"<html" not in (resp.content or b"")[:2000].lower():
                resp.failure("search page is not HTML")
                return None
            return Listing(skus=(), total=None)

    def product(self, item: str) -> Product | None:
        with self.call("product", "GET", "product", params={"id": item}) as resp:
            if resp.status_code != 200:
                return None
            data = self.body(resp)
            if data is None:
                return None
            if str(data.get("id")) != str(item):
                resp.failure("product id missing or not the one asked for")
                return None
            price = data.get("price")
        if isinstance(price, dict):
            amount = cents(price.get("incl_tax"))
        else:
            with self.call("product", "GET", "price", params={"id": item}) as resp:
                if resp.status_code != 200:
                    return None
                body = self.body(resp)
                if body is None:
                    return None
                amount = cents(body.get("incl_tax"))
                if amount is None:
                    resp.failure("price incl_tax missing or not an amount")
                    return None
        if amount is None:
            return None
        stock = self._available(item, step="product")
        if stock is None:
            return None
        return Product(sku=str(item), price_cents=amount, stock=stock, ref=self.product_url(item))

    # ------------------------------------------------------------ basket

    def _basket(self, step: str) -> dict[str, Any] | None:
        with self.call(step, "GET", "basket") as resp:
            if resp.status_code != 200:
                return None
            data = self.body(resp)
            if data is None:
                return None
            if not isinstance(data.get("url"), str) or not isinstance(data.get("lines"), str):
                resp.failure("basket url or lines missing")
                return None
            self.basket_url, self.lines_url = data["url"], data["lines"]
            return data

    def _lines(self, step: str) -> list[dict[str, Any]] | None:
        if self.lines_url is None and self._basket(step) is None:
            return None
        basket_id = self._id_of(self.basket_url) or "0"
        with self.call(step, "GET", "lines", params={"id": basket_id}, url=self.lines_url) as resp:
            if resp.status_code != 200:
                return None
            lines = self.body(resp, kind=list)
            if lines is None:
                return None
            self.line_urls = {}
            for line in lines:
                pid = self._id_of(line.get("product")) if isinstance(line, dict) else None
                if pid is None or not isinstance(line.get("url"), str) or not is_count(line.get("quantity"), lo=1):
                    resp.failure("basket line product, url or quantity missing")
                    return None
                self.line_urls[pid] = line["url"]
            return lines

    def cart(self) -> Cart | None:
        basket = self._basket("cart")
        if basket is None:
            return None
        lines = self._lines("cart")
        if lines is None:
            return None
        total = cents(basket.get("total_incl_tax"))
        if total is None:
            return None
        return Cart(lines={self._id_of(x["product"]) or "": int(x["quantity"]) for x in lines}, total_cents=total)

    def _add(self, step: str, item: str, quantity: int) -> CartOutcome:
        body = {"url": self.product_url(item), "quantity": quantity}
        with self.call(step, "POST", "add_product", json=body) as resp:
            if resp.status_code == 406:
                # Oscar: "not available to buy" / not enough stock — a business outcome
                resp.success()
                return "sold_out"
            if resp.status_code not in (200, 201):
                return "error"
            data = self.body(resp)
            if data is None:
                return "error"
            if isinstance(data.get("url"), str):
                self.basket_url = data["url"]
            if isinstance(data.get("lines"), str):
                self.lines_url = data["lines"]
            return "ok"

    def cart_add(self, product: Product, quantity: int) -> CartOutcome:
        outcome = self._add("cart_add", product.sku, quantity)
        if outcome == "ok":
            self.line_urls.pop(product.sku, None)  # learnt again when the line is edited
        return outcome

    def _line_url(self, step: str, item: str) -> str | None:
        if item not in self.line_urls and self._lines(step) is None:
            return None
        return self.line_urls.get(item)

    def cart_update(self, item: str, quantity: int) -> CartOutcome:
        url = self._line_url("cart_update", item)
        if url is None:
            return "error"
        basket_id, line_id = self._id_of(self.basket_url) or "0", self._id_of(url) or "0"
        with self.call(
            "cart_update", "PATCH", "line", params={"basket": basket_id, "id": line_id}, url=url, json={"quantity": quantity}
        ) as resp:
            if resp.status_code == 406:
                resp.success()
                return "sold_out"
            if resp.status_code != 200:
                return "error"
            data = self.body(resp)
            if data is None:
                return "error"
            if data.get("quantity") != quantity:
                resp.failure("line quantity not updated")
                return "error"
            return "ok"

    def cart_remove(self, item: str) -> bool:
        url = self._line_url("cart_remove", item)
        if url is None:
            return False
        basket_id, line_id = self._id_of(self.basket_url) or "0", self._id_of(url) or "0"
        with self.call("cart_remove", "DELETE", "line", params={"basket": basket_id, "id": line_id}, url=url) as resp:
            if resp.status_code not in (200, 204):
                return False
            self.line_urls.pop(item, None)
            return True

    # ------------------------------------------------------------ orders

    def _country(self, code: str) -> str | None:
        if self.country_url is None:
            self.country_url = self._abs(self.path("countries") + f"{code}/")
        return self.country_url

    def checkout(
        self,
        *,
        address: dict[str, str],
        idempotency_key: str,
        coupon: str | None = None,
        items: list[dict[str, Any]] | None = None,
        flash: bool = False,
    ) -> CheckoutResult:
        """Place an order for the basket (``items``: put exactly these in it first, e.g. a flash sale)."""
        step = "flash_checkout" if flash else "checkout"
        for it in items or ():
            added = self._add(step, str(it["sku"]), int(it.get("quantity", 1)))
            if added != "ok":
                return CheckoutResult(outcome="sold_out" if added == "sold_out" else "error")
        basket = self._basket(step)
        if basket is None:
            return CheckoutResult(outcome="error")
        first, _, last = address.get("name", "Peakload Shopper").partition(" ")
        body = {
            "basket": basket["url"],
            "total": basket.get("total_incl_tax"),
            "guest_email": "shopper@example.test",
            "shipping_address": {
                "first_name": first,
                "last_name": last or "Shopper",
                "line1": address.get("line1", ""),
                "line4": address.get("city", ""),
                "postcode": address.get("postcode", ""),
                "country": self._country(address.get("country", _COUNTRY)),
                "phone_number": "",
            },
        }
        with self.call(step, "POST", "checkout", json=body) as resp:
            status = resp.status_code
            text = (resp.content or b"")[:2000].lower()
            if status == 406 and (b"unavailable" in text or b"not available" in text or b"stock" in text):
                resp.success()  # refused for stock: sold out, a business outcome (Oscar 4.2 does not check at checkout)
                return CheckoutResult(outcome="sold_out", status=status)
            # any other 406 is a validation error (a total that moved, a basket already ordered): it stays a failure
            if status not in (200, 201):
                # no idempotency key on Oscar: a retry could order twice, so no retry
                return CheckoutResult(outcome="error", status=status)
            data = self.body(resp)
            if data is None:
                return CheckoutResult(outcome="error", status=status)
            order_id = self._id_of(data.get("url"))
            total = cents(data.get("total_incl_tax"))
            if order_id is None or not isinstance(data.get("number"), str):
                resp.failure("order url or number missing")
                return CheckoutResult(outcome="error", status=status)
            if total is None:
                resp.failure("order total_incl_tax missing")
                return CheckoutResult(outcome="error", status=status)
        self.basket_url = self.lines_url = None  # the basket is frozen into the order; Oscar opens a new one
        self.line_urls = {}
        return CheckoutResult(outcome="created", order_id=order_id, total_cents=total, status=status)

    def pay(self, order_id: str, *, idempotency_key: str) -> PaymentResult:
        raise NotImplementedError("pay is not offered by django-oscar-api (OFFERS lacks it)")

    def order(self, order_id: str, *, expect_status: str | None = None) -> dict[str, Any] | None:
        with self.call("order", "GET", "order", params={"id": order_id}) as resp:
            if resp.status_code != 200:
                return None
            data = self.body(resp)
            if data is None:
                return None
            if self._id_of(data.get("url")) != str(order_id):
                resp.failure("order url missing or not the one asked for")
                return None
            return data

    # ------------------------------------------------------------ books (after the run, no Locust)

    @classmethod
    def _engine(cls, target: TargetSpec) -> Any:
        url = os.environ.get(target.books_url_env)
        if not url:
            return None
        import sqlalchemy

        return sqlalchemy.create_engine(url)

    @classmethod
    def books_before(cls, *, target: TargetSpec, base_url: str) -> dict[str, Any] | None:
        engine = cls._engine(target)
        if engine is None:
            return None
        import sqlalchemy

        with engine.connect() as db:
            last = db.execute(sqlalchemy.text("SELECT COALESCE(MAX(id), 0) FROM order_order")).scalar_one()
            stock = {
                str(pid): (int(n or 0), int(a or 0))
                for pid, n, a in db.execute(sqlalchemy.text("SELECT product_id, num_in_stock, num_allocated FROM partner_stockrecord"))
            }
        engine.dispose()
        return {"last_order_id": int(last), "stock": stock}

    @classmethod
    def reconcile(cls, *, target: TargetSpec, base_url: str, run_id: str, context: Mapping[str, Any]) -> dict[str, Any]:
        """Orders the run added, units ordered beyond stock (oversell), orders placed twice for one basket."""
        before = context.get("before")
        engine = cls._engine(target)
        if engine is None:
            return {"error": f"no read-only database URL in ${target.books_url_env}: the books cannot be checked"}
        if not before:
            return {"error": "no snapshot of the books was taken before the run"}
        import sqlalchemy

        q = sqlalchemy.text
        last = before["last_order_id"]
        with engine.connect() as db:
            orders = db.execute(q("SELECT COUNT(*) FROM order_order WHERE id > :last"), {"last": last}).scalar_one()
            twice = db.execute(
                q(
                    "SELECT COALESCE(SUM(n - 1), 0) FROM (SELECT basket_id, COUNT(*) AS n FROM order_order "
                    "WHERE id > :last AND basket_id IS NOT NULL GROUP BY basket_id HAVING COUNT(*) > 1) AS d"
                ),
                {"last": last},
            ).scalar_one()
            ordered = {
                str(pid): int(units or 0)
                for pid, units in db.execute(
                    q(
                        "SELECT l.product_id, SUM(l.quantity) FROM order_line l JOIN order_order o ON o.id = l.order_id "
                        "WHERE o.id > :last GROUP BY l.product_id"
                    ),
                    {"last": last},
                )
            }
        engine.dispose()
        oversold, per_product = 0, {}
        for pid, units in ordered.items():
            in_stock, allocated = before["stock"].get(pid, (0, 0))
            free = max(in_stock - allocated, 0)
            over = max(units - free, 0)
            oversold += over
            if over:
                per_product[pid] = {"ordered": units, "free_before": free, "oversold": over}
        return {
            "orders_created": int(orders),
            "oversold_units": int(oversold),
            "duplicate_orders": int(twice),
            "oversold_products": per_product,
            "source": f"read-only database (${target.books_url_env})",
            "consistent": oversold == 0 and twice == 0,
        }
