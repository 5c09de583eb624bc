"""Running the storefront (and its embedded gateway) on real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import tempfile
from pathlib import Path

from aiohttp import web

from .accesslog import CombinedAccessLog, open_access_log
from .app import create_app
from .config import GatewayConfig, StorefrontConfig
from .gateway import create_gateway_app
from .runner import ShopRunner

__all__ = ["RunningStorefront", "start_storefront", "start_gateway", "serve_forever", "write_atomically"]


@dataclasses.dataclass
class RunningStorefront:
    """Handles of a started storefront; ``await stop()`` shuts everything down."""

    url: str
    gateway_url: str
    runners: list[web.AppRunner]

    async def stop(self) -> None:
        for runner in reversed(self.runners):
            await runner.cleanup()


def _base_url(host: str, port: int) -> str:
    """A URL clients can use: wildcard binds are announced as loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("site is not listening")


async def start_gateway(cfg: GatewayConfig, *, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Start the gateway simulator; returns (runner, base URL).

    Usage: ``runner, url = await start_gateway(GatewayConfig(latency_ms=5))``
    """
    runner = ShopRunner(create_gateway_app(cfg), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    return runner, _base_url(host, _bound_port(runner))


async def start_storefront(
    config: StorefrontConfig,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    gateway: GatewayConfig | None = None,
) -> RunningStorefront:
    """Start the storefront (seeding if needed); with no ``config.gateway_url`` an embedded gateway starts first.

    Usage: ``running = await start_storefront(StorefrontConfig(db_url="sqlite:///x.db")); ...; await running.stop()``
    """
    runners: list[web.AppRunner] = []
    gateway_url = config.gateway_url
    try:
        if gateway_url is None:
            # The embedded gateway is only ever called by this process: keep it on loopback.
            gw_runner, gateway_url = await start_gateway(gateway or GatewayConfig())
            runners.append(gw_runner)
            config = dataclasses.replace(config, gateway_url=gateway_url)
        if config.access_log is not None:
            access = open_access_log(config.access_log)
            runner = ShopRunner(create_app(config), access_log_class=CombinedAccessLog, access_log=access)
        else:
            runner = ShopRunner(create_app(config), access_log=None)
        await runner.setup()  # runs startup: schema + seed
        runners.append(runner)
        await web.TCPSite(runner, host, port, backlog=1024).start()
    except BaseException:
        for r in reversed(runners):
            await r.cleanup()
        raise
    return RunningStorefront(url=_base_url(host, _bound_port(runner)), gateway_url=gateway_url, runners=runners)


def write_atomically(path: str | os.PathLike[str], text: str) -> None:
    """Write via a temp file + rename, so a reader never sees a half-written file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent or ".", prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def _wait_for_signal(*, exit_with_parent: bool = False) -> None:
    """Return on SIGINT/SIGTERM, or (``exit_with_parent``) once the parent process is gone."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watchdog = asyncio.create_task(_watch_parent(stop, os.getppid())) if exit_with_parent else None
    try:
        await stop.wait()
    finally:
        if watchdog is not None:
            watchdog.cancel()


async def _watch_parent(stop: asyncio.Event, parent: int) -> None:
    # A SIGKILLed orchestrator cannot stop its children; re-parenting shows it died.
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    stop.set()


async def announce_and_wait(url: str, *, port_file: str | None, exit_with_parent: bool = False) -> None:
    """Announce ``url`` (stdout and, atomically, ``port_file``), then wait for SIGINT/SIGTERM or the parent's death."""
    try:
        if port_file:
            write_atomically(port_file, url + "\n")
        print(url, flush=True)
        await _wait_for_signal(exit_with_parent=exit_with_parent)
    finally:
        if port_file:
            Path(port_file).unlink(missing_ok=True)


async def serve_forever(
    config: StorefrontConfig,
    *,
    host: str,
    port: int,
    gateway: GatewayConfig,
    port_file: str | None,
    exit_with_parent: bool = False,
) -> None:
    """CLI ``serve``: start, announce the URL (stdout and ``port_file``), run until SIGINT/SIGTERM."""
    running = await start_storefront(config, host=host, port=port, gateway=gateway)
    try:
        await announce_and_wait(running.url, port_file=port_file, exit_with_parent=exit_with_parent)
    finally:
        await running.stop()


async def gateway_forever(
    cfg: GatewayConfig,
    *,
    host: str,
    port: int,
    port_file: str | None,
    exit_with_parent: bool = False,
) -> None:
    """CLI ``gateway``: the simulator alone."""
    runner, url = await start_gateway(cfg, host=host, port=port)
    try:
        await announce_and_wait(url, port_file=port_file, exit_with_parent=exit_with_parent)
    finally:
        await runner.cleanup()
