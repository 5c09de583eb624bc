"""Start storefront/gateway processes the way a user does, and talk to them."""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

ROOT = Path(__file__).resolve().parents[2]

# Small catalogue, cheap password hashing and a fast, never-declining gateway.
FAST_ARGS = (
    "--skus",
    "300",
    "--users",
    "30",
    "--password-iterations",
    "1000",
    "--flash-skus",
    "3",
    "--flash-stock",
    "5",
    "--gateway-latency-ms",
    "1",
    "--gateway-jitter-ms",
    "0",
    "--gateway-failure-rate",
    "0",
)
SEED_PASSWORD = "peakload"


@dataclasses.dataclass
class ShopProcess:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""


def _spawn(tmp: Path, argv: list[str], *, name: str, timeout: float = 60.0) -> ShopProcess:
    port_file = tmp / f"{name}-{uuid.uuid4().hex[:6]}.url"
    log_path = tmp / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "storefront", *argv, "--port-file", str(port_file)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"{name} wrote no port file within {timeout}s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.02)
    url = port_file.read_text().strip()
    wait_healthy(url, deadline=deadline)
    return ShopProcess(url=url, proc=proc, log_path=log_path)


def wait_healthy(url: str, *, deadline: float) -> None:
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url}/healthz not OK before the deadline")
        time.sleep(0.02)


def start_shop(tmp: Path, db_url: str, *args: str, timeout: float = 90.0) -> ShopProcess:
    """``python -m storefront serve --port 0 --db DB ARGS...``, returned once /healthz answers."""
    return _spawn(tmp, ["serve", "--port", "0", "--db", db_url, *args], name="storefront", timeout=timeout)


def start_gateway_process(tmp: Path, *args: str) -> ShopProcess:
    return _spawn(tmp, ["gateway", "--port", "0", *args], name="gateway")


class Client:
    """A shopper: one aiohttp session, optional bearer token and run header.

    Usage: ``async with Client(url) as c: status, body = await c.get("/api/home")``
    """

    def __init__(self, base: str, *, run_id: str | None = None, session: aiohttp.ClientSession | None = None) -> None:
        self.base = base
        self.run_id = run_id
        self.token: str | None = None
        self.user_id: int | None = None
        self._own = session is None
        self._session = session

    async def __aenter__(self) -> Client:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), connector=aiohttp.TCPConnector(limit=0))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._own and self._session is not None:
            await self._session.close()

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.run_id:
            headers["X-Peakload-Run"] = self.run_id
        headers.update(extra or {})
        return headers

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        assert self._session is not None
        kwargs: dict[str, Any] = {"headers": self._headers(headers), "params": params}
        if json_body is not None:
            kwargs["json"] = json_body
        elif data is not None:
            kwargs["data"] = data
        async with self._session.request(method, self.base + path, **kwargs) as resp:
            text = await resp.text()
            ctype = resp.headers.get("Content-Type", "")
            body = json.loads(text) if ctype.startswith("application/json") else text
            return resp.status, body

    async def get(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("POST", path, json_body=body, **kw)

    async def put(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return await self.request("PUT", path, json_body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> tuple[int, Any]:
        return await self.request("DELETE", path, **kw)

    async def register_and_login(self, username: str | None = None, password: str = "s3cret-pass") -> None:
        username = username or f"u{uuid.uuid4().hex[:16]}"
        status, body = await self.post("/api/users", {"username": username, "password": password})
        assert status == 201, body
        await self.login(username, password)

    async def login(self, username: str, password: str = SEED_PASSWORD) -> None:
        status, body = await self.post("/api/sessions", {"username": username, "password": password})
        assert status == 200, body
        self.token, self.user_id = body["token"], body["user_id"]

    async def checkout(self, *, key: str | None = None, items: list[dict] | None = None, coupon: str | None = None) -> tuple[int, Any]:
        body: dict[str, Any] = {"address": {"name": "Li Lei", "line1": "1 Test Road", "city": "Hangzhou"}}
        if items is not None:
            body["items"] = items
        if coupon is not None:
            body["coupon"] = coupon
        return await self.post("/api/orders", body, headers={"Idempotency-Key": key or uuid.uuid4().hex})

    async def pay(self, order_id: str, *, key: str | None = None) -> tuple[int, Any]:
        return await self.post(f"/api/orders/{order_id}/payment", headers={"Idempotency-Key": key or uuid.uuid4().hex})


def run(coro: Any) -> Any:
    """Run one async test body to completion (no pytest-asyncio needed)."""
    return asyncio.run(coro)


class MissingSeries(AssertionError, LookupError):
    """No exported sample matches the metric and labels asked for.

    An AssertionError so a test reads it as the shop's failure, a LookupError
    because that is what it is.
    """


def _samples(exposition: str) -> list[Sample]:
    return [sample for family in text_string_to_metric_families(exposition) for sample in family.samples]


def _near(samples: list[Sample], name: str) -> str:
    """What was exported instead: the same metric's label sets, or similar metric names."""
    same = [s.labels for s in samples if s.name == name]
    if same:
        shown = ", ".join("{" + ",".join(f'{k}="{v}"' for k, v in sorted(lbl.items())) + "}" for lbl in same[:8])
        more = f" (+{len(same) - 8} more)" if len(same) > 8 else ""
        return f"{name} is exported with: {shown}{more}"
    names = sorted({s.name for s in samples})
    close = difflib.get_close_matches(name, names, n=6, cutoff=0.6)
    return f"similar names: {', '.join(close)}" if close else f"{len(names)} names exported, none similar"


def metric_value(exposition: str, name: str, /, *, default: float | None = None, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``.

    Raises :class:`MissingSeries` when no sample matches, so ``== 0`` cannot
    pass on a figure the shop never exports. Pass ``default=0.0`` only where
    absence is the expected state, e.g. a labelled counter whose child is
    created on first use (no 5xx yet means no ``status_class="5xx"`` series).

    Usage: ``assert metric_value(text, "storefront_orders_total", traffic="shadow") == 3``
    """
    samples = _samples(exposition)
    matched = [s for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    if matched:
        return sum(s.value for s in matched)
    if default is not None:
        return default
    wanted = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
    raise MissingSeries(f"no series {name}{wanted} in the exposition; {_near(samples, name)}")
