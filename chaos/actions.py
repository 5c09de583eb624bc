"""Chaos Toolkit actions on the platform: plain typed functions, callable directly in tests.

Usage (Chaos Toolkit)::

    {"type": "action", "name": "inject-kill-replica",
     "provider": {"type": "python", "module": "chaos.actions", "func": "kill_storefront",
                  "arguments": {"state_dir": "${state_dir}", "index": 1}}}

Usage (Python): ``kill_storefront(".peakload/platform", index=1)``

Every function takes the platform's ``state_dir`` and returns a small dict
that lands in the Chaos Toolkit journal. Heal/rollback actions are
idempotent: calling them on a healthy platform changes nothing.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

from chaos.faultclient import FaultProxyClient
from chaos.platform import postgres as pg
from chaos.platform import services as svc
from chaos.platform.core import current_primary, ensure_postgres, up
from chaos.platform.health import format_status, haproxy_servers, status
from chaos.platform.layout import require_platform
from chaos.platform.procs import http_post, pid_under, read_pid, stop_pid

__all__ = [
    "kill_storefront",
    "restart_storefronts",
    "kill_postgres_primary",
    "promote_standby",
    "rebuild_standby",
    "kill_redis",
    "flush_redis",
    "restart_redis",
    "add_toxic",
    "remove_toxic",
    "reset_faults",
    "configure_gateway",
    "reset_gateway",
    "place_and_pay_orders",
    "ensure_platform_healthy",
]


def kill_storefront(state_dir: str, index: int = 1, signal_name: str = "SIGKILL") -> dict[str, Any]:
    """Kill storefront replica ``index`` (SIGKILL by default: a crash, no graceful drain)."""
    lay, spec = require_platform(state_dir)
    if not 0 <= index < spec.replicas:
        raise ValueError(f"replica index must be within 0..{spec.replicas - 1}, got {index}")
    name = f"storefront-{index}"
    pid = read_pid(lay.run, name)
    if not pid_under(pid, lay.root):
        raise RuntimeError(f"{name} is not running (pidfile {pid})")
    stop_pid(pid, sig=getattr(signal, signal_name), timeout=5)
    return {"killed": name, "pid": pid, "signal": signal_name, "t": time.time()}


def restart_storefronts(state_dir: str, timeout: float = 60.0) -> dict[str, Any]:
    """Start every replica that is not running and wait until HAProxy marks all of them UP."""
    lay, spec = require_platform(state_dir)
    started = []
    for i in range(spec.replicas):
        if svc.running(lay, f"storefront-{i}") is None:
            svc.start_storefront(lay, spec, i, timeout=timeout)
            started.append(i)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        servers = haproxy_servers(spec)
        if servers and all(s.startswith("UP") for s in servers.values()):
            return {"started": started, "haproxy": servers}
        time.sleep(0.1)
    raise TimeoutError(f"replicas not all UP in HAProxy within {timeout:.0f}s: {haproxy_servers(spec)}")


def kill_postgres_primary(state_dir: str) -> dict[str, Any]:
    """SIGKILL the current PostgreSQL primary's postmaster (a machine loss, no clean shutdown)."""
    lay, spec = require_platform(state_dir)
    idx = current_primary(lay, spec)
    if idx is None:
        raise RuntimeError("no running primary to kill")
    node = lay.pg_node(idx, spec)
    pid = pg.kill(node)
    return {"killed": node.name, "pid": pid, "t": time.time()}


def promote_standby(state_dir: str) -> dict[str, Any]:
    """Promote the streaming standby when the primary is gone (the operator's failover step)."""
    lay, spec = require_platform(state_dir)
    nodes = [lay.pg_node(i, spec) for i in range(len(spec.ports.pg))]
    if any(pg.in_recovery(n) is False for n in nodes):
        live = [n.name for n in nodes if pg.in_recovery(n) is False]
        return {"promoted": None, "note": f"a primary is running ({live[0]}); nothing to promote"}
    standby = next((n for n in nodes if pg.in_recovery(n) is True), None)
    if standby is None:
        raise RuntimeError("no running standby to promote")
    t0 = time.time()
    pg.promote(standby)
    return {"promoted": standby.name, "seconds": round(time.time() - t0, 3), "t": time.time()}


def rebuild_standby(state_dir: str) -> dict[str, Any]:
    """Bring every non-primary node back as a streaming standby (pg_rewind, or a fresh basebackup)."""
    lay, spec = require_platform(state_dir)
    before = {lay.pg_node(i, spec).name: pg.in_recovery(lay.pg_node(i, spec)) for i in range(len(spec.ports.pg))}
    primary = ensure_postgres(lay, spec)
    log = {}
    for i in range(len(spec.ports.pg)):
        node = lay.pg_node(i, spec)
        text = node.log.read_text(errors="replace")[-4000:] if node.log.exists() else ""
        log[node.name] = "basebackup" if "falling back to pg_basebackup" in text else "pg_rewind/none"
    return {"primary": f"pg{primary}", "before": before, "method": log}


def kill_redis(state_dir: str) -> dict[str, Any]:
    """SIGKILL Redis (the cache is gone until it is restarted)."""
    lay, _ = require_platform(state_dir)
    pid = read_pid(lay.run, "redis")
    if pid_under(pid, lay.root):
        stop_pid(pid, sig=signal.SIGKILL, timeout=5)
    return {"killed": "redis", "pid": pid, "t": time.time()}


def flush_redis(state_dir: str) -> dict[str, Any]:
    """FLUSHALL: every cached entry is dropped at once (a cold cache with Redis still up)."""
    _, spec = require_platform(state_dir)
    return {"flushall": svc.redis_cmd(spec.ports.redis, "FLUSHALL"), "t": time.time()}


def restart_redis(state_dir: str) -> dict[str, Any]:
    """Start Redis if it is not running (idempotent)."""
    lay, spec = require_platform(state_dir)
    pid = svc.start_redis(lay, spec)
    return {"redis": "PONG" if svc.redis_ping(spec.ports.redis) else "down", "pid": pid}


def _proxy(state_dir: str) -> FaultProxyClient:
    _, spec = require_platform(state_dir)
    if not spec.fault_proxy:
        raise RuntimeError("this platform was built without the fault proxy (up(..., fault_proxy=True))")
    return FaultProxyClient(f"http://127.0.0.1:{spec.ports.faultproxy_api}")


def add_toxic(
    state_dir: str,
    proxy: str,
    type: str,
    attributes: dict[str, float] | None = None,  # noqa: A002
    stream: str = "downstream",
    toxicity: float = 1.0,
    name: str | None = None,
) -> dict[str, Any]:
    """Add a toxic to a fault-proxy link: ``proxy`` is ``primary`` (the current PostgreSQL primary),
    ``pg0``/``pg1``, ``gateway`` or ``redis``; ``type`` is latency, reset_peer or timeout."""
    if proxy == "primary":
        lay, spec = require_platform(state_dir)
        idx = current_primary(lay, spec)
        proxy = f"pg{idx if idx is not None else 0}"
    toxic = _proxy(state_dir).add_toxic(proxy, type=type, name=name, stream=stream, toxicity=toxicity, attributes=attributes or {})
    return {"proxy": proxy, "toxic": toxic, "t": time.time()}


def remove_toxic(state_dir: str, proxy: str, name: str) -> dict[str, Any]:
    """Remove one toxic (no error when it is already gone)."""
    client = _proxy(state_dir)
    names = [proxy] if proxy != "primary" else [p for p in client.proxies() if p.startswith("pg")]
    removed = []
    for p in names:
        try:
            client.remove_toxic(p, name)
            removed.append(p)
        except RuntimeError as exc:
            if "404" not in str(exc):
                raise
    return {"removed": name, "from": removed, "t": time.time()}


def reset_faults(state_dir: str) -> dict[str, Any]:
    """Remove every toxic and re-enable every proxy (the network rollback)."""
    _proxy(state_dir).reset()
    return {"reset": True, "t": time.time()}


def configure_gateway(
    state_dir: str,
    latency_ms: float | None = None,
    jitter_ms: float | None = None,
    failure_rate: float | None = None,
    outage: bool | None = None,
) -> dict[str, Any]:
    """Change the payment gateway simulator live (slow, declining or in outage)."""
    _, spec = require_platform(state_dir)
    body = {
        k: v
        for k, v in {"latency_ms": latency_ms, "jitter_ms": jitter_ms, "failure_rate": failure_rate, "outage": outage}.items()
        if v is not None
    }
    code, resp = http_post(
        f"http://127.0.0.1:{spec.ports.gateway}/admin/config",
        json.dumps(body).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    if code != 200:
        raise RuntimeError(f"gateway config {body} refused: HTTP {code} {resp[:200]!r}")
    return json.loads(resp)


def reset_gateway(state_dir: str) -> dict[str, Any]:
    """Back to the platform's configured gateway behaviour, no outage (idempotent)."""
    _, spec = require_platform(state_dir)
    return configure_gateway(
        state_dir, latency_ms=spec.gateway_latency_ms, jitter_ms=10.0, failure_rate=spec.gateway_failure_rate, outage=False
    )


def place_and_pay_orders(
    state_dir: str, count: int = 10, rate: float = 2.0, username: str = "user00003", password: str = "peakload"
) -> dict[str, Any]:
    """Checkout and pay ``count`` orders through HAProxy at ``rate``/s; outcome counts (bounded by count)."""
    from chaos.canary import CanaryWriter

    _, spec = require_platform(state_dir)
    base = f"http://127.0.0.1:{spec.ports.haproxy}"
    shopper = CanaryWriter(base_url=base, log=Path("/dev/null"), username=username, password=password)
    outcomes: dict[str, int] = {}
    for i in range(max(0, min(count, 1000))):
        t_next = time.monotonic() + 1.0 / rate
        try:
            if not shopper.logged_in:
                shopper.prepare()
            ack = shopper.place_order(i)
            code, data = shopper.pay(ack.id)
            key = data.get("status", f"HTTP {code}") if code in (200, 201) else f"HTTP {code} {data.get('error', '')}"
        except ConnectionError as exc:
            key = f"order failed: {exc}"
        outcomes[key] = outcomes.get(key, 0) + 1
        delay = t_next - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return {"outcomes": outcomes}


def ensure_platform_healthy(state_dir: str, timeout: float = 60.0) -> dict[str, Any]:
    """The final rollback: ``up`` again (idempotent: restarts what died, rebuilds a standby), then wait for
    every component to be healthy; raises with the status table if it is not."""
    lay, spec = require_platform(state_dir)
    up(lay.root, replicas=spec.replicas)
    deadline = time.monotonic() + timeout
    items = status(lay.root)
    while time.monotonic() < deadline:
        items = status(lay.root)
        if all(c.healthy for c in items):
            return {"healthy": True, "components": len(items)}
        time.sleep(0.5)
    raise RuntimeError("platform not healthy after rollback:\n" + format_status(items))
