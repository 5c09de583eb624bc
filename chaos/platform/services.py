"""Start and check the platform's non-PostgreSQL processes.

Usage::

    start_redis(lay, spec); redis_ping(spec.ports.redis)
    start_storefront(lay, spec, 0)

Each ``start_*`` is idempotent: a component whose pidfile names a live
process is left alone. Every process runs with its cwd inside the state dir.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import urllib.parse
from pathlib import Path

from chaos.platform import configs
from chaos.platform.layout import Layout, PlatformSpec
from chaos.platform.procs import pid_under, read_pid, spawn, wait_http, wait_port

__all__ = [
    "REPO_ROOT",
    "python_env",
    "running",
    "start_redis",
    "redis_cmd",
    "redis_ping",
    "start_faultproxy",
    "start_gateway",
    "start_storefront",
    "storefront_argv",
    "storefront_has_redis",
    "start_haproxy",
    "start_prometheus",
    "start_exporters",
    "have_exporters",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_EXPORTER = "/usr/bin/prometheus-postgres-exporter"
REDIS_EXPORTER = "/usr/bin/prometheus-redis-exporter"


def python_env() -> dict[str, str]:
    """Environment for our Python children: the repo on PYTHONPATH (their cwd is the state dir)."""
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}


def running(lay: Layout, name: str) -> int | None:
    """The live pid recorded for ``name``, or None."""
    pid = read_pid(lay.run, name)
    return pid if pid_under(pid, lay.root) else None


def redis_cmd(port: int, *args: str, timeout: float = 1.0) -> str:
    """Send one command in RESP and return the first reply line (``+PONG``, ``:3``, ``-ERR ...``)."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload.encode())
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.split(b"\r\n", 1)[0].decode(errors="replace")


def redis_ping(port: int) -> bool:
    """True when Redis answers PONG."""
    try:
        return redis_cmd(port, "PING") == "+PONG"
    except OSError:
        return False


def start_redis(lay: Layout, spec: PlatformSpec) -> int:
    """redis-server on its own port, no persistence (it is a cache), LRU-bounded memory."""
    if pid := running(lay, "redis"):
        return pid
    lay.redis_dir.mkdir(parents=True, exist_ok=True)
    pid = spawn(
        "redis",
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(spec.ports.redis),
            "--dir",
            str(lay.redis_dir),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--maxmemory",
            "64mb",
            "--maxmemory-policy",
            "allkeys-lru",
            "--proc-title-template",
            "{title} {listen-addr} " + str(lay.redis_dir),
        ],
        pid_dir=lay.run,
        log=lay.logs / "redis.log",
        cwd=lay.redis_dir,
    )
    wait_port(spec.ports.redis, pid=pid, what="redis")
    return pid


def start_faultproxy(lay: Layout, spec: PlatformSpec) -> int:
    """The fault proxy in front of each PostgreSQL node, the gateway and Redis."""
    if pid := running(lay, "faultproxy"):
        return pid
    p = spec.ports
    proxies = [f"pg{i}=127.0.0.1:{p.proxy_pg[i]}>127.0.0.1:{p.pg[i]}" for i in range(len(p.pg))]
    proxies += [f"gateway=127.0.0.1:{p.proxy_gateway}>127.0.0.1:{p.gateway}", f"redis=127.0.0.1:{p.proxy_redis}>127.0.0.1:{p.redis}"]
    argv = [sys.executable, "-m", "chaos.faultproxy", "--api-port", str(p.faultproxy_api)]
    for x in proxies:
        argv += ["--proxy", x]
    pid = spawn("faultproxy", argv, pid_dir=lay.run, log=lay.logs / "faultproxy.log", cwd=lay.root, env=python_env())
    wait_http(f"http://127.0.0.1:{p.faultproxy_api}/version", pid=pid, what="faultproxy")
    return pid


def start_gateway(lay: Layout, spec: PlatformSpec) -> int:
    """The payment gateway simulator (``python -m storefront gateway``)."""
    if pid := running(lay, "gateway"):
        return pid
    argv = [
        sys.executable,
        "-m",
        "storefront",
        "gateway",
        "--host",
        "127.0.0.1",
        "--port",
        str(spec.ports.gateway),
        "--latency-ms",
        f"{spec.gateway_latency_ms:g}",
        "--failure-rate",
        f"{spec.gateway_failure_rate:g}",
    ]
    pid = spawn("gateway", argv, pid_dir=lay.run, log=lay.logs / "gateway.log", cwd=lay.root, env=python_env())
    wait_port(spec.ports.gateway, pid=pid, what="payment gateway", timeout=30)
    return pid


def storefront_argv(spec: PlatformSpec, port: int, *, db: str, gateway: str, redis: str | None, port_file: Path | None = None) -> list[str]:
    """Command line of one storefront replica."""
    argv = [
        sys.executable,
        "-m",
        "storefront",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--db",
        db,
        "--gateway-url",
        gateway,
        "--skus",
        str(spec.seed_skus),
        "--users",
        str(spec.seed_users),
    ]
    if redis and storefront_has_redis():
        argv += ["--redis-url", redis]
    if port_file:
        argv += ["--port-file", str(port_file)]
    return argv


@functools.lru_cache(maxsize=1)
def storefront_has_redis() -> bool:
    """True when ``python -m storefront serve`` takes ``--redis-url`` (else its cache is in-process)."""
    from chaos.platform.procs import run

    proc = run([sys.executable, "-m", "storefront", "serve", "--help"], check=False, env={**os.environ, **python_env()}, cwd=REPO_ROOT)
    return "--redis-url" in proc.stdout


def start_storefront(lay: Layout, spec: PlatformSpec, i: int, *, timeout: float = 60.0, wait: bool = True) -> int:
    """Storefront replica ``i`` on its port, on the primary through the multi-host DB URL.

    ``wait`` polls its /healthz until 200 (or the process dies).
    """
    name = f"storefront-{i}"
    if pid := running(lay, name):
        return pid
    lay.storefront_dir.mkdir(parents=True, exist_ok=True)
    port = spec.ports.storefront[i]
    argv = storefront_argv(spec, port, db=configs.db_url(spec), gateway=configs.gateway_url(spec), redis=configs.redis_url(spec))
    pid = spawn(name, argv, pid_dir=lay.run, log=lay.logs / f"{name}.log", cwd=lay.storefront_dir, env=python_env())
    if wait:
        wait_http(f"http://127.0.0.1:{port}/healthz", pid=pid, what=name, timeout=timeout)
    return pid


def start_haproxy(lay: Layout, spec: PlatformSpec) -> int:
    """HAProxy in the foreground (``-db``) with our config, validated first (``-c``)."""
    lay.haproxy_cfg.parent.mkdir(parents=True, exist_ok=True)
    lay.haproxy_cfg.write_text(configs.render_haproxy(spec, lay))
    if pid := running(lay, "haproxy"):
        return pid
    from chaos.platform.procs import run

    run(["haproxy", "-c", "-q", "-f", str(lay.haproxy_cfg)])
    pid = spawn(
        "haproxy", ["haproxy", "-db", "-f", str(lay.haproxy_cfg)], pid_dir=lay.run, log=lay.logs / "haproxy.log", cwd=lay.haproxy_cfg.parent
    )
    wait_port(spec.ports.haproxy, pid=pid, what="haproxy")
    return pid


def have_exporters() -> bool:
    """True when the Debian postgres and redis exporters are installed."""
    return os.path.exists(PG_EXPORTER) and os.path.exists(REDIS_EXPORTER)


def start_exporters(lay: Layout, spec: PlatformSpec, monitor_password: str) -> list[int]:
    """postgres_exporter (both nodes, pg_monitor role) and redis_exporter, when installed."""
    if not have_exporters():
        return []
    p = spec.ports
    pids = []
    for i, (port, eport) in enumerate(zip(p.pg, p.pg_exporter)):
        # One exporter per node: 0.11 with several DSNs collides on its own collector metrics.
        name = f"pg-exporter-{i}"
        if not (pid := running(lay, name)):
            pw = urllib.parse.quote(monitor_password, safe="")
            dsn = f"postgresql://monitor:{pw}@127.0.0.1:{port}/postgres?sslmode=disable"
            pid = spawn(
                name,
                [PG_EXPORTER, f"--web.listen-address=127.0.0.1:{eport}", "--log.level=warn"],
                pid_dir=lay.run,
                log=lay.logs / f"{name}.log",
                cwd=lay.root,
                env={"DATA_SOURCE_NAME": dsn},
            )
            wait_port(eport, pid=pid, what=f"postgres exporter {i}")
        pids.append(pid)
    if not (pid := running(lay, "redis-exporter")):
        pid = spawn(
            "redis-exporter",
            [REDIS_EXPORTER, "-redis.addr", f"redis://127.0.0.1:{p.redis}", "-web.listen-address", f"127.0.0.1:{p.redis_exporter}"],
            pid_dir=lay.run,
            log=lay.logs / "redis-exporter.log",
            cwd=lay.root,
        )
        wait_port(p.redis_exporter, pid=pid, what="redis exporter")
    pids.append(pid)
    return pids


def start_prometheus(lay: Layout, spec: PlatformSpec, *, scrape_interval: str = "2s") -> int:
    """Prometheus scraping every component; rule files from ``rules/`` (config checked by promtool)."""
    d = lay.prometheus_dir
    lay.rules_dir.mkdir(parents=True, exist_ok=True)
    (d / "data").mkdir(parents=True, exist_ok=True)
    cfg = d / "prometheus.yml"
    cfg.write_text(configs.render_prometheus(spec, lay, scrape_interval=scrape_interval, exporters=have_exporters()))
    if pid := running(lay, "prometheus"):
        from chaos.platform.procs import http_post

        http_post(f"http://127.0.0.1:{spec.ports.prometheus}/-/reload")  # pick up new rules/targets
        return pid
    from chaos.platform.procs import run

    run(["promtool", "check", "config", str(cfg)])
    pid = spawn(
        "prometheus",
        [
            "prometheus",
            f"--config.file={cfg}",
            f"--storage.tsdb.path={d / 'data'}",
            f"--web.listen-address=127.0.0.1:{spec.ports.prometheus}",
            "--web.enable-lifecycle",
            "--storage.tsdb.retention.time=2d",
            "--log.level=warn",
            "--scrape.discovery-reload-interval=500ms",
        ],
        pid_dir=lay.run,
        log=lay.logs / "prometheus.log",
        cwd=d,
    )
    wait_http(f"http://127.0.0.1:{spec.ports.prometheus}/-/ready", pid=pid, what="prometheus", timeout=30)
    return pid
