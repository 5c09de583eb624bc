"""The storefront dialect (``target.dialect: storefront``, the default): one method per storefront route.

An adapter behind :class:`scenarios.shop.Shop`. Every request is named by its
route template (``/api/products/{sku}``), carries its journey step, the run
header and, once signed in, ``Authorization: Bearer <token>``; every response
body is checked, and a 2xx with a wrong body is a failure
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
        shop.cart_add(product, 1)
        result = shop.checkout(address=ADDRESS, idempotency_key=str(uuid.uuid4()))
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from peakload.core import DEFAULT_PATHS, TargetSpec
from peakload.core.net import fetch_json, http_request
from peakload.core.steps import NO_STEP, STEPS
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
)
from scenarios.shop import is_count as _is_count
from scenarios.shop import is_id as _is_id

__all__ = [
    "ShopClient",
    "Product",
    "Listing",
    "Cart",
    "CheckoutResult",
    "PaymentResult",
    "CartOutcome",
]

# Used until the first screen names the categories.
SEARCH_WORDS = ("phone", "wireless", "red", "pro", "mini", "gift", "tea", "shoes", "classic", "premium")


class ShopClient(BaseShop):
    """One shopper's view of the storefront API, handed a Locust ``FastHttpSession``.

    Requests take the lean path built from it (:mod:`scenarios.http`: one kept
    connection, headers encoded once per token, orjson); the request events are
    ``FastHttpSession``'s.

    ``token`` is the bearer token after :meth:`sign_in` (None = anonymous).
    """

    PATHS = DEFAULT_PATHS
    OFFERS = frozenset(STEPS)
    LOG_STEPS = {
        ("POST", "login"): "sign_in",
        ("POST", "register"): "sign_in",
        ("GET", "home"): "home",
        ("GET", "category"): "category",
        ("GET", "search"): "search",
        ("GET", "product"): "product",
        ("GET", "cart"): "cart",
        ("PUT", "cart_item"): "cart_add",  # add or update: a log cannot tell; the fit decides from what came before
        ("DELETE", "cart_item"): "cart_remove",
        ("POST", "checkout"): "checkout",
        ("POST", "pay"): "pay",
        ("GET", "order"): "order",
    }
    BOOKS = frozenset({"orders_created", "orders_paid", "payments_succeeded", "oversold_units", "duplicate_orders", "duplicate_charges"})
    ISOLATES = True  # the run header tags every order as shadow traffic, excluded from real figures
    _STEP_OF: ClassVar[dict[str, str]] = {
        "login": "sign_in",
        "register": "sign_in",
        "health": NO_STEP,
        "home": "home",
        "category": "category",
        "search": "search",
        "product": "product",
        "cart": "cart",
        "cart_item": "cart_add",
        "checkout": "checkout",
        "pay": "pay",
        "order": "order",
    }

    def __init__(self, http: Any, *, target: TargetSpec, run_id: str) -> None:
        super().__init__(http, target=target, run_id=run_id)
        self.token: str | None = None
        self.user_id: Any = None

    # ------------------------------------------------------------ plumbing

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _call(
        self,
        method: str,
        key: str,
        *,
        step: str | None = None,
        params: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """``BaseShop.call`` under the route's usual step (``step`` overrides: one route, two steps)."""
        return self.call(self._STEP_OF[key] if step is None else step, method, key, params=params, query=query, json=json, headers=headers)

    @staticmethod
    def _listing(resp: Any, data: dict[str, Any]) -> Listing | None:
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

    # ------------------------------------------------------------ books (after the run, no Locust)

    @classmethod
    def reconcile(cls, *, target: TargetSpec, base_url: str, run_id: str, context: Mapping[str, Any]) -> dict[str, Any]:
        """The storefront's own books for this run: ``GET <reconcile>?run_id=`` (docs/contracts.md §4)."""
        path = target.paths.get("reconcile", cls.PATHS["reconcile"])
        headers = {}
        if target.admin_token_env and os.environ.get(target.admin_token_env):
            headers["Authorization"] = f"Bearer {os.environ[target.admin_token_env]}"
        try:
            return fetch_json(base_url.rstrip("/") + path + f"?run_id={run_id}", timeout=30, headers=headers)
        except Exception as exc:  # a shop without that endpoint: the books are unknown, not zero
            return {"error": f"GET {path} failed: {getattr(exc, 'reason', exc)}"}

    @classmethod
    def confirm_isolation(cls, *, target: TargetSpec, base_url: str, run_id: str) -> tuple[bool | None, str, dict[str, int]]:
        """Place one tagged order and see it counted as shadow traffic, not real, on the shop's /metrics.

        The probe order carries its own run id (``<run>-isolation``), so the run's books do not count it.
        """
        base = base_url.rstrip("/")
        probe = f"{run_id}-isolation"
        sent: dict[str, int] = {}

        def call(method: str, key: str, body: Any = None, token: str | None = None, **params: str) -> tuple[int, Any]:
            template = target.path(key)
            path = template.format(**params)
            sent[f"{method} {template}"] = sent.get(f"{method} {template}", 0) + 1
            headers = {target.run_header: probe, "Content-Type": "application/json", "Accept": "application/json", "Idempotency-Key": probe}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            data = None if body is None else json.dumps(body).encode()
            status, raw = http_request(base + path, data, method=method, timeout=10, headers=headers)
            try:
                return status, json.loads(raw or b"null")
            except ValueError:
                return status, None

        def orders() -> dict[str, float] | None:
            status, raw = http_request(base + target.path("metrics"), timeout=10)
            if status != 200:
                return None
            found = {"real": 0.0, "shadow": 0.0}
            for line in raw.decode("utf-8", "replace").splitlines():
                if line.startswith("storefront_orders_total{"):
                    for traffic in found:
                        if f'traffic="{traffic}"' in line:
                            found[traffic] = float(line.rsplit(" ", 1)[1])
            return found

        before = orders()
        if before is None:
            return None, "not confirmed: could not read the shop's /metrics", sent
        user = target.user_format.format(n=1)
        status, body = call("POST", "login", {"username": user, "password": target.password})
        if status == 401:
            call("POST", "register", {"username": user, "password": target.password})
            status, body = call("POST", "login", {"username": user, "password": target.password})
        token = body.get("token") if isinstance(body, dict) else None
        sku = target.sku_format.format(n=target.skus)  # the least popular item: the run's Zipf picks barely touch it
        if not token or call("PUT", "cart_item", {"quantity": 1}, token, sku=quote(sku, safe=""))[0] not in (200, 201, 204):
            return None, f"not confirmed: the isolation probe could not sign in as {user} or fill a cart", sent
        status, _ = call("POST", "checkout", {"address": {"name": "Isolation Probe", "country": "CN"}}, token)
        after = orders()
        if status not in (200, 201) or after is None:
            return None, f"not confirmed: the isolation probe order was not placed (status {status})", sent
        if after["real"] == before["real"] + 1 and after["shadow"] == before["shadow"]:
            moved = f"real orders {before['real']:g} -> {after['real']:g}"
            return False, f"a tagged probe order moved {moved}: test traffic is NOT isolated", sent
        if after["real"] == before["real"] and after["shadow"] == before["shadow"] + 1:
            return True, "confirmed: one tagged probe order counted as shadow traffic, real orders unchanged", sent
        # e.g. several replicas behind a balancer: the /metrics read is another replica's
        return None, "not confirmed: the probe order did not show on the /metrics read (several replicas behind a balancer?)", sent

    # ------------------------------------------------------------ discovery

    def discover(self, *, flash_sku: str | None = None) -> Catalogue:
        """The storefront seeds ``sku_format`` × ``skus`` (embedded: ``embedded.skus``); no request needed.

        The first screen's categories are learnt during the run (:meth:`home`); the flash
        SKU is sold by its own name.
        """
        t = self.target
        items = tuple(t.sku_format.format(n=n) for n in range(1, t.skus + 1))
        cats = tuple(str(c) for c in range(1, t.categories + 1))
        return Catalogue(items=items, categories=cats, flash_item=flash_sku, words=SEARCH_WORDS)

    # ------------------------------------------------------------ sign-in

    def login(self, username: str, password: str) -> bool | None:
        """POST login. True = signed in; None = 401 (unknown user or password); False = error."""
        with self._call("POST", "login", json={"username": username, "password": password}) as resp:
            if resp.status_code == 401:
                resp.success()  # an expected answer: the caller registers next
                return None
            if resp.status_code not in (200, 201):
                return False
            data = self.body(resp)
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
            data = self.body(resp)
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
            data = self.body(resp)
            if data is None:
                return False
            if data.get("status") != "ok":
                resp.failure("status is not ok")
                return False
            return True

    def home(self) -> Home | None:
        """The first screen: the categories it shows (ids to click, names to search for), or None."""
        with self._call("GET", "home") as resp:
            if resp.status_code != 200:
                return None
            data = self.body(resp)
            if data is None:
                return None
            cats = data.get("categories")
            if cats is not None and not isinstance(cats, list):
                resp.failure("categories is not a list")
                return None
            shown = [c for c in cats or [] if isinstance(c, dict) and _is_count(c.get("id"), lo=1)]
            words = {w.lower() for c in shown for w in str(c.get("name", "")).split() if len(w) > 2}
            return Home(categories=tuple(str(c["id"]) for c in shown), words=tuple(sorted(words)))

    def category(self, category_id: str | int, *, page: int = 1, size: int = 20) -> Listing | None:
        with self._call("GET", "category", params={"category_id": category_id}, query={"page": page, "size": size}) as resp:
            if resp.status_code != 200:
                return None
            data = self.body(resp)
            return None if data is None else self._listing(resp, data)

    def search(self, q: str, *, page: int = 1) -> Listing | None:
        with self._call("GET", "search", query={"q": q, "page": page}) as resp:
            if resp.status_code != 200:
                return None
            data = self.body(resp)
            return None if data is None else self._listing(resp, data)

    def product(self, sku: str) -> Product | None:
        """GET one product; checks sku, price_cents and stock."""
        with self._call("GET", "product", params={"sku": sku}) as resp:
            if resp.status_code != 200:
                return None
            data = self.body(resp)
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

    def _cart_body(self, resp: Any) -> Cart | None:
        data = self.body(resp)
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

    def cart_add(self, product: Product, quantity: int) -> CartOutcome:
        return self.set_cart_item(product.sku, quantity, step="cart_add")

    def cart_update(self, item: str, quantity: int) -> CartOutcome:
        return self.set_cart_item(item, quantity, step="cart_update")

    def cart_remove(self, item: str) -> bool:
        return self.remove_cart_item(item)

    def set_cart_item(self, sku: str, quantity: int, *, step: str = "cart_add") -> CartOutcome:
        """PUT a cart line (add or update). ``sold_out`` (409) is a business outcome, not an error."""
        with self._call("PUT", "cart_item", step=step, params={"sku": sku}, json={"quantity": quantity}) as resp:
            if resp.status_code == 409 and self.error_code(resp) == "sold_out":
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
        with self._call("DELETE", "cart_item", step="cart_remove", params={"sku": sku}) as resp:
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
        flash: bool = False,
    ) -> CheckoutResult:
        """POST an order (cart or explicit ``items``). 409 ``sold_out`` -> outcome ``sold_out`` (a success)."""
        body: dict[str, Any] = {"address": address}
        if coupon is not None:
            body["coupon"] = coupon
        if items is not None:
            body["items"] = items
        step = "flash_checkout" if flash else "checkout"
        with self._call("POST", "checkout", step=step, json=body, headers={"Idempotency-Key": idempotency_key}) as resp:
            status = resp.status_code
            if status == 409 and self.error_code(resp) == "sold_out":
                resp.success()
                return CheckoutResult(outcome="sold_out", status=status)
            if status not in (200, 201):
                return CheckoutResult(outcome="error", status=status, retryable=status == 0 or status >= 500)
            data = self.body(resp)
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
            data = self.body(resp)
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
            data = self.body(resp)
            if data is None:
                return None
            if str(data.get("order_id")) != order_id:
                resp.failure("order_id missing or not the one asked for")
                return None
            if expect_status is not None and data.get("status") != expect_status:
                resp.failure(f"order status is not {expect_status}")
                return None
            return data
