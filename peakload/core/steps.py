"""Journey steps: the platform-neutral names every request carries besides its route template.

A request's *name* is the platform's own route template (``/api/products/{sku}``,
``/api/basket/add-product/``) and differs from shop to shop; its *step* is what
the shopper was doing and is the same on every platform. Thresholds and the SLO
spec select by step (``step:checkout``), so one spec judges any platform.

The journey passes the step to Locust in the request's ``context``
(``context={STEP_KEY: "checkout"}``); the Locust bridge records it as the
series' third key and the bounded ``step`` label.

Usage::

    check_step("cart_add")            # "cart_add"; ValueError naming the known steps otherwise
    "checkout" in WRITE_STEPS          # True: it changes the shop's data
    step_scope("step:checkout")       # "checkout"; None for a request-name scope
"""

from __future__ import annotations

from typing import Final

__all__ = ["STEPS", "WRITE_STEPS", "STEP_KEY", "STEP_SCOPE_PREFIX", "NO_STEP", "check_step", "step_scope"]

STEPS: Final[tuple[str, ...]] = (
    "sign_in",
    "home",
    "category",
    "search",
    "product",
    "cart_add",
    "cart_update",
    "cart_remove",
    "cart",
    "checkout",
    "pay",
    "order",
    "flash_checkout",
)
# steps that write to the shop: refused against a non-isolating real shop unless real orders are accepted
WRITE_STEPS: Final[frozenset[str]] = frozenset({"cart_add", "cart_update", "cart_remove", "checkout", "pay", "flash_checkout"})
STEP_KEY: Final = "peakload_step"  # the key in Locust's request context
STEP_SCOPE_PREFIX: Final = "step:"
NO_STEP: Final = ""  # a request outside the journey (health probes, a user's own locustfile without steps)


def check_step(step: str) -> str:
    """``step`` when it is a journey step; ValueError naming the known ones otherwise."""
    if step not in STEPS:
        raise ValueError(f"unknown journey step {step!r}; expected one of {', '.join(STEPS)}")
    return step


def step_scope(scope: str) -> str | None:
    """The step a threshold scope selects (``step:checkout`` → ``checkout``), or None for other scopes."""
    return scope[len(STEP_SCOPE_PREFIX) :] if scope.startswith(STEP_SCOPE_PREFIX) else None
