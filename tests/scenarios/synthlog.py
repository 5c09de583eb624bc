"""A synthetic storefront access log with known parameters: what `peakload profile fit` must find again.

Sessions follow the shopper journey's decisions (scenarios/users.py): home, N
product views each through a search or a category page, cart adds after
views, edits after adds, a cart review + checkout when the cart holds
something, pay after an order; think times between requests. Arrivals are
evenly spaced or Poisson per stage. Lines are combined format with
millisecond times, as the storefront writes them.

Usage::

    truth = write_log(Path("access.log"), stages=[(60, 5.0), (30, 40.0)], seed=3)
"""

from __future__ import annotations

import datetime as dt
import gzip
import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scenarios.zipf import ZipfSampler

__all__ = ["Truth", "write_log", "session_lines"]

UA = "python/gevent-http-client-1.5.5"


@dataclass
class Truth:
    stages: list[tuple[float, float]]
    kind: str = "constant"
    search: float = 0.3
    view_to_cart: float = 0.3
    cart_edit: float = 0.1
    cart_to_checkout: float = 0.5
    checkout_to_pay: float = 0.9
    views: tuple[int, int] = (3, 10)
    think: tuple[float, float] = (0.5, 2.0)
    zipf: float = 1.1
    catalogue: int = 10_000
    t0: float = 1_796_256_000.0  # 2026-12-01T00:00:00Z... shifted by the caller for midnight windows
    sessions: int = 0
    lines: int = 0
    extra: dict[str, int] = field(default_factory=dict)


def _clock(t: float) -> str:
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    return d.strftime("%d/%b/%Y:%H:%M:%S.") + f"{d.microsecond // 1000:03d} +0000"


def _line(t: float, user: int, method: str, path: str, status: int, duration: float) -> str:
    return f'127.0.0.1 - {user} [{_clock(t)}] "{method} {path} HTTP/1.1" {status} 321 "-" "{UA}" {duration:.4f}\n'


def _arrivals(truth: Truth, rng: random.Random) -> Iterator[float]:
    t = truth.t0
    for duration, rate in truth.stages:
        end = t + duration
        if rate > 0:
            if truth.kind == "poisson":
                x = t + rng.expovariate(rate)
                while x < end:
                    yield x
                    x += rng.expovariate(rate)
            else:
                n = int(round(duration * rate))
                for k in range(n):
                    yield t + (k + 0.5) / rate
        t = end


def session_lines(truth: Truth, start: float, user: int, rng: random.Random, sampler: ZipfSampler) -> list[tuple[float, str]]:
    out: list[tuple[float, str]] = []
    t = start

    def req(method: str, path: str, status: int = 200) -> None:
        nonlocal t
        d = rng.uniform(0.002, 0.02)
        out.append((t, _line(t, user, method, path, status, d)))
        t += d + rng.uniform(*truth.think)

    req("GET", "/api/home")
    cart: set[str] = set()
    for _ in range(rng.randint(*truth.views)):
        if rng.random() < truth.search:
            req("GET", "/api/search?q=gift&page=1")
        else:
            req("GET", f"/api/categories/CAT-{rng.randint(1, 20):03d}/products?page=1&size=20")
        sku = f"SKU-{sampler.item():06d}"
        req("GET", f"/api/products/{sku}")
        if rng.random() < truth.view_to_cart:
            req("PUT", f"/api/cart/items/{sku}")
            cart.add(sku)
            if rng.random() < truth.cart_edit:
                if rng.random() < 0.5:
                    req("PUT", f"/api/cart/items/{sku}")
                else:
                    req("DELETE", f"/api/cart/items/{sku}", 204)
                    cart.discard(sku)
    if cart and rng.random() < truth.cart_to_checkout:
        req("GET", "/api/cart")
        req("POST", "/api/orders", 201)
        if rng.random() < truth.checkout_to_pay:
            order = rng.randint(1, 10**9)
            req("POST", f"/api/orders/{order}/payment")
            req("GET", f"/api/orders/{order}")
    return out


def write_log(path: Path, truth: Truth | None = None, *, seed: int = 1, gz: bool = False, **kw: object) -> Truth:
    """Write the log; returns the truth (with the number of sessions and lines written)."""
    truth = truth or Truth(**kw)  # type: ignore[arg-type]
    rng = random.Random(seed)
    sampler = ZipfSampler(truth.catalogue, truth.zipf, rng=random.Random(seed + 1))
    pending: list[tuple[float, int, str]] = []  # heap of lines not yet written, by time
    seq = 0
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as fh:  # type: ignore[operator]
        for user, start in enumerate(_arrivals(truth, rng), 1):
            truth.sessions += 1
            for t, line in session_lines(truth, start, user, rng, sampler):
                heapq.heappush(pending, (t, seq, line))
                seq += 1
            # a session lasts at most views × 2 requests × (think + 20 ms): lines older than that can go
            horizon = start - (truth.views[1] * 5 + 4) * (truth.think[1] + 0.03)
            while pending and pending[0][0] < horizon:
                fh.write(heapq.heappop(pending)[2])
                truth.lines += 1
        while pending:
            fh.write(heapq.heappop(pending)[2])
            truth.lines += 1
    return truth
