"""Fixtures: a crafted-response HTTP server on loopback, and a driver for ShopClient calls.

The server (aiohttp, in a thread) answers each ``(method, path)`` with whatever the
test put in ``shop.responses`` and records every request it saw. ShopClient runs in
a child process because importing Locust monkey-patches the importing process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.aiohttp_thread import serve_in_thread

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CraftedShop:
    url: str = ""
    responses: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    seen: list[dict[str, Any]] = field(default_factory=list)

    def answer(self, method: str, path: str, status: int, body: Any) -> None:
        """Always answer ``(method, path)`` like this."""
        self.responses[(method, path)] = [(status, body)]

    def answer_in_turn(self, method: str, path: str, *answers: tuple[int, Any]) -> None:
        """Answer successive requests with successive ``(status, body)``; the last one repeats."""
        self.responses[(method, path)] = list(answers)

    def next_answer(self, method: str, path: str) -> tuple[int, Any]:
        queue = self.responses.get((method, path))
        if not queue:
            return 404, {"error": "not_found", "detail": "no crafted answer"}
        return queue.pop(0) if len(queue) > 1 else queue[0]


def _app(shop: CraftedShop) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        shop.seen.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "body": json.loads(raw) if raw else None,
            }
        )
        status, body = shop.next_answer(request.method, request.path)
        text = body if isinstance(body, str) else json.dumps(body)
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture
def crafted_shop() -> Any:
    shop = CraftedShop()
    with serve_in_thread(_app(shop), what="crafted shop") as url:
        shop.url = url
        yield shop


def _drive(
    url: str, calls: list[dict[str, Any]], *, token: str | None = None, target: dict[str, Any] | None = None, run_id: str = "test-run-1"
) -> dict[str, Any]:
    """Run ShopClient calls against ``url`` in a child process; returns results and request events."""
    spec = {"url": url, "calls": calls, "token": token, "target": target or {}, "run_id": run_id}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("client_driver.py"))],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture
def drive() -> Any:
    """``drive(url, calls, token=..., target=...)`` -> {"results", "requests", "token"}."""
    return _drive


# ---------------------------------------------------------------- a real storefront


@dataclass
class Storefront:
    url: str
    flash_stock: int
    users: int
    password: str = "peakload"


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The reference storefront on a free loopback port with a fresh SQLite file."""
    import time

    tmp = tmp_path_factory.mktemp("storefront")
    port_file = tmp / "url"
    flash_stock, users = 10, 400
    cmd = [
        sys.executable,
        "-m",
        "storefront",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--db",
        f"sqlite:///{tmp / 'shop.sqlite'}",
        "--port-file",
        str(port_file),
        "--users",
        str(users),
        "--flash-stock",
        str(flash_stock),
        "--password-iterations",
        "1000",
        "--gateway-latency-ms",
        "5",
        "--gateway-jitter-ms",
        "2",
    ]
    log = open(tmp / "storefront.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None, (tmp / "storefront.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "storefront did not write its port file within 60 s"
            time.sleep(0.1)
        yield Storefront(url=port_file.read_text().strip(), flash_stock=flash_stock, users=users)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
