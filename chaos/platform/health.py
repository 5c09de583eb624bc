"""``status``: one health line per component of the platform.

Usage::

    for c in status(Path(".peakload/platform")):
        print(c.line())
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from chaos.platform import postgres as pg
from chaos.platform.layout import Layout, PlatformSpec, load_spec
from chaos.platform.procs import http_get, pid_alive, read_pid
from chaos.platform.services import have_exporters, redis_ping

__all__ = ["ComponentHealth", "status", "haproxy_servers", "primary_index", "format_status", "uses_redis"]


@dataclass(frozen=True)
class ComponentHealth:
    """Health of one component: ``healthy`` plus a one-line ``detail`` a person can act on."""

    name: str
    healthy: bool
    detail: str
    pid: int | None = None
    endpoint: str = ""

    def line(self) -> str:
        mark = "ok  " if self.healthy else "FAIL"
        where = f" {self.endpoint}" if self.endpoint else ""
        return f"{mark} {self.name:<16}{where:<24} {self.detail}"

    def to_dict(self) -> dict:
        return asdict(self)


def format_status(items: list[ComponentHealth]) -> str:
    """All lines plus a summary line."""
    bad = [c.name for c in items if not c.healthy]
    tail = "platform healthy" if not bad else f"unhealthy: {', '.join(bad)}"
    return "\n".join([c.line() for c in items] + [tail])


def haproxy_servers(spec: PlatformSpec) -> dict[str, str]:
    """Backend server name -> HAProxy status (``UP``, ``DOWN``, ``UP 1/2`` ...), from the stats CSV."""
    code, body = http_get(f"http://127.0.0.1:{spec.ports.haproxy_stats}/stats;csv", timeout=2)
    if code != 200:
        return {}
    rows = csv.DictReader(io.StringIO(body.decode().lstrip("# ")))
    return {r["svname"]: r["status"] for r in rows if r.get("pxname") == "storefront" and r.get("svname") not in ("FRONTEND", "BACKEND")}


def primary_index(lay: Layout, spec: PlatformSpec) -> int | None:
    """Index of the node that answers as primary (not in recovery), or None."""
    for i in range(len(spec.ports.pg)):
        if pg.in_recovery(lay.pg_node(i, spec)) is False:
            return i
    return None


def _pg_health(lay: Layout, spec: PlatformSpec) -> list[ComponentHealth]:
    out = []
    for i in range(len(spec.ports.pg)):
        node = lay.pg_node(i, spec)
        rec = pg.in_recovery(node)
        pid = pg.postmaster_pid(node)
        ep = f"127.0.0.1:{node.port}"
        if rec is None:
            out.append(ComponentHealth(node.name, False, "not running" if not pg.is_running(node) else "not answering", None, ep))
        elif rec:
            st = pg.psql(node, "SELECT coalesce(max(status), 'no receiver') FROM pg_stat_wal_receiver", check=False)
            out.append(ComponentHealth(node.name, st == "streaming", f"standby, WAL receiver: {st}", pid, ep))
        else:
            n = pg.psql(node, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'", check=False)
            out.append(ComponentHealth(node.name, True, f"primary, {n or 0} streaming standby(s)", pid, ep))
    return out


def _http(name: str, lay: Layout, url: str, *, ok_detail: str = "answers 200") -> ComponentHealth:
    pid = read_pid(lay.run, name)
    code, body = http_get(url, timeout=2)
    if code == 200:
        return ComponentHealth(name, True, ok_detail, pid, url.split("/")[2])
    why = f"HTTP {code}" if code else "no answer"
    if pid and not pid_alive(pid):
        why = "not running"
    return ComponentHealth(name, False, f"{why}: {body[:120].decode(errors='replace')}" if code else why, pid, url.split("/")[2])


def uses_redis(pid: int | None) -> bool:
    """True when the process with ``pid`` was started with ``--redis-url``."""
    import psutil

    try:
        return "--redis-url" in psutil.Process(pid).cmdline() if pid else False
    except psutil.Error:
        return False


def status(state_dir: Path) -> list[ComponentHealth]:
    """Check every component; never raises for an unhealthy one (that is what the list says)."""
    lay = Layout(Path(state_dir))
    spec = load_spec(lay)
    if spec is None:
        return [ComponentHealth("platform", False, f"no platform in {lay.root} (run up first)")]
    p = spec.ports
    out = _pg_health(lay, spec)
    rpid = read_pid(lay.run, "redis")
    out.append(ComponentHealth("redis", redis_ping(p.redis), "PONG" if redis_ping(p.redis) else "no PONG", rpid, f"127.0.0.1:{p.redis}"))
    if spec.fault_proxy:
        c = _http("faultproxy", lay, f"http://127.0.0.1:{p.faultproxy_api}/proxies")
        if c.healthy:
            code, body = http_get(f"http://127.0.0.1:{p.faultproxy_api}/proxies")
            toxics = sum(len(x["toxics"]) for x in json.loads(body).values()) if code == 200 else 0
            c = ComponentHealth(c.name, True, f"{toxics} toxic(s) active" if toxics else "no toxics", c.pid, c.endpoint)
        out.append(c)
    out.append(_http("gateway", lay, f"http://127.0.0.1:{p.gateway}/healthz"))
    for i, port in enumerate(p.storefront):
        cache = "redis" if uses_redis(read_pid(lay.run, f"storefront-{i}")) else "in-process"
        out.append(
            _http(f"storefront-{i}", lay, f"http://127.0.0.1:{port}/healthz", ok_detail=f"/healthz ok (DB reachable), cache: {cache}")
        )
    servers = haproxy_servers(spec)
    up = sum(1 for s in servers.values() if s.startswith("UP"))
    hpid = read_pid(lay.run, "haproxy")
    out.append(
        ComponentHealth(
            "haproxy",
            up > 0,
            f"{up}/{len(p.storefront)} replicas UP" + ("" if servers else " (stats not answering)"),
            hpid,
            f"127.0.0.1:{p.haproxy}",
        )
    )
    if have_exporters():
        for i, eport in enumerate(p.pg_exporter):
            out.append(_http(f"pg-exporter-{i}", lay, f"http://127.0.0.1:{eport}/metrics"))
        out.append(_http("redis-exporter", lay, f"http://127.0.0.1:{p.redis_exporter}/metrics"))
    c = _http("prometheus", lay, f"http://127.0.0.1:{p.prometheus}/-/ready")
    if c.healthy:
        code, body = http_get(f"http://127.0.0.1:{p.prometheus}/api/v1/targets?state=active")
        targets = json.loads(body)["data"]["activeTargets"] if code == 200 else []
        n_up = sum(1 for t in targets if t["health"] == "up")
        c = ComponentHealth(c.name, True, f"ready, {n_up}/{len(targets)} targets up", c.pid, c.endpoint)
    out.append(c)
    return out
