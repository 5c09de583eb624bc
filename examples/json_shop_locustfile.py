"""A JSON-API shop journey written from scratch: plain Locust, one peakload import for the open model.

Sign in (register on the first visit), open the home screen, view a product,
add it to the cart, check out and pay, with a body check on every answer
(``rest()`` fails a request whose JSON lacks what the next step needs). It
speaks the embedded storefront's API; change the paths for your shop.

Run it under peakload (closed or open model, workers, live gate, reports)::

    peakload run --profile examples/json_shop.yaml --locustfile examples/json_shop_locustfile.py
    peakload run --profile examples/json_shop_arrivals.yaml --locustfile examples/json_shop_locustfile.py --workers 2

or with plain Locust (a results folder is written under results/<run-id>/)::

    PEAKLOAD_PROFILE=examples/json_shop.yaml locust -f scenarios/plugin.py,examples/json_shop_locustfile.py \\
        --headless --host http://127.0.0.1:8080
"""

import random
import uuid

from locust import FastHttpUser, between, task

from scenarios.custom import journey  # marks the method one arrival runs (open model); harmless otherwise

ADDRESS = {"name": "Example Buyer", "line1": "1 Loopback Lane", "city": "Hangzhou", "postcode": "310000", "country": "CN"}


class JsonShopBuyer(FastHttpUser):
    wait_time = between(0.05, 0.2)
    weight = 1

    def on_start(self) -> None:
        self.username = f"example-{uuid.uuid4().hex[:16]}"  # one new account per user, unique across workers
        self.token = None

    def _auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def sign_in(self) -> None:
        creds = {"username": self.username, "password": "peakload"}
        with self.rest("POST", "/api/sessions", json=creds) as resp:
            if resp.status_code == 401:  # first visit: register, then sign in
                resp.success()
                self.client.post("/api/users", json=creds)
                with self.rest("POST", "/api/sessions", json=creds) as again:
                    self.token = (again.js or {}).get("token")
                return
            self.token = (resp.js or {}).get("token")
            if not self.token:
                resp.failure("no token in the sign-in answer")

    @journey
    @task
    def visit(self) -> None:
        if self.token is None:
            self.sign_in()
        with self.rest("GET", "/api/home") as resp:
            if not isinstance((resp.js or {}).get("categories"), list):
                resp.failure("home has no categories list")
        sku = f"SKU-{random.randint(1, 200):06d}"
        with self.rest("GET", f"/api/products/{sku}", name="/api/products/[sku]") as resp:
            if (resp.js or {}).get("sku") != sku:
                resp.failure("product answer is not the product asked for")
                return
            if not resp.js.get("stock"):
                return  # sold out: the visitor leaves
        with self.rest("PUT", f"/api/cart/items/{sku}", name="/api/cart/items/[sku]", json={"quantity": 1}, headers=self._auth()) as resp:
            if not isinstance((resp.js or {}).get("items"), list):
                resp.failure("cart has no items list")
                return
        key = str(uuid.uuid4())
        with self.rest("POST", "/api/orders", json={"address": ADDRESS}, headers={**self._auth(), "Idempotency-Key": key}) as resp:
            order_id = (resp.js or {}).get("order_id")
            if not order_id:
                resp.failure("no order_id in the checkout answer")
                return
        with self.rest(
            "POST", f"/api/orders/{order_id}/payment", name="/api/orders/[id]/payment", headers={**self._auth(), "Idempotency-Key": key}
        ) as resp:
            if (resp.js or {}).get("status") not in ("succeeded", "declined", "paid"):
                resp.failure(f"payment status is {(resp.js or {}).get('status')!r}")
