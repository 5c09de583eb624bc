"""``peakload adapter check``: call each journey step once against the live target and say which one is wrong.

Runs in its own process (it imports Locust, which monkey-patches the process);
``peakload adapter check`` starts it. Each step's requests are captured from
the session's request event, so the table shows exactly what the run would
record: step | request | status | parsed fields | verdict.

Usage::

    PEAKLOAD_PROFILE=profiles/oscar-smoke.yaml python -m scenarios.adapter_check http://127.0.0.1:8000
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from locust.event import EventHook

from peakload.core.steps import STEP_KEY, STEPS
from scenarios.session import discover, feeder_row, shop_class, standalone_session
from scenarios.settings import get_settings
from scenarios.shop import Product

__all__ = ["check", "main"]

ADDRESS = {"name": "Peakload Check", "line1": "11 Guanggun Road", "city": "Hangzhou", "postcode": "310000", "country": "CN"}


@dataclass
class StepRow:
    step: str
    requests: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    parsed: str = ""
    verdict: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict in ("ok", "not offered", "not checked")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check(base_url: str) -> list[StepRow]:
    settings = get_settings()
    target = settings.profile.target
    cls = shop_class()
    events = EventHook()
    seen: list[dict[str, Any]] = []

    def on_request(request_type: str, name: str, response: Any = None, exception: Any = None, context: Any = None, **_kw: Any) -> None:
        seen.append(
            {
                "step": (context or {}).get(STEP_KEY, ""),
                "request": f"{request_type} {name}",
                "status": getattr(response, "status_code", None) or 0,
                "failure": None if exception is None else str(exception)[:120],
            }
        )

    events.add_listener(on_request)
    rows: dict[str, StepRow] = {s: StepRow(s) for s in ("discover", *STEPS)}
    shop = cls(standalone_session(base_url, request_event=events), target=target, run_id=settings.run_id)

    def run(step: str, fn: Any, ok: Any) -> Any:
        row = rows[step]
        if step in STEPS and step not in cls.OFFERS:
            row.verdict = "not offered"
            return None
        start = len(seen)
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - a user's adapter may raise anything; the table says what
            value, row.verdict = None, f"FAIL: {type(exc).__name__}: {exc}"[:160]
        mine = seen[start:]
        row.requests = sorted({r["request"] for r in mine})
        row.statuses = [str(r["status"]) for r in mine]
        failures = [r["failure"] for r in mine if r["failure"]]
        wrong_step = [r["request"] for r in mine if step != "discover" and r["step"] != step]
        row.parsed = _short(value)
        if row.verdict:
            pass
        elif failures:
            row.verdict = f"FAIL: {failures[0]}"
        elif wrong_step:
            row.verdict = f"FAIL: {wrong_step[0]} was not named step {step!r}"
        elif not mine and step != "discover":
            row.verdict = "FAIL: no request was made"
        elif not ok(value):
            row.verdict = "FAIL: the answer was not understood (see parsed)"
        else:
            row.verdict = "ok"
        return value

    flash = settings.profile.flash_sale.sku if settings.profile.flash_sale is not None else None
    catalogue = run("discover", lambda: discover(cls, base_url, run_id=settings.run_id, request_event=events), lambda c: bool(c.items))
    items = catalogue.items if catalogue is not None else ()
    user = feeder_row("users", number=0, worker=0, workers=1)
    username, password = (user["username"], user["password"]) if user else (target.user_format.format(n=1), target.password)
    run("sign_in", lambda: shop.sign_in(username, password), lambda v: v is True)
    home = run("home", shop.home, lambda v: v is not None)
    cats = (home.categories if home else ()) or (catalogue.categories if catalogue else ())
    run("category", lambda: shop.category(cats[0]) if cats else None, lambda v: v is not None)
    words = (catalogue.words if catalogue else ()) or ("gift",)
    run("search", lambda: shop.search(words[0]), lambda v: v is not None)
    product: Product | None = run("product", lambda: shop.product(items[0]) if items else None, lambda v: v is not None)
    if product is not None:
        run("cart_add", lambda: shop.cart_add(product, 1), lambda v: v == "ok")
        run("cart_update", lambda: shop.cart_update(product.sku, 2), lambda v: v == "ok")
        run("cart", shop.cart, lambda v: v is not None and v.lines.get(product.sku) == 2)
        run("cart_remove", lambda: shop.cart_remove(product.sku), lambda v: v is True)
        if "checkout" in cls.OFFERS and "cart_add" in cls.OFFERS:
            shop.cart_add(product, 1)  # a line to check out (counted under cart_add)
        order = run("checkout", lambda: shop.checkout(address=ADDRESS, idempotency_key=str(uuid.uuid4())), lambda v: v.outcome == "created")
        order_id = order.order_id if order is not None and order.outcome == "created" else None
        run("pay", lambda: shop.pay(order_id, idempotency_key=str(uuid.uuid4())) if order_id else None, lambda v: v is not None)
        run("order", lambda: shop.order(order_id) if order_id else None, lambda v: v is not None)
    else:
        for step in ("cart_add", "cart_update", "cart", "cart_remove", "checkout", "pay", "order"):
            rows[step].verdict = "not offered" if step not in cls.OFFERS else "FAIL: no product to use (product step failed)"
    fc = rows["flash_checkout"]
    if "flash_checkout" not in cls.OFFERS:
        fc.verdict = "not offered"
    else:
        fc.verdict = "not checked"
        fc.parsed = f"flash item {catalogue.flash_item if catalogue else None!r} for {flash!r} (a check would take its stock)"
    return list(rows.values())


def render(rows: list[StepRow]) -> str:
    head = f"{'step':<15} {'request':<46} {'status':<12} {'parsed fields':<62} verdict"
    out = [head, "-" * len(head)]
    for r in rows:
        req = ", ".join(r.requests) or "-"
        out.append(f"{r.step:<15} {req[:46]:<46} {','.join(r.statuses)[:12] or '-':<12} {r.parsed[:62]:<62} {r.verdict}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m scenarios.adapter_check BASE_URL", file=sys.stderr)
        return 2
    rows = check(args[0])
    print(render(rows))
    bad = [r for r in rows if not r.ok]
    cls = shop_class()
    print(f"\ndialect {get_settings().profile.target.dialect} ({cls.__module__}.{cls.__name__}): ", end="")
    print("every offered step answered as expected" if not bad else f"{len(bad)} step(s) failed: {', '.join(r.step for r in bad)}")
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
