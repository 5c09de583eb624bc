"""Chaos Toolkit probes on the platform: plain typed functions returning values to check tolerances against.

Usage (Chaos Toolkit steady-state hypothesis)::

    {"type": "probe", "name": "product-pages-within-slo", "tolerance": {"type": "range", "range": [0.95, 1.0]},
     "provider": {"type": "python", "module": "chaos.probes", "func": "slo_window",
                  "arguments": {"state_dir": "${state_dir}", "seconds": 3}}}

Usage (Python): ``slo_window(".peakload/platform", seconds=3) >= 0.95``
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

from chaos.platform import postgres as pg
from chaos.platform import services as svc
from chaos.platform.core import current_primary
from chaos.platform.health import haproxy_servers, status
from chaos.platform.layout import require_platform
from chaos.platform.procs import http_get, read_pid
from chaos.prober import Prober

__all__ = [
    "product_paths",
    "slo_window",
    "haproxy_up_count",
    "haproxy_server_state",
    "postgres_primary_and_standby",
    "db_commit_rate",
    "prometheus_query",
    "redis_ping",
    "storefront_uses_redis",
    "reconciliation_consistent",
    "order_roundtrip",
    "platform_healthy",
]


def product_paths(state_dir: str, n: int = 40) -> list[str]:
    """Read paths for probing: product pages of the first catalogue page, plus the home page."""
    _, spec = require_platform(state_dir)
    code, body = http_get(f"http://127.0.0.1:{spec.ports.haproxy}/api/categories/1/products?page=1&size={n}")
    skus = [p["sku"] for p in json.loads(body).get("items", [])] if code == 200 else []
    return [f"/api/products/{s}" for s in skus] + ["/api/home"] if skus else ["/api/home", "/healthz"]


def slo_window(state_dir: str, seconds: float = 3.0, rate: float = 10.0, latency_threshold_s: float = 0.3) -> float:
    """Share of probe requests through HAProxy answered 200 within ``latency_threshold_s`` over ``seconds``."""
    _, spec = require_platform(state_dir)
    prober = Prober(
        base_url=f"http://127.0.0.1:{spec.ports.haproxy}",
        paths=product_paths(state_dir),
        rate=rate,
        timeout=max(2.0, latency_threshold_s),
        max_seconds=seconds,
    )
    prober.start()
    time.sleep(seconds)
    samples = prober.stop()
    if not samples:
        return 0.0
    good = sum(1 for s in samples if s.ok and s.latency <= latency_threshold_s)
    return round(good / len(samples), 4)


def haproxy_up_count(state_dir: str) -> int:
    """Replicas HAProxy currently marks UP."""
    _, spec = require_platform(state_dir)
    return sum(1 for s in haproxy_servers(spec).values() if s.startswith("UP"))


def haproxy_server_state(state_dir: str, index: int = 1) -> str:
    """HAProxy's status of replica ``index`` (``UP``, ``DOWN``, ``UP 1/2`` ...), ``missing`` if unknown."""
    _, spec = require_platform(state_dir)
    return haproxy_servers(spec).get(f"r{index}", "missing")


def postgres_primary_and_standby(state_dir: str) -> bool:
    """Exactly one primary and every other node a streaming standby."""
    lay, spec = require_platform(state_dir)
    roles = [pg.in_recovery(lay.pg_node(i, spec)) for i in range(len(spec.ports.pg))]
    if roles.count(False) != 1 or None in roles:
        return False
    primary = lay.pg_node(roles.index(False), spec)
    n = pg.psql(primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", check=False)
    return n == str(len(roles) - 1)


def db_commit_rate(state_dir: str, seconds: float = 2.0) -> float:
    """Transactions per second on the primary (all databases) measured over ``seconds``."""
    lay, spec = require_platform(state_dir)
    idx = current_primary(lay, spec)
    if idx is None:
        raise RuntimeError("no primary")
    node = lay.pg_node(idx, spec)
    q = "SELECT sum(xact_commit + xact_rollback) FROM pg_stat_database"
    pg.psql(node, "SELECT pg_stat_clear_snapshot()")
    a, t0 = float(pg.psql(node, q)), time.monotonic()
    time.sleep(seconds)
    b = float(pg.psql(node, q))
    return round((b - a) / (time.monotonic() - t0), 2)


def prometheus_query(state_dir: str, query: str) -> float:
    """Instant PromQL query on the platform's Prometheus; the sum of the result's values (0 when empty)."""
    _, spec = require_platform(state_dir)
    url = f"http://127.0.0.1:{spec.ports.prometheus}/api/v1/query?query={urllib.parse.quote(query)}"
    code, body = http_get(url, timeout=5)
    if code != 200:
        raise RuntimeError(f"prometheus query {query!r} failed: HTTP {code} {body[:200]!r}")
    data = json.loads(body)["data"]
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    return float(sum(float(r["value"][1]) for r in data["result"]))


def redis_ping(state_dir: str) -> bool:
    """Redis answers PONG."""
    _, spec = require_platform(state_dir)
    return svc.redis_ping(spec.ports.redis)


def storefront_uses_redis(state_dir: str) -> bool:
    """True when the running replicas were started with a Redis URL (else their cache is in-process)."""
    lay, spec = require_platform(state_dir)
    from chaos.platform.health import uses_redis

    return all(uses_redis(read_pid(lay.run, f"storefront-{i}")) for i in range(spec.replicas))


def reconciliation_consistent(state_dir: str) -> bool:
    """The shop's reconciliation (orders vs payments vs gateway charges vs stock) says ``consistent``."""
    _, spec = require_platform(state_dir)
    code, body = http_get(f"http://127.0.0.1:{spec.ports.haproxy}/api/admin/reconciliation", timeout=10)
    return code == 200 and bool(json.loads(body).get("consistent"))


def order_roundtrip(state_dir: str, username: str = "user00004", password: str = "peakload") -> bool:
    """Log in, place an order through HAProxy, read it back: the write path works."""
    from chaos.canary import CanaryWriter

    _, spec = require_platform(state_dir)
    shopper = CanaryWriter(base_url=f"http://127.0.0.1:{spec.ports.haproxy}", log=Path("/dev/null"), username=username, password=password)
    try:
        shopper.prepare()
        ack = shopper.place_order(1)
        code, data = shopper.request("GET", f"/api/orders/{ack.id}")
    except ConnectionError:
        return False
    return code == 200 and data.get("order_id") == ack.id


def platform_healthy(state_dir: str) -> dict[str, Any]:
    """Every component's health (``{"healthy": bool, "unhealthy": [...]}``)."""
    items = status(Path(state_dir))
    bad = [f"{c.name}: {c.detail}" for c in items if not c.healthy]
    return {"healthy": not bad, "unhealthy": bad}
