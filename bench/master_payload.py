"""Payloads for bench/master.py: real per-interval deltas of one worker, and the merge cost off Locust's loop.

:func:`build_templates` fills a real :class:`exporters.stats.StatsStore` with one
worker's interval (REQ_PER_S requests per second over 20 request series:
lognormal latencies per route, a 0.5 % slow tail, 1 % failures with reasons,
service-time histograms, business and arrival counters) and returns
``drain_delta()`` — what a worker pushes. Run as a script it times
``StatsStore.merge_delta`` of those deltas in a plain process (no Locust, no
sockets): the cost a merge process off the master's loop would pay per push.

Usage: ``taskset -c 0 .venv/bin/python bench/master_payload.py [--pushes 400]`` (prints JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from exporters.settings import ExporterSettings  # noqa: E402
from exporters.stats import StatsStore  # noqa: E402
from peakload.core import load_profile  # noqa: E402

__all__ = ["REQ_PER_S", "SERIES", "build_templates", "edges_of"]

REQ_PER_S = 2750  # default requests per worker per second (bench/generator.py --shopper per core); --worker-rps sets it
# 20 request series: (route template, method, journey step, median latency s, weight)
SERIES: tuple[tuple[str, str, str, float, float], ...] = (
    ("/api/auth/sign-in", "POST", "sign_in", 0.045, 4),
    ("/api/auth/register", "POST", "sign_in", 0.080, 1),
    ("/api/home", "GET", "home", 0.012, 8),
    ("/api/categories", "GET", "home", 0.008, 3),
    ("/api/categories/{slug}", "GET", "category", 0.020, 10),
    ("/api/categories/{slug}?page={n}", "GET", "category", 0.024, 4),
    ("/api/search?q={q}", "GET", "search", 0.035, 6),
    ("/api/products/{sku}", "GET", "product", 0.010, 22),
    ("/api/products/{sku}/reviews", "GET", "product", 0.018, 5),
    ("/api/products/{sku}/stock", "GET", "product", 0.006, 6),
    ("/api/cart/items", "POST", "cart_add", 0.030, 7),
    ("/api/cart/items/{id}", "PATCH", "cart_update", 0.028, 2),
    ("/api/cart/items/{id}", "DELETE", "cart_remove", 0.025, 1),
    ("/api/cart", "GET", "cart", 0.015, 6),
    ("/api/coupons/{code}", "POST", "checkout", 0.040, 1),
    ("/api/orders", "POST", "checkout", 0.120, 5),
    ("/api/payments", "POST", "pay", 0.250, 4),
    ("/api/orders/{id}", "GET", "order", 0.020, 3),
    ("/api/flash/{sku}/checkout", "POST", "flash_checkout", 0.060, 1),
    ("/api/recommendations", "GET", "", 0.030, 1),
)
FAILURES = (("http_5xx", 503, "HTTP 503 Service Unavailable"), ("body_check", 200, "orderId missing"), ("timeout", None, "timed out"))


def build_templates(edges: tuple[float, ...], *, count: int, interval: float, seed: int, rps: float = REQ_PER_S) -> list[dict[str, Any]]:
    """``count`` real per-interval deltas (StatsStore.drain_delta) of one worker doing ``rps`` requests/s."""
    rng = random.Random(seed)
    weights = [s[4] for s in SERIES]
    out = []
    for _ in range(count):
        store = StatsStore(edges=edges)
        n = int(rps * interval)
        for name, method, step, median, _w in rng.choices(SERIES, weights=weights, k=n):
            latency = median * math.exp(rng.gauss(0.0, 0.6)) + (rng.uniform(1.0, 3.0) if rng.random() < 0.005 else 0.0)
            service = latency * rng.uniform(0.85, 1.0)
            if rng.random() < 0.01:
                err, status, reason = rng.choice(FAILURES)
                store.record(name, method, latency, status, err, service, step, reason)
            else:
                store.record(name, method, latency, 201 if method == "POST" else 200, None, service, step)
        views = rng.randint(n // 5, n // 4)
        store.add_business("product_views", views)
        store.add_business("cart_adds", views // 3)
        store.add_business("orders", views // 12)
        store.add_business("payments_success", views // 13)
        store.add_business("payments_declined", views // 200)
        store.add_arrivals(scheduled=n // 13, dropped=rng.randint(0, 2))
        out.append(store.drain_delta())
    return out


def edges_of(profile: Path) -> tuple[float, ...]:
    """The bucket edges a master running ``profile`` uses (its SLO thresholds included)."""
    return ExporterSettings.from_profile(load_profile(profile), run_id="bench").edges


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default=str(Path(__file__).resolve().parents[1] / "profiles" / "smoke.yaml"))
    ap.add_argument("--pushes", type=int, default=400)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--worker-rps", type=float, default=REQ_PER_S)
    args = ap.parse_args()
    edges = edges_of(Path(args.profile))
    templates = build_templates(edges, count=8, interval=args.interval, seed=13, rps=args.worker_rps)
    store = StatsStore(edges=edges)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(args.pushes):
        store.merge_delta(templates[i % len(templates)])
        if i % 100 == 99:
            store.drain_delta()  # as the master drains every interval
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"pushes": args.pushes, "ms_per_push": 1000 * cpu / args.pushes, "wall_ms_per_push": 1000 * wall / args.pushes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
