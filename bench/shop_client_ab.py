"""The shop client's CPU per journey request, this tree against an earlier git revision, side by side in one run.

Usage::

    .venv/bin/python bench/shop_client_ab.py --baseline bf1a7ff          # 3 rounds of 4000 visits per tree

What is measured: the generator-side cost of the storefront journey's
requests — the shop client (``scenarios.client.ShopClient``: URL building,
headers, body checks, the step context) plus the exporter's request listener
(``scenarios.bridge.Instrumentation.on_request`` → ``StatsStore``) — over
Locust's ``FastHttpSession``. The target is Debian nginx on CPU 0 answering
every storefront route with canned, correct JSON (so every body check passes
and a wrong answer would be counted as a failure); the client runs on CPU 1.
One *visit* is sign-in, home, category, search, product, cart add, cart
update, cart, checkout, pay, order: 11 requests, the same in both trees.
Trees alternate per round; the figure is requests per client CPU-second
(process time), and the ratio current / baseline of the medians. Failures
are counted and must be 0 in both.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ab import alternate, baseline_worktree  # noqa: E402
from generator import start_nginx  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
MAX_ROUNDS = 5
MAX_VISITS = 20_000

# every storefront route, canned and correct (nginx syntax; $1 echoes the id asked for)
LOCATIONS = r"""
        default_type application/json;
        location = /healthz { return 200 '{"status":"ok"}'; }
        location = /api/sessions { return 200 '{"token":"t0k","user_id":1}'; }
        location = /api/home { return 200 '{"categories":[{"id":1,"name":"Phones"},{"id":2,"name":"Tea"}]}'; }
        location ~ ^/api/categories/\d+/products$ { return 200 '{"items":[{"sku":"SKU-000001","price_cents":100}],"total":1}'; }
        location = /api/search { return 200 '{"items":[{"sku":"SKU-000001","price_cents":100}],"total":1}'; }
        location ~ ^/api/products/([^/]+)$ { return 200 '{"sku":"$1","price_cents":100,"stock":10}'; }
        location ~ ^/api/cart/items/ { return 204; }
        location = /api/cart { return 200 '{"items":[{"sku":"SKU-000001","quantity":2,"price_cents":100}],"total_cents":200}'; }
        location = /api/orders { return 201 '{"order_id":"o1","total_cents":200,"status":"created"}'; }
        location ~ ^/api/orders/([^/]+)/payment$ { return 200 '{"order_id":"$1","payment_id":"p1","status":"paid"}'; }
        location ~ ^/api/orders/([^/]+)$ { return 200 '{"order_id":"$1","status":"paid"}'; }
"""

# runs inside one tree (its scenarios/, exporters/, peakload/ first on sys.path)
_DRIVER = r"""
import json, sys, time, resource
from locust.contrib.fasthttp import FastHttpSession
from locust.env import Environment
from exporters.settings import ExporterSettings
from exporters.histogram import bucket_edges
from peakload.core import TargetSpec
from scenarios.bridge import Instrumentation
from scenarios.client import ShopClient

url, visits = sys.argv[1], int(sys.argv[2])
env = Environment()
inst = Instrumentation(env, settings=ExporterSettings(run_id="bench", profile_name="bench", edges=tuple(bucket_edges())))
inst.start()
failures = [0]
env.events.request.add_listener(lambda exception=None, **kw: failures.__setitem__(0, failures[0] + (exception is not None)))
http = FastHttpSession(url, request_event=env.events.request, user=None)
shop = ShopClient(http, target=TargetSpec(), run_id="bench")
product = None
def visit():
    global product
    shop.token = None
    assert shop.login("user00001", "peakload")
    shop.home(); shop.category(1); shop.search("tea")
    product = shop.product("SKU-000001")
    shop.set_cart_item("SKU-000001", 1); shop.set_cart_item("SKU-000001", 2)
    shop.cart()
    result = shop.checkout(address={"name": "A"}, idempotency_key="k")
    shop.pay(result.order_id, idempotency_key="p")
    shop.order(result.order_id, expect_status="paid")
for _ in range(50):
    visit()  # warm-up
n0 = sum(s.count for s in inst.store.series_totals())
c0 = time.process_time()
for _ in range(visits):
    visit()
cpu = time.process_time() - c0
n = sum(s.count for s in inst.store.series_totals()) - n0
print(json.dumps({"requests": n, "cpu_s": cpu, "failures": failures[0]}))
"""


def measure(tree: Path, url: str, visits: int) -> dict[str, float]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PEAKLOAD_")}, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        ["taskset", "-c", "1", PY, "-c", _DRIVER, url, str(visits)], cwd=tree, env=env, capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        raise SystemExit(f"{tree}: driver failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="git revision to compare with")
    parser.add_argument("--rounds", type=int, default=3, help=f"rounds (max {MAX_ROUNDS})")
    parser.add_argument("--visits", type=int, default=4000, help=f"visits per tree per round (max {MAX_VISITS})")
    a = parser.parse_args(argv)
    rounds, visits = min(max(a.rounds, 1), MAX_ROUNDS), min(max(a.visits, 100), MAX_VISITS)
    per_cpu: dict[str, list[float]] = {"current": [], "baseline": []}
    with baseline_worktree(a.baseline) as base, tempfile.TemporaryDirectory(prefix="peakload-client-ab-") as tmp_s:
        nginx, port = start_nginx(Path(tmp_s), locations=LOCATIONS)
        url = f"http://127.0.0.1:{port}"
        try:
            for r, name, tree in alternate(rounds, current=REPO, baseline=base):
                m = measure(tree, url, visits)
                if m["failures"]:
                    raise SystemExit(f"{name}: {m['failures']} failed requests: the canned answers no longer match the client")
                per_cpu[name].append(m["requests"] / m["cpu_s"])
                print(
                    f"round {r + 1}: {name:<8} {m['requests']} requests, {m['cpu_s']:.2f} CPU s: {per_cpu[name][-1]:.0f} requests per CPU-second"
                )
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    cur, old = statistics.median(per_cpu["current"]), statistics.median(per_cpu["baseline"])
    print(
        f"storefront journey, shop client + exporter: {cur:.0f} vs {old:.0f} requests per CPU-second ({a.baseline}); ratio {cur / old:.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
