"""Bare Locust for bench/journey.py: a ``FastHttpUser`` walking the same shopper funnel with ``rest()`` body checks.

Each user signs in once, then walks ``BENCH_VISITS_PER_USER`` visits, one every
``BENCH_PACING`` seconds, and stops. With ``BENCH_GRID=1`` (bench/journey.py's
default) user number u (of n, in spawn order) makes its k-th visit at
T0 + (u + k x n) x pacing / n, T0 the first user's start, whatever the others
do: the visits are evenly spread, one every pacing / n seconds (what the open
model's arrivals are). Without it the wait is Locust's ``constant_pacing``:
Locust spawns the users in batches, users started or late together stay
together, and the visits come in bunches. A visit is the
peakload bench profile's: home, 2 x (category page, product, cart PUT), cart,
checkout, pay, order — the same requests, headers and body checks as
``scenarios.client.ShopClient`` makes, written the way a Locust user would.
Not meant to be run by hand.
"""

import os
import random
import time
import uuid

from locust import FastHttpUser, constant_pacing, task
from locust.exception import StopUser

__all__ = ["BareShopper"]

VISITS = int(os.environ.get("BENCH_VISITS_PER_USER", "10"))
PACING = float(os.environ.get("BENCH_PACING", "0.1"))
GRID = os.environ.get("BENCH_GRID") == "1"
USERS = int(os.environ.get("BENCH_USERS", "64"))
_grid = {"t0": 0.0, "users": 0}  # the first user's start and how many started: each user's place on the common grid


def grid_pacing(user):
    """Until this user's next visit on the common grid: T0 + (u + visits x n) x pacing / n (never bunches with the others)."""
    return max(0.0, user.t0 + user.visits * PACING - time.time())


RUN = {"X-Peakload-Run": "bench-bare", "Accept": "application/json"}
ADDRESS = {"name": "Peakload Shopper", "line1": "11 Guanggun Road", "city": "Hangzhou", "postcode": "310000", "country": "CN"}


def _count(v, lo=0):
    return isinstance(v, int) and not isinstance(v, bool) and v >= lo


class BareShopper(FastHttpUser):
    wait_time = grid_pacing if GRID else constant_pacing(PACING)
    network_timeout = 10.0
    connection_timeout = 5.0

    def on_start(self):
        if not _grid["users"]:
            _grid["t0"] = time.time()
        u, _grid["users"] = _grid["users"], _grid["users"] + 1
        self.visits, self.t0 = 0, _grid["t0"] + u * PACING / USERS
        if GRID:
            wait = self.t0 - time.time()
            if wait > 0:
                time.sleep(wait)  # gevent's sleep (Locust patched it): this user's first place on the grid
        self.headers = dict(RUN)
        with self.rest("POST", "/api/sessions", json={"username": "user00001", "password": "peakload"}, headers=self.headers) as r:
            if r.js is None or not isinstance(r.js.get("token"), str) or not _count(r.js.get("user_id"), 1):
                r.failure("token missing")
                return
            self.headers["Authorization"] = "Bearer " + r.js["token"]

    def _listing(self, r):
        items = r.js.get("items") if r.js else None
        if not isinstance(items, list) or not all(
            isinstance(i, dict) and isinstance(i.get("sku"), str) and _count(i.get("price_cents")) for i in items
        ):
            r.failure("items missing")

    @task
    def visit(self):
        if self.visits >= VISITS:
            raise StopUser()
        self.visits += 1
        h = self.headers
        with self.rest("GET", "/api/home", headers=h) as r:
            if r.js is None or not isinstance(r.js.get("categories"), list):
                r.failure("categories is not a list")
        for _ in range(2):
            cat = random.randint(1, 2)
            with self.rest(
                "GET", f"/api/categories/{cat}/products?page=1&size=20", name="/api/categories/{category_id}/products", headers=h
            ) as r:
                self._listing(r)
            sku = f"SKU-{random.randint(1, 100):06d}"
            with self.rest("GET", f"/api/products/{sku}", name="/api/products/{sku}", headers=h) as r:
                d = r.js
                if d is None or d.get("sku") != sku or not _count(d.get("price_cents")) or not _count(d.get("stock")):
                    r.failure("product fields missing")
            with self.client.request(
                "PUT", f"/api/cart/items/{sku}", name="/api/cart/items/{sku}", json={"quantity": 1}, headers=h, catch_response=True
            ) as r:
                if r.status_code not in (200, 201, 204):
                    r.failure("cart put failed")
        with self.rest("GET", "/api/cart", headers=h) as r:
            d = r.js
            items = d.get("items") if d else None
            if not isinstance(items, list) or d.get("total_cents") != sum(i["quantity"] * i["price_cents"] for i in items):
                r.failure("total_cents does not match the items")
        with self.rest("POST", "/api/orders", json={"address": ADDRESS}, headers={**h, "Idempotency-Key": str(uuid.uuid4())}) as r:
            d = r.js
            if d is None or not isinstance(d.get("order_id"), str) or not _count(d.get("total_cents")) or d.get("status") != "created":
                r.failure("order_id missing")
                return
            order = d["order_id"]
        with self.rest(
            "POST",
            f"/api/orders/{order}/payment",
            name="/api/orders/{order_id}/payment",
            headers={**h, "Idempotency-Key": str(uuid.uuid4())},
        ) as r:
            d = r.js
            if d is None or d.get("order_id") != order or not isinstance(d.get("payment_id"), str) or d.get("status") != "paid":
                r.failure("payment status is not paid")
        with self.rest("GET", f"/api/orders/{order}", name="/api/orders/{order_id}", headers=h) as r:
            if r.js is None or r.js.get("order_id") != order or r.js.get("status") != "paid":
                r.failure("order status is not paid")
