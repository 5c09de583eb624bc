"""A fine-grained open-loop HTTP prober (e.g. 20 requests/s through HAProxy) that timestamps every outcome.

Usage::

    prober = Prober(base_url="http://127.0.0.1:8080", paths=["/api/home", "/api/products/SKU-000001"], rate=20)
    prober.start(); ...; samples = prober.stop()
    prober.write(Path("results/probe.jsonl"))

Requests are *scheduled* at a fixed rate and sent on schedule whether or not
earlier ones have answered (open model), so a stall shows up as failed or
slow samples instead of silently fewer samples. Latency is measured from the
scheduled time. Each sample: ``{"t": scheduled unix, "path", "status",
"latency", "ok", "error"}``; ``ok`` means HTTP 200 within ``timeout``.
It stops by itself after ``max_seconds``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import aiohttp

__all__ = ["Sample", "Prober"]


@dataclass(frozen=True)
class Sample:
    """One probe request."""

    t: float
    path: str
    status: int
    latency: float
    ok: bool
    error: str = ""


class Prober:
    """Background prober thread with its own event loop."""

    def __init__(
        self,
        *,
        base_url: str,
        paths: list[str],
        rate: float = 20.0,
        timeout: float = 2.0,
        max_seconds: float = 300.0,
        max_in_flight: int = 200,
    ) -> None:
        if rate <= 0 or not paths:
            raise ValueError("prober needs rate > 0 and at least one path")
        self.base = base_url.rstrip("/")
        self.paths, self.rate, self.timeout = list(paths), rate, timeout
        self.max_seconds, self.max_in_flight = max_seconds, max_in_flight
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at: float | None = None

    def start(self) -> Prober:
        self.started_at = time.time()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="prober", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> list[Sample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.timeout + 5)
        return sorted(self.samples, key=lambda s: s.t)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as f:
            for s in sorted(self.samples, key=lambda s: s.t):
                f.write(json.dumps(asdict(s)) + "\n")

    async def _one(self, session: aiohttp.ClientSession, t_sched: float, path: str) -> None:
        status, err = 0, ""
        try:
            async with session.get(self.base + path) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError:
            err = "timeout"
        except aiohttp.ClientError as exc:
            err = type(exc).__name__
        latency = time.time() - t_sched
        ok = status == 200 and latency <= self.timeout
        if status and status != 200:
            err = f"HTTP {status}"
        self.samples.append(Sample(t=round(t_sched, 4), path=path, status=status, latency=round(latency, 4), ok=ok, error=err))

    async def _main(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        # A fresh connection per request would hide keep-alive breakage; a small pool mirrors a browser.
        conn = aiohttp.TCPConnector(limit=self.max_in_flight, force_close=False)
        interval = 1.0 / self.rate
        tasks: set[asyncio.Task] = set()
        async with aiohttp.ClientSession(timeout=timeout, connector=conn) as session:
            start = time.time()
            i = 0
            while not self._stop.is_set() and time.time() - start < self.max_seconds:
                t_sched = start + i * interval
                delay = t_sched - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                path = self.paths[i % len(self.paths)]
                i += 1
                if len(tasks) >= self.max_in_flight:
                    self.samples.append(Sample(t=round(t_sched, 4), path=path, status=0, latency=0.0, ok=False, error="prober saturated"))
                    continue
                task = asyncio.create_task(self._one(session, t_sched, path))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=self.timeout + 1)
