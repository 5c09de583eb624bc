"""The shop client the Locust users call: one method per storefront route.

Every request is named by its route template (``/api/products/{sku}``), carries
the run header and, once signed in, ``Authorization: Bearer <token>``; every
response body is checked, and a 2xx with a wrong body is a failure
(``resp.failure("order_id missing")``). Business outcomes that arrive as 4xx —
checkout or cart-add ``409 sold_out``, login ``401`` before registering — are
successes for the request: the shop answered correctly. Connection errors and
other 4xx/5xx keep Locust's own failure (and exception type). Paths come from
the profile's ``target.paths``; payloads follow docs/contracts.md §1.

Failure messages are constant strings, so Locust's error table stays bounded.

Usage::

    shop = ShopClient(self.client, target=profile.target, run_id=run_id)
    if shop.sign_in("user00042", "peakload"):
        product = shop.product("SKU-000001")
        shop.set_cart_item(product.sku, 1)
        result = shop.checkout(address=ADDRESS, idempotency_key=str(uuid.uuid4()))
"""

from __future__ import annotations

import json as jsonlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlencode

from locust.contrib.fasthttp import FastHttpSession, ResponseContextManager

from peakload.core import TargetSpec

__all__ = [
    "ShopClient",
    "Product",
    "Listing",
    "Cart",
    "CheckoutResult",
    "PaymentResult",
    "CartOutcome",
]

CartOutcome = Literal["ok", "sold_out", "error"]


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    price_cents: int
    stock: int


@dataclass(frozen=True, slots=True)
class Listing:
    """A page of a category or of search results."""

    skus: tuple[str, ...]
    total: int | None


@dataclass(frozen=True, slots=True)
class Cart:
    lines: dict[str, int]  # sku -> quantity
    total_cents: int


@dataclass(frozen=True, slots=True)
class CheckoutResult:
    """``created`` (order_id set), ``sold_out`` (business outcome) or ``error``.

    ``retryable``: no answer or a 5xx — the same idempotency key may be sent again.
    """

    outcome: Literal["created", "sold_out", "error"]
    order_id: str | None = None
    total_cents: int | None = None
    status: int = 0
    retryable: bool = False


@dataclass(frozen=True, slots=True)
class PaymentResult:
    outcome: Literal["paid", "declined", "error"]
    payment_id: str | None = None
    status: int = 0
    retryable: bool = False


def _is_count(value: Any, *, lo: int = 0) -> bool:
    # bool is an int subclass; true is not a price.
    return isinstance(value, int) and not isinstance(value, bool) and value >= lo


def _is_id(value: Any) -> bool:
    return (isinstance(value, str) and value.strip() != "") or _is_count(value, lo=1)


class ShopClient:
    """One shopper's view of the storefront API over a Locust ``FastHttpSession``.

    ``token`` is the bearer token after :meth:`sign_in` (None = anonymous).
    """

    def __init__(self, http: FastHttpSession, *, target: TargetSpec, run_id: str) -> None:
        self.http = http
        self.target = target
        self.run_id = run_id
        self.token: str | None = None
        self.user_id: Any = None

    # ------------------------------------------------------------ plumbing

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {self.target.run_header: self.run_id, "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if extra:
            headers.update(extra)
        return headers

    @contextmanager
    def _call(
        self,
        method: str,
        key: str,
        *,
        params: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Iterator[ResponseContextManager]:
        template = self.target.path(key)
        url = template.format(**{k: quote(str(v), safe="") for k, v in (params or {}).items()})
        if query:
            url = f"{url}?{urlencode(query)}"
        with self.http.request(method, url, name=template, headers=self._headers(headers), json=json, catch_response=True) as resp:
            yield resp

    @staticmethod
    def _body(resp: ResponseContextManager) -> dict[str, Any] | None:
        """The JSON object body, or None after marking the request failed."""
        try:
            data = jsonlib.loads(resp.content or b"")
        except (ValueError, TypeError):
            resp.failure("body is not JSON")
            return None
        if not isinstance(data, dict):
            resp.failure("body is not a JSON object")
            return None
        return data

    @staticmethod
    def _error_code(resp: ResponseContextManager) -> str | None:
        try:
            data = jsonlib.loads(resp.content or b"")
        except (ValueError, TypeError):
            return None
        return data.get("error") if isinstance(data, dict) else None

    @staticmethod
    def _listing(resp: ResponseContextManager, data: dict[str, Any]) -> Listing | None:
        items = data.get("items", data.get("products"))
        if not isinstance(items, list):
            resp.failure("items missing")
            return None
        skus = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
                resp.failure("item sku missing")
                return None
            if not _is_count(item.get("price_cents")):
                resp.failure("item price_cents missing or not an integer >= 0")
                return None
            skus.append(item["sku"])
        total = data.get("total")
        return Listing(skus=tuple(skus), total=total if _is_count(total) else None)

    # ------------------------------------------------------------ sign-in

    def login(self, username: str, password: str) -> bool | None:
        """POST login. True = signed in; None = 401 (unknown user or password); False = error."""
        with self._call("POST", "login", json={"username": username, "password": password}) as resp:
            if resp.status_code == 401:
                resp.success()  # an expected answer: the caller registers next
                return None
            if resp.status_code not in (200, 201):
                return False
            data = self._body(resp)
            if data is None:
                return False
            if not isinstance(data.get("token"), str) or not data["token"]:
                resp.failure("token missing")
                return False
            if not _is_id(data.get("user_id")):
                resp.failure("user_id missing")
                return False
            self.token, self.user_id = data["token"], data["user_id"]
            return True

    def register(self, username: str, password: str) -> bool:
        """POST register (201 ``{"user_id"}``). A 409 (taken) stays a failure: the password is wrong."""
        with self._call("POST", "register", json={"username": username, "password": password}) as resp:
            if resp.status_code not in (200, 201):
                return False
            data = self._body(resp)
            if data is None:
                return False
            if not _is_id(data.get("user_id")):
                resp.failure("user_id missing")
                return False
            return True

    def sign_in(self, username: str, password: str) -> bool:
        """Log in; on 401 register and log in again. True when a token is held."""
        first = self.login(username, password)
        if first is not None:
            return first
        return self.register(username, password) and bool(self.login(username, password))

    # ------------------------------------------------------------ browsing

    def health(self) -> bool:
        with self._call("GET", "health") as resp:
            if resp.status_code != 200:
                return False
            data = self._body(resp)
            if data is None:
                return False
            if data.get("status") != "ok":
                resp.failure("status is not ok")
                return False
            return True

    def home(self) -> dict[str, Any] | None:
        """The first screen. Returns its body (``categories`` etc.) or None."""
        with self._call("GET", "home") as resp:
            if resp.status_code != 200:
                return None
            data = self._body(resp)
            if data is None:
                return None
            cats = data.get("categories")
            if cats is not None and not isinstance(cats, list):
                resp.failure("categories is not a list")
                return None
            return data

    def category(self, category_id: int, *, page: int = 1, size: int = 20) -> Listing | None:
        with self._call("GET", "category", params={"category_id": category_id}, query={"page": page, "size": size}) as resp:
            if resp.status_code != 200:
                return None
            data = self._body(resp)
            return None if data is None else self._listing(resp, data)

    def search(self, q: str, *, page: int = 1) -> Listing | None:
        with self._call("GET", "search", query={"q": q, "page": page}) as resp:
            if resp.status_code != 200:
                return None
            data = self._body(resp)
            return None if data is None else self._listing(resp, data)

    def product(self, sku: str) -> Product | None:
        """GET one product; checks sku, price_cents and stock."""
        with self._call("GET", "product", params={"sku": sku}) as resp:
            if resp.status_code != 200:
                return None
            data = self._body(resp)
            if data is None:
                return None
            if data.get("sku") != sku:
                resp.failure("sku missing or not the one asked for")
                return None
            if not _is_count(data.get("price_cents")):
                resp.failure("price_cents missing or not an integer >= 0")
                return None
            if not _is_count(data.get("stock")):
                resp.failure("stock missing or not an integer >= 0")
                return None
            return Product(sku=sku, price_cents=data["price_cents"], stock=data["stock"])

    # ------------------------------------------------------------ cart

    def _cart_body(self, resp: ResponseContextManager) -> Cart | None:
        data = self._body(resp)
        if data is None:
            return None
        items = data.get("items")
        if not isinstance(items, list):
            resp.failure("cart items missing")
            return None
        lines: dict[str, int] = {}
        expected_total = 0
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
                resp.failure("cart item sku missing")
                return None
            if not _is_count(item.get("quantity"), lo=1) or not _is_count(item.get("price_cents")):
                resp.failure("cart item quantity or price_cents missing")
                return None
            lines[item["sku"]] = item["quantity"]
            expected_total += item["quantity"] * item["price_cents"]
        if not _is_count(data.get("total_cents")):
            resp.failure("total_cents missing or not an integer >= 0")
            return None
        if data["total_cents"] != expected_total:
            resp.failure("total_cents does not match the items")
            return None
        return Cart(lines=lines, total_cents=data["total_cents"])

    def cart(self) -> Cart | None:
        with self._call("GET", "cart") as resp:
            if resp.status_code != 200:
                return None
            return self._cart_body(resp)

    def set_cart_item(self, sku: str, quantity: int) -> CartOutcome:
        """PUT a cart line (add or update). ``sold_out`` (409) is a business outcome, not an error."""
        with self._call("PUT", "cart_item", params={"sku": sku}, json={"quantity": quantity}) as resp:
            if resp.status_code == 409 and self._error_code(resp) == "sold_out":
                resp.success()
                return "sold_out"
            if resp.status_code not in (200, 201, 204):
                return "error"
            if resp.status_code == 204 or not resp.content:
                return "ok"  # a body is optional here; when present it must show the line
            cart = self._cart_body(resp)
            if cart is None:
                return "error"
            if cart.lines.get(sku) != quantity:
                resp.failure("cart line missing after update")
                return "error"
            return "ok"

    def remove_cart_item(self, sku: str) -> bool:
        with self._call("DELETE", "cart_item", params={"sku": sku}) as resp:
            if resp.status_code not in (200, 204):
                return False
            if resp.status_code == 204 or not resp.content:
                return True
            cart = self._cart_body(resp)
            if cart is None:
                return False
            if sku in cart.lines:
                resp.failure("cart line still there after delete")
                return False
            return True

    # ------------------------------------------------------------ orders

    def checkout(
        self,
        *,
        address: dict[str, str],
        idempotency_key: str,
        coupon: str | None = None,
        items: list[dict[str, Any]] | None = None,
    ) -> CheckoutResult:
        """POST an order (cart or explicit ``items``). 409 ``sold_out`` -> outcome ``sold_out`` (a success)."""
        body: dict[str, Any] = {"address": address}
        if coupon is not None:
            body["coupon"] = coupon
        if items is not None:
            body["items"] = items
        with self._call("POST", "checkout", json=body, headers={"Idempotency-Key": idempotency_key}) as resp:
            status = resp.status_code
            if status == 409 and self._error_code(resp) == "sold_out":
                resp.success()
                return CheckoutResult(outcome="sold_out", status=status)
            if status not in (200, 201):
                return CheckoutResult(outcome="error", status=status, retryable=status == 0 or status >= 500)
            data = self._body(resp)
            if data is None:
                return CheckoutResult(outcome="error", status=status)
            if not _is_id(data.get("order_id")):
                resp.failure("order_id missing")
                return CheckoutResult(outcome="error", status=status)
            if not _is_count(data.get("total_cents")):
                resp.failure("total_cents missing or not an integer >= 0")
                return CheckoutResult(outcome="error", status=status)
            if data.get("status") not in ("created", "paid"):  # "paid" on a replay after payment
                resp.failure("order status is not created")
                return CheckoutResult(outcome="error", status=status)
            return CheckoutResult(outcome="created", order_id=str(data["order_id"]), total_cents=data["total_cents"], status=status)

    def pay(self, order_id: str, *, idempotency_key: str) -> PaymentResult:
        """POST a payment. ``declined`` is a business outcome (a success for the request)."""
        with self._call("POST", "pay", params={"order_id": order_id}, headers={"Idempotency-Key": idempotency_key}) as resp:
            status = resp.status_code
            if status not in (200, 201):
                return PaymentResult(outcome="error", status=status, retryable=status == 0 or status >= 500)
            data = self._body(resp)
            if data is None:
                return PaymentResult(outcome="error", status=status)
            if str(data.get("order_id")) != order_id:
                resp.failure("order_id missing or not the one paid")
                return PaymentResult(outcome="error", status=status)
            if not _is_id(data.get("payment_id")):
                resp.failure("payment_id missing")
                return PaymentResult(outcome="error", status=status)
            if data.get("status") not in ("paid", "declined"):
                resp.failure("payment status is not paid or declined")
                return PaymentResult(outcome="error", status=status)
            return PaymentResult(outcome=data["status"], payment_id=str(data["payment_id"]), status=status)

    def order(self, order_id: str, *, expect_status: str | None = None) -> dict[str, Any] | None:
        """GET one's own order; ``expect_status`` (e.g. ``"paid"`` after a payment) is checked too."""
        with self._call("GET", "order", params={"order_id": order_id}) as resp:
            if resp.status_code != 200:
                return None
            data = self._body(resp)
            if data is None:
                return None
            if str(data.get("order_id")) != order_id:
                resp.failure("order_id missing or not the one asked for")
                return None
            if expect_status is not None and data.get("status") != expect_status:
                resp.failure(f"order status is not {expect_status}")
                return None
            return data
