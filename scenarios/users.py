"""The shoppers: ``Shopper`` walks the funnel, ``FlashBuyer`` races a flash sale.

A ``Shopper`` signs in once, then repeats finite visits (:class:`ShoppingSession`):
first screen → N product views (each via a category page or a search, the
product picked by Zipf popularity) → some added to the cart, some edited →
maybe review the cart and check out (coupon ``SAVE10`` sometimes) → maybe pay
and see the confirmation → leave; think time
between steps. A ``FlashBuyer`` signs in, waits for ``flash_sale.at`` seconds
after the run started, and races to order ``flash_sale.sku``, retrying with the
same idempotency key on 5xx/connection errors; it pays if it won. Branch ratios,
think times, seeds and class weights come from the profile (see
:mod:`scenarios.settings`); business outcomes go to
``scenarios.instrumentation.record_business``.

Usage::

    python -m scenarios.users --host http://127.0.0.1:8080   # one Shopper, requests printed
"""

from __future__ import annotations

import bisect
import itertools
import logging
import time
import uuid
from typing import Any, ClassVar

import gevent
from locust import SequentialTaskSet, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.exception import RescheduleTaskImmediately, StopUser
from locust.user.users import LOCUST_STATE_STOPPING

from scenarios.instrumentation import record_business
from scenarios.session import catalogue_of, feeder_row, shop_class
from scenarios.settings import get_settings, user_rng
from scenarios.shop import Catalogue, CheckoutResult, PaymentResult, Product
from scenarios.zipf import ZipfSampler

__all__ = ["Shopper", "FlashBuyer", "ShoppingSession", "ADDRESS", "COUPON", "run_started_at"]

log = logging.getLogger(__name__)

ADDRESS = {
    "name": "Peakload Shopper",
    "line1": "11 Guanggun Road",
    "city": "Hangzhou",
    "postcode": "310000",
    "country": "CN",
}
COUPON = "SAVE10"
MAX_CART_LINES = 20  # a shopper with this many lines checks out or gives up, never adds more
MAX_LINE_QUANTITY = 5
_RUN_START_ATTR = "peakload_run_started_at"
_NUMBERS_ATTR = "peakload_user_numbers"


@events.test_start.add_listener
def _stamp_run_start(environment: Environment, **_kwargs: Any) -> None:
    # On the environment, not in a module global: one stamp per Locust run.
    setattr(environment, _RUN_START_ATTR, time.time())


def run_started_at(environment: Environment) -> float | None:
    """Wall-clock time the current run started (``test_start``), or None before it."""
    return getattr(environment, _RUN_START_ATTR, None)


def _next_user_number(environment: Environment) -> int:
    counter = environment.__dict__.setdefault(_NUMBERS_ATTR, itertools.count())
    return next(counter)


class _ShopUser(FastHttpUser):
    """What both kinds of user share: settings, seeded RNG, account, shop client."""

    abstract = True
    network_timeout = 10.0
    connection_timeout = 5.0
    kind: ClassVar[str] = "user"

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.settings = get_settings()
        self.profile = self.settings.profile
        target = self.profile.target
        runner = environment.runner
        worker = max(getattr(runner, "worker_index", 0), 0) if runner is not None else 0
        workers = self.settings.workers
        shard = self.settings.shard
        if shard is not None and worker < workers:
            # one fleet, several masters: the worker's global slot keeps RNG streams and accounts distinct across shards
            worker, workers = shard.slot(worker=worker, workers=workers)
        number = _next_user_number(environment)
        self.rng = user_rng(self.settings.seed, kind=self.kind, worker=worker, number=number)
        # Distinct accounts per user (a shared account would share a cart, and two flash buyers on one
        # account are a real duplicate order to the shop): accounts interleave across workers, so they
        # stay distinct while the run's users do not outnumber target.users.
        self.account = (number * workers + worker) % target.users + 1
        self.username, self.password = target.user_format.format(n=self.account), target.password
        # feeders: a disjoint row per user (and per worker); addresses and coupons likewise
        row = feeder_row("users", number=number, worker=worker, workers=workers)
        if row is not None:
            self.username, self.password = row["username"], row["password"]
        address = feeder_row("addresses", number=number, worker=worker, workers=workers)
        self.address = ADDRESS if address is None else {k: address[k] for k in ADDRESS}
        coupon = feeder_row("coupons", number=number, worker=worker, workers=workers)
        self.coupon = COUPON if coupon is None else coupon["code"]
        self.shop = shop_class()(self.client, target=target, run_id=self.settings.run_id)
        self.offers = self.shop.OFFERS
        self.signed_in = False

    def wait_time(self) -> float:
        return self.profile.journey.think_time.sample(self.rng)

    def business(self, key: str, n: int = 1) -> None:
        record_business(self.environment, key, n)

    def sign_in(self) -> None:
        if "sign_in" not in self.offers:
            self.signed_in = True  # a platform without accounts: everyone shops as a guest
            return
        self.signed_in = self.shop.sign_in(self.username, self.password)
        if not self.signed_in:
            # The failed login/register requests are in the stats; this says what it means.
            log.warning(
                "%s could not sign in as %s (check target.password / user_format / feeders.users); no cart for it", self.kind, self.username
            )

    def checkout_with_retries(self, *, retries: int, **kwargs: Any) -> CheckoutResult:
        """Checkout, sending the same idempotency key again after a 5xx or no answer."""
        key = str(uuid.uuid4())
        result = self.shop.checkout(idempotency_key=key, **kwargs)
        for attempt in range(retries):
            if not result.retryable:
                break
            gevent.sleep(self.rng.uniform(0.05, 0.2) * (attempt + 1))  # a short, jittered back-off
            result = self.shop.checkout(idempotency_key=key, **kwargs)
        return result

    def pay_order(self, order_id: str) -> PaymentResult | None:
        """Pay with one idempotency key; on no answer or a 5xx, retry once with the same key. None: not offered."""
        if "pay" not in self.offers:
            return None
        key = str(uuid.uuid4())
        result = self.shop.pay(order_id, idempotency_key=key)
        if result.retryable:
            gevent.sleep(self.rng.uniform(0.05, 0.2))
            result = self.shop.pay(order_id, idempotency_key=key)
        self.business({"paid": "payments_success", "declined": "payments_declined"}.get(result.outcome, "payments_error"))
        return result


class ShoppingSession(SequentialTaskSet):
    """One visit to the shop, in funnel order; it ends by leaving (finite)."""

    user: Shopper

    def on_start(self) -> None:
        journey = self.user.profile.journey
        self.views_left = journey.session_actions.sample_int(self.user.rng)
        # Only signed-in sessions can use the cart.
        self.shopping = self.user.signed_in and self.user.rng.random() < journey.login_ratio
        self.order: CheckoutResult | None = None

    def _skip(self) -> None:
        # This step does not happen in this visit: go on without a think time.
        raise RescheduleTaskImmediately(True)

    def wait(self) -> None:
        """Think as ``TaskSet.wait`` does, but stay "running" meanwhile, so a stop lets the visit end at its next step.

        Locust kills a "waiting" user at once; its kill lands at the user's next switch, and when the
        think time ends in the same loop turn that switch is inside the next request: the shop serves
        it and the client never records it (measured with the lean HTTP path: 2 to 5 requests of a
        run's last second, served and not counted). Staying "running" makes a stop wait (up to
        ``--stop-timeout``) for the think time to end and the visit to stop before its next request.
        """
        if self.user._state == LOCUST_STATE_STOPPING:
            raise StopUser()
        think = self.wait_time()
        if think > 0:  # no think time: straight on (a zero sleep is a trip through gevent's loop for nothing)
            self._sleep(think)
            if self.user._state == LOCUST_STATE_STOPPING:
                raise StopUser()

    @task
    def open_first_screen(self) -> None:
        if "home" not in self.user.offers:
            self._skip()
        home = self.user.shop.home()
        if home is not None:
            self.user.learn_catalogue(home)

    @task
    def browse_products(self) -> None:
        """Reach one product the way shoppers do (category page or search), look at it, maybe add it to the cart."""
        user, ratios = self.user, self.user.profile.journey.ratios
        offers = user.offers
        searching = user.rng.random() < ratios.search
        if searching and "search" in offers:
            user.shop.search(user.search_term())
            self.wait()
        elif not searching and "category" in offers and user.category_ids:
            user.shop.category(user.pick_category(), page=1 if user.rng.random() < 0.8 else user.rng.randint(2, 3))
            self.wait()
        product = user.shop.product(user.pick_sku()) if "product" in offers else None
        self.views_left -= 1
        if product is not None:
            user.business("product_views")
            if self.shopping and product.stock > 0 and "cart_add" in offers and user.rng.random() < ratios.view_to_cart:
                self.wait()
                self.add_to_cart(product)
        if self.views_left > 0:
            self.schedule_task(self.browse_products, first=True)

    def add_to_cart(self, product: Product) -> None:
        user = self.user
        quantity = user.cart.get(product.sku, 0) + 1
        if quantity > MAX_LINE_QUANTITY or (product.sku not in user.cart and len(user.cart) >= MAX_CART_LINES):
            return
        outcome = user.shop.cart_add(product, 1) if product.sku not in user.cart else user.shop.cart_update(product.sku, quantity)
        if outcome != "ok":
            return
        user.cart[product.sku] = quantity
        user.business("cart_adds")
        if user.rng.random() < user.profile.journey.ratios.cart_edit:
            self.wait()
            self.edit_cart(product.sku)

    def edit_cart(self, sku: str) -> None:
        """Change one's mind: bump the quantity or drop the line."""
        user = self.user
        if user.rng.random() < 0.5 and user.cart[sku] < MAX_LINE_QUANTITY:
            if "cart_update" in user.offers and user.shop.cart_update(sku, user.cart[sku] + 1) == "ok":
                user.cart[sku] += 1
        elif "cart_remove" in user.offers and user.shop.cart_remove(sku):
            del user.cart[sku]

    @task
    def check_out(self) -> None:
        user, ratios = self.user, self.user.profile.journey.ratios
        if not (self.shopping and user.cart and "checkout" in user.offers and user.rng.random() < ratios.cart_to_checkout):
            self._skip()
        # Review the cart first; the shop's view of it wins over ours.
        if "cart" in user.offers:
            cart = user.shop.cart()
            if cart is None or not cart.lines:
                user.cart = {} if cart is None else dict(cart.lines)
                return
            user.cart = dict(cart.lines)
            self.wait()
        coupon = user.coupon if user.rng.random() < ratios.coupon else None
        result = user.checkout_with_retries(retries=1, address=user.address, coupon=coupon)
        if result.outcome == "created":
            user.business("orders")
            user.cart.clear()  # the shop empties the cart into the order
            self.order = result
        elif result.outcome == "sold_out":
            user.give_up_cart()
        else:
            user.reload_cart()  # unknown state after an error: look again

    @task
    def pay_for_order(self) -> None:
        user = self.user
        if self.order is None or user.rng.random() >= user.profile.journey.ratios.checkout_to_pay:
            self._skip()
        if "pay" not in user.offers:
            # no payment step on this platform: the confirmation page shows the placed order
            if "order" in user.offers:
                user.shop.order(self.order.order_id)
            return
        paid = user.pay_order(self.order.order_id)
        if paid is not None and paid.outcome == "paid":
            self.wait()
            if "order" in user.offers:
                user.shop.order(self.order.order_id, expect_status="paid")  # the confirmation page

    @task
    def leave_shop(self) -> None:
        # The visit is over; the user thinks, then a new visit starts.
        self.interrupt(reschedule=False)


class Shopper(_ShopUser):
    """A shopper on the funnel: sign in once, then one :class:`ShoppingSession` after another."""

    kind = "shopper"
    # open-model profiles (arrivals) use scenarios.arrivals.ArrivalShopper instead
    weight = 0 if get_settings().profile.arrivals else get_settings().profile.users.get("shopper", 0)
    tasks = [ShoppingSession]

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        self.catalogue: Catalogue = catalogue_of(environment, self.shop)
        self.items = self.catalogue.items
        self.sampler = ZipfSampler(len(self.items), self.profile.journey.zipf_exponent, rng=self.rng)
        hot = self.profile.journey.hot_skus
        self.hot_items: list[str] = list(hot)
        self.hot_cum: list[float] = list(itertools.accumulate(hot.values()))
        self.cart: dict[str, int] = {}
        self.category_ids: list[str] = list(self.catalogue.categories)
        self.search_words: tuple[str, ...] = self.catalogue.words or ("gift",)

    def on_start(self) -> None:
        if self.profile.journey.login_ratio > 0:
            self.sign_in()

    def learn_catalogue(self, home: Any) -> None:
        """Use the categories the first screen shows (ids to click, names to search for)."""
        if home.categories:
            self.category_ids = list(home.categories)
        if home.words:
            self.search_words = tuple(sorted(set(home.words) | set(self.catalogue.words)))

    def pick_category(self) -> str:
        return self.rng.choice(self.category_ids)

    def search_term(self) -> str:
        return self.rng.choice(self.search_words)

    def pick_sku(self) -> str:
        """A hot item by its share (``journey.hot_skus``), else an item by Zipf popularity: rank 1 is the catalogue's first item."""
        if self.hot_cum:
            u = self.rng.random()
            if u < self.hot_cum[-1]:
                return self.hot_items[bisect.bisect_right(self.hot_cum, u)]
        return self.items[self.sampler.item() - 1]

    def give_up_cart(self) -> None:
        """Something in the cart sold out: empty it and shop again next visit."""
        for sku in list(self.cart):
            if "cart_remove" in self.offers and self.shop.cart_remove(sku):
                del self.cart[sku]
        if self.cart:
            self.reload_cart()

    def reload_cart(self) -> None:
        cart = self.shop.cart() if "cart" in self.offers else None
        self.cart = dict(cart.lines) if cart is not None else {}


class FlashBuyer(_ShopUser):
    """A flash-sale buyer: sign in, wait for the sale, race once, pay if won, then idle."""

    kind = "flash_buyer"
    weight = 0 if get_settings().profile.arrivals else get_settings().profile.users.get("flash_buyer", 0)

    def on_start(self) -> None:
        self.raced = False
        self.sign_in()

    def wait_time(self) -> float:
        return 1.0  # only the idle loop after the race waits

    @task
    def race_for_flash_deal(self) -> None:
        if self.raced:
            return  # one race per buyer; idle until the run ends
        self.raced = True
        sale = self.profile.flash_sale
        flash_item = catalogue_of(self.environment, self.shop).flash_item
        if sale is None or not self.signed_in or flash_item is None or "flash_checkout" not in self.offers:
            self.business("flash_error")
            return
        started = run_started_at(self.environment) or time.time()
        # A little human reaction time, so the herd is a herd and not one instant.
        delay = started + sale.at + self.rng.uniform(0.0, 0.2) - time.time()
        if delay > 0:
            gevent.sleep(delay)
        result = self.checkout_with_retries(
            retries=sale.retries, address=self.address, items=[{"sku": flash_item, "quantity": sale.quantity}], flash=True
        )
        if result.outcome == "created":
            self.business("flash_won")
            self.business("orders")
            self.pay_order(result.order_id)
        elif result.outcome == "sold_out":
            self.business("flash_sold_out")
        else:
            self.business("flash_error")


if __name__ == "__main__":
    from locust import run_single_user

    run_single_user(Shopper)
