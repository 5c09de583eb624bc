"""``up`` / ``down`` of the full platform on 127.0.0.1.

Usage::

    health = up(Path(".peakload/platform"), replicas=3)
    print(format_status(status(Path(".peakload/platform"))))
    down(Path(".peakload/platform"))

``up`` is idempotent: it reuses ``platform.json`` (ports, passwords), keeps
data dirs, starts only what is not running, and works out which PostgreSQL
node is the primary after a failover.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path

from chaos.platform import postgres as pg
from chaos.platform import services as svc
from chaos.platform.health import ComponentHealth, status
from chaos.platform.layout import (
    Layout,
    PlatformSpec,
    check_state_dir,
    load_spec,
    new_spec,
    save_spec,
)
from chaos.platform.procs import (
    is_our_program,
    processes_under,
    stop_named,
    stop_pid,
    wait_http,
)

__all__ = ["up", "down", "ensure_postgres", "current_primary", "STOP_ORDER"]

# Front to back, so nothing in front sees its backend vanish while it still serves.
STOP_ORDER = ("prometheus", "pg-exporter-*", "redis-exporter", "haproxy", "storefront-*", "gateway", "faultproxy", "redis")


def _timeline(node: pg.PgNode) -> int:
    from chaos.platform.procs import as_postgres, run

    out = run(as_postgres([str(pg.PG_BIN / "pg_controldata"), str(node.data_dir)]), check=False).stdout
    for line in out.splitlines():
        if line.startswith("Latest checkpoint's TimeLineID:"):
            return int(line.split(":")[1])
    return 0


def current_primary(lay: Layout, spec: PlatformSpec) -> int | None:
    """Index of the node that should be primary: the running non-standby, else the data dir without standby.signal
    (the highest timeline when both lack it, e.g. after a failover whose old primary was never rebuilt)."""
    nodes = [lay.pg_node(i, spec) for i in range(len(spec.ports.pg))]
    live = [i for i, n in enumerate(nodes) if pg.in_recovery(n) is False]
    if live:
        return max(live, key=lambda i: _timeline(nodes[i])) if len(live) > 1 else live[0]
    candidates = [i for i, n in enumerate(nodes) if (n.data_dir / "PG_VERSION").exists() and not (n.data_dir / "standby.signal").exists()]
    if not candidates:
        return None
    return max(candidates, key=lambda i: _timeline(nodes[i]))


def ensure_postgres(lay: Layout, spec: PlatformSpec) -> int:
    """Primary + streaming standby running; returns the primary's index."""
    nodes = [lay.pg_node(i, spec) for i in range(len(spec.ports.pg))]
    primary = current_primary(lay, spec)
    if primary is None:
        if any((n.data_dir / "PG_VERSION").exists() for n in nodes):
            raise RuntimeError(f"PostgreSQL data dirs under {lay.pg_root} hold only standbys; no primary to follow")
        for n in nodes:  # half-made leftovers of an interrupted initdb
            if n.data_dir.exists():
                import shutil

                shutil.rmtree(n.data_dir)
        pg.init_primary(nodes[0], app_user=spec.app_user, app_password=spec.app_password, app_db=spec.app_db)
        pw = spec.app_password.replace("'", "''")
        pg.psql(nodes[0], f"CREATE ROLE monitor LOGIN PASSWORD '{pw}' IN ROLE pg_monitor")
        primary = 0
    pnode = nodes[primary]
    pg.start(pnode)
    for i, n in enumerate(nodes):
        if i == primary:
            continue
        if not (n.data_dir / "PG_VERSION").exists():
            pg.make_standby(n, source=pnode)
        elif not (n.data_dir / "standby.signal").exists():
            # A second primary (old primary after failover): rebuild it as a standby.
            pg.rewind_as_standby(n, source=pnode)
        else:
            pg.start(n)
    return primary


def up(
    state_dir: Path,
    *,
    replicas: int = 3,
    base_port: int | None = None,
    fault_proxy: bool = True,
    prometheus: bool = True,
    exporters: bool = True,
    rule_files: Sequence[str | Path] = (),
    scrape_targets: dict[str, list[str]] | None = None,
    seed_skus: int = 2000,
    seed_users: int = 200,
    gateway_latency_ms: float | None = None,
    gateway_failure_rate: float | None = None,
) -> list[ComponentHealth]:
    """Bring the platform up (idempotent) and return each component's health.

    Usage: ``up(Path(".peakload/platform"), replicas=3)``

    ``rule_files`` are extra Prometheus rule files (absolute paths or globs);
    files dropped into ``<state_dir>/prometheus/rules/`` are loaded too.
    ``scrape_targets`` adds jobs, e.g. ``{"peakload": ["127.0.0.1:9646"]}``.
    ``fault_proxy``, ``base_port`` and the seed sizes only matter on the first ``up`` of a state dir;
    options left at None keep what ``platform.json`` says.
    """
    lay = Layout(Path(state_dir))
    lay.root.mkdir(parents=True, exist_ok=True)
    check_state_dir(lay.root)
    spec = load_spec(lay)
    if spec is None:
        spec = new_spec(replicas=replicas, base_port=base_port, fault_proxy=fault_proxy, seed_skus=seed_skus, seed_users=seed_users)
    elif spec.replicas != replicas:
        raise ValueError(
            f"{lay.root} was built with {spec.replicas} replicas, asked for {replicas}; "
            "use the same count or `down` and delete the state dir"
        )
    spec.extra_rule_files = [str(Path(f).resolve()) for f in rule_files] or spec.extra_rule_files
    if scrape_targets is not None:
        spec.extra_scrape_targets = dict(scrape_targets)
    if gateway_latency_ms is not None:
        spec.gateway_latency_ms = gateway_latency_ms
    if gateway_failure_rate is not None:
        spec.gateway_failure_rate = gateway_failure_rate
    save_spec(lay, spec)

    ensure_postgres(lay, spec)
    svc.start_redis(lay, spec)
    if spec.fault_proxy:
        svc.start_faultproxy(lay, spec)
    svc.start_gateway(lay, spec)
    svc.start_storefront(lay, spec, 0, timeout=120)  # the first one seeds an empty database alone
    pids = {i: svc.start_storefront(lay, spec, i, wait=False) for i in range(1, spec.replicas)}
    for i, pid in pids.items():  # started together, waited for one by one
        wait_http(f"http://127.0.0.1:{spec.ports.storefront[i]}/healthz", pid=pid, what=f"storefront-{i}", timeout=60)
    svc.start_haproxy(lay, spec)
    if exporters:
        svc.start_exporters(lay, spec, spec.app_password)
    if prometheus:
        svc.start_prometheus(lay, spec)
    _wait_haproxy_up(spec, timeout=15)
    if prometheus:
        _wait_prometheus_targets(spec, timeout=20)
    return status(lay.root)


def _wait_haproxy_up(spec: PlatformSpec, *, timeout: float) -> None:
    from chaos.platform.health import haproxy_servers

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        servers = haproxy_servers(spec)
        if servers and all(s.startswith("UP") for s in servers.values()):
            return
        time.sleep(0.1)


def _wait_prometheus_targets(spec: PlatformSpec, *, timeout: float) -> None:
    import json

    from chaos.platform.procs import http_get

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code, body = http_get(f"http://127.0.0.1:{spec.ports.prometheus}/api/v1/targets?state=active")
        if code == 200:
            targets = json.loads(body)["data"]["activeTargets"]
            if targets and all(t["health"] != "unknown" for t in targets):
                return
        time.sleep(0.2)


def down(state_dir: Path, *, timeout: float = 15.0) -> list[str]:
    """Stop everything of this platform; return what was stopped. Data dirs stay (``up`` reuses them).

    Anything still running from the state dir afterwards (found by cwd/command
    line) is killed by pid; a RuntimeError lists it if even that fails.
    """
    lay = Layout(Path(state_dir))
    stopped: list[str] = []
    names = []
    for name in STOP_ORDER:
        if name.endswith("*"):
            names += sorted(p.stem for p in lay.run.glob(name.replace("*", "*.pid")))
        else:
            names.append(name)
    for name in names:
        if (lay.run / f"{name}.pid").exists():
            stop_named(lay.run, name, timeout=timeout)
            stopped.append(name)
    spec = load_spec(lay)
    if spec is not None:
        nodes = [lay.pg_node(i, spec) for i in range(len(spec.ports.pg))]
        primary = current_primary(lay, spec)
        for i in sorted(range(len(nodes)), key=lambda i: i == primary):  # standbys first
            if pg.is_running(nodes[i]):
                pg.stop(nodes[i], mode="fast", timeout=timeout)
                stopped.append(nodes[i].name)
    if lay.root.exists():
        for proc in processes_under(lay.root):
            if not is_our_program(proc):
                continue  # something else works in the state dir (a shell, an editor): not ours to kill
            with contextlib.suppress(Exception):
                stopped.append(f"leftover:{proc.pid}:{proc.name()}")
                stop_pid(proc.pid, timeout=5)
        left = [p for p in processes_under(lay.root) if is_our_program(p)]
        if left:
            raise RuntimeError("still running after down: " + ", ".join(f"{p.pid} {p.name()}" for p in left))
    return stopped
