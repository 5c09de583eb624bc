"""The shop-client protocol the journey speaks, its result types, and the base every dialect adapter builds on.

The journey (:mod:`scenarios.users`: funnel, ratios, Zipf picks, think times,
flash-sale race, business counters) calls only the methods of :class:`Shop`.
How a platform says it over HTTP is a *dialect adapter* behind it:
:class:`scenarios.client.ShopClient` (``dialect: storefront``, the embedded
default), :class:`scenarios.oscar.OscarShop` (``dialect: oscar``), or a user's
own ``module:Class`` (docs/adapters.md). This module imports no Locust: the
adapter is handed an HTTP session (Locust's ``FastHttpSession`` in a run, the
same class standalone in ``peakload adapter check``); the requests themselves take
the lean path of :mod:`scenarios.http` built from it (one keep-alive connection,
headers encoded once per user, orjson, Locust's request event).

An adapter declares what its platform offers:

- ``OFFERS``: the journey steps (:data:`peakload.core.steps.STEPS`) it implements;
  the journey skips the others and the report says "not offered by this platform";
- ``BOOKS``: the reconciliation fields its :meth:`BaseShop.reconcile` can give;
- ``ISOLATES``: whether the platform keeps test traffic out of real business
  figures (the storefront's run header tags orders as shadow traffic).

Every request goes through :meth:`BaseShop.call`, which names it by the
platform's route template, carries the journey step in Locust's request
context (``context={STEP_KEY: step}``) and the run header. ``self.session`` is
the lean session (cookies in ``self.session.cookies`` when the platform sets
any); ``self.http`` stays the session the adapter was handed.

Usage::

    shop = ShopClient(http, target=profile.target, run_id=run_id)   # or OscarShop(...)
    if shop.sign_in("user00042", "peakload"):
        product = shop.product(item)                  # an item id from shop.discover().items
        shop.cart_add(product, 1)
        result = shop.checkout(address=ADDRESS, idempotency_key=str(uuid.uuid4()))
"""

from __future__ import annotations

import importlib
import json as jsonlib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable
from urllib.parse import quote, urlencode

import orjson

from peakload.core import TargetSpec
from peakload.core.steps import STEP_KEY, STEPS

__all__ = [
    "Shop",
    "BaseShop",
    "Product",
    "Listing",
    "Cart",
    "CheckoutResult",
    "PaymentResult",
    "CartOutcome",
    "Catalogue",
    "Home",
    "BOOKS_FIELDS",
    "is_count",
    "is_id",
]

CartOutcome = Literal["ok", "sold_out", "error"]
# the books figures a reconciliation can give (docs/contracts.md §4); an adapter's BOOKS names those it gives
BOOKS_FIELDS: frozenset[str] = frozenset(
    {"orders_created", "orders_paid", "payments_succeeded", "oversold_units", "duplicate_orders", "duplicate_charges"}
)


@dataclass(frozen=True, slots=True)
class Product:
    """One product as its page shows it. ``sku`` is the item id the adapter addresses it by."""

    sku: str
    price_cents: int
    stock: int
    ref: str | None = field(default=None, repr=False)  # the platform's own handle when it differs from the id (Oscar: its URL)


@dataclass(frozen=True, slots=True)
class Listing:
    """A page of a category or of search results (item ids)."""

    skus: tuple[str, ...]
    total: int | None


@dataclass(frozen=True, slots=True)
class Cart:
    lines: dict[str, int]  # item id -> quantity
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


@dataclass(frozen=True, slots=True)
class Home:
    """The first screen: the categories a shopper can click (ids) and words to search for."""

    categories: tuple[str, ...] = ()
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Catalogue:
    """What the platform sells, asked once before the run (pre-flight discovery).

    ``items`` in popularity order (rank 1 = the first): Zipf picks index into it.
    ``flash_item`` / ``flash_stock``: the flash-sale product and its stock (None = unknown).
    """

    items: tuple[str, ...]
    categories: tuple[str, ...]
    flash_item: str | None = None
    flash_stock: int | None = None
    words: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())


def is_count(value: Any, *, lo: int = 0) -> bool:
    """An integer ≥ ``lo`` (bool is an int subclass; true is not a price)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= lo


def is_id(value: Any) -> bool:
    return (isinstance(value, str) and value.strip() != "") or is_count(value, lo=1)


@runtime_checkable
class Shop(Protocol):
    """What the journey calls. Every method makes its requests under its journey step."""

    OFFERS: ClassVar[frozenset[str]]
    BOOKS: ClassVar[frozenset[str]]
    ISOLATES: ClassVar[bool]

    def discover(self, *, flash_sku: str | None = None) -> Catalogue: ...
    def sign_in(self, username: str, password: str) -> bool: ...
    def home(self) -> Home | None: ...
    def category(self, category_id: str, *, page: int = 1, size: int = 20) -> Listing | None: ...
    def search(self, q: str, *, page: int = 1) -> Listing | None: ...
    def product(self, item: str) -> Product | None: ...
    def cart(self) -> Cart | None: ...
    def cart_add(self, product: Product, quantity: int) -> CartOutcome: ...
    def cart_update(self, item: str, quantity: int) -> CartOutcome: ...
    def cart_remove(self, item: str) -> bool: ...
    def checkout(
        self,
        *,
        address: dict[str, str],
        idempotency_key: str,
        coupon: str | None = None,
        items: list[dict[str, Any]] | None = None,
        flash: bool = False,
    ) -> CheckoutResult: ...
    def pay(self, order_id: str, *, idempotency_key: str) -> PaymentResult: ...
    def order(self, order_id: str, *, expect_status: str | None = None) -> dict[str, Any] | None: ...


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")  # needs no percent-encoding in a path segment or a query value


def _quoted(value: Any) -> str:
    """``quote(str(value), safe="")``, skipped for the plain ids and numbers most values are."""
    text = value if isinstance(value, str) else str(value)
    return text if _PLAIN.fullmatch(text) else quote(text, safe="")


def _query(query: Mapping[str, Any]) -> str:
    """``urlencode(query)`` for plain keys and values, ``urlencode`` itself for anything else."""
    parts = []
    for k, v in query.items():
        v = v if isinstance(v, str) else str(v)
        if not (_PLAIN.fullmatch(k) and _PLAIN.fullmatch(v)):
            return urlencode(query)
        parts.append(f"{k}={v}")
    return "&".join(parts)


def _parsed(resp: Any) -> Any:
    """The response's JSON: the lean response's cached parse, else orjson (stdlib for what orjson refuses)."""
    js = getattr(resp, "js", None)
    if callable(js):
        return js()
    content = resp.content or b""
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return jsonlib.loads(content)


class BaseShop:
    """Plumbing for adapters: paths, the run header, the step context, JSON bodies.

    Subclasses set ``PATHS`` (key → route template, overridable by ``target.paths``),
    ``OFFERS``, ``BOOKS``, ``ISOLATES`` and implement the :class:`Shop` methods.
    ``reconcile`` (a classmethod, called by ``peakload run`` after the load, outside
    Locust) may return the books; the default says the platform offers none.
    """

    PATHS: ClassVar[Mapping[str, str]] = {}
    OFFERS: ClassVar[frozenset[str]] = frozenset(STEPS)
    BOOKS: ClassVar[frozenset[str]] = frozenset()
    ISOLATES: ClassVar[bool] = False
    HEALTH: ClassVar[str] = "health"  # the PATHS key the pre-flight GETs (any 2xx/3xx = up)
    # (METHOD, PATHS key) → the journey step a logged request of that route is; "" = part of the step before it.
    # `peakload profile fit` maps access-log lines to steps with it; the product route's first {placeholder} is the item.
    LOG_STEPS: ClassVar[Mapping[tuple[str, str], str]] = {}

    @classmethod
    def health_path(cls, target: TargetSpec) -> str:
        return target.paths.get(cls.HEALTH, cls.PATHS[cls.HEALTH])

    def __init__(self, http: Any, *, target: TargetSpec, run_id: str) -> None:
        self.http = http
        self.target = target
        self.run_id = run_id
        self._templates: dict[str, str] = {}
        self.session: Any = None  # the lean path (scenarios.http) for a Locust session, None otherwise
        if getattr(http, "request_event", None) is not None and "locust" in sys.modules:
            # Imported by name, and only where Locust already runs: `peakload run` and `profile fit` load
            # this module in processes Locust must not monkey-patch (the import-linter contract).
            self.session = importlib.import_module("scenarios.http").LeanSession.of(http)
        unknown = sorted(set(target.paths) - set(self.PATHS))
        if unknown:
            raise ValueError(
                f"target.paths: unknown key {unknown[0]!r} for dialect {target.dialect!r}; expected one of {sorted(self.PATHS)}"
            )

    # ------------------------------------------------------------ plumbing

    def path(self, key: str) -> str:
        return self.target.paths.get(key, self.PATHS[key])

    def _template(self, key: str) -> str:
        """``path(key)``, looked up once per user and key."""
        try:
            return self._templates[key]
        except KeyError:
            template = self._templates[key] = self.path(key)
            return template

    def headers(self) -> dict[str, str]:
        """Headers every request carries (subclasses add auth)."""
        return {self.target.run_header: self.run_id, "Accept": "application/json"}

    def call(
        self,
        step: str,
        method: str,
        key: str,
        *,
        params: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        url: str | None = None,
    ) -> Any:
        """One request named by its route template ``PATHS[key]`` under journey ``step``; use it as ``with self.call(...) as resp:``.

        ``url`` (an absolute URL the platform handed out, e.g. a basket line) replaces the
        formatted template but the request keeps the template's name (bounded). ``headers``
        are this request's own (an idempotency key), sent with :meth:`headers`.
        """
        template = self._template(key)
        if url is None:
            url = template.format(**{k: _quoted(v) for k, v in params.items()}) if params else template
            if query:
                url = f"{url}?{_query(query)}"
        session = self.session
        if session is not None and (url[:1] == "/" or session.owns(url)):
            base = self.headers()
            if headers and not base.keys().isdisjoint(headers):
                base, headers = {**base, **headers}, None  # this request overrides a usual header: one line each
            return session.request(method, url, name=template, headers=base, extra_headers=headers, json=json, context={STEP_KEY: step})
        hdrs = self.headers()
        if headers:
            hdrs.update(headers)
        return self.http.request(method, url, name=template, headers=hdrs, json=json, catch_response=True, context={STEP_KEY: step})

    @staticmethod
    def body(resp: Any, *, kind: type = dict) -> Any:
        """The JSON body of ``kind`` (dict or list), or None after marking the request failed (parsed once per response)."""
        try:
            data = _parsed(resp)
        except (ValueError, TypeError):
            resp.failure("body is not JSON")
            return None
        if not isinstance(data, kind):
            resp.failure(f"body is not a JSON {'object' if kind is dict else 'array'}")
            return None
        return data

    @staticmethod
    def error_code(resp: Any) -> str | None:
        try:
            data = _parsed(resp)
        except (ValueError, TypeError):
            return None
        return data.get("error") if isinstance(data, dict) else None

    # ------------------------------------------------------------ after the run (no Locust)

    @classmethod
    def reconcile(cls, *, target: TargetSpec, base_url: str, run_id: str, context: Mapping[str, Any]) -> dict[str, Any]:
        """The books of this run (docs/contracts.md §4 fields), or ``{"error": why}``.

        ``context``: what the runner knows (``started_ts``, ``ended_ts``, ``usernames``,
        ``flash_item``, ``flash_stock``, ``before`` = what :meth:`books_before` returned).
        """
        return {"error": "not offered by this platform"}

    @classmethod
    def confirm_isolation(cls, *, target: TargetSpec, base_url: str, run_id: str) -> tuple[bool | None, str, dict[str, int]]:
        """Check before the load that tagged test traffic stays out of real figures.

        Returns (isolated — None when it could not be told —, how we know, the probe's tagged requests
        by "METHOD template"): the
        requests are written to run.json so server-side counts of the shop can be matched exactly.
        The default trusts ``ISOLATES`` unconfirmed; an adapter that can prove it overrides this.
        """
        how = "declared by the adapter, not confirmed" if cls.ISOLATES else "the platform does not isolate test traffic"
        return cls.ISOLATES, how, {}

    @classmethod
    def books_before(cls, *, target: TargetSpec, base_url: str) -> dict[str, Any] | None:
        """A snapshot of the books taken before the load (to count what the run added); None = not needed."""
        return None


# ---------------------------------------------------------------- route templates against logged paths

ID_SEGMENT = re.compile(r"^(?:\d+|[0-9a-fA-F-]{16,}|[A-Za-z]+-\d+|[^/]*\d[^/]*\d[^/]*)$")  # an id-like path segment


def route_pattern(template: str) -> tuple[re.Pattern[str], str]:
    """The regex a logged path matches for ``template`` (``/api/products/{sku}``; the query ignored) and its first placeholder."""
    rx, first = "", ""
    for part in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", template.split("?", 1)[0]):
        if part.startswith("{") and part.endswith("}"):
            rx += f"(?P<{part[1:-1]}>[^/]+)"
            first = first or part[1:-1]
        else:
            rx += re.escape(part)
    return re.compile(rx + r"\Z"), first


def fold_path(path: str) -> str:
    """``/api/things/123/parts`` → ``/api/things/{id}/parts``: a path with its id-like segments folded (bounded names)."""
    return "/".join("{id}" if seg and ID_SEGMENT.match(seg) else seg for seg in path.split("/"))
