"""Bytes on the wire per request of the smoke shopper funnel (docs/capacity.md input 10).

Usage::

    flock /tmp/peakload-heavy.lock .venv/bin/python bench/wire_bytes.py     # ~40 s; prints one JSON line

Starts ``python -m storefront serve`` on a loopback port, a byte-counting TCP
relay in front of it, and Locust on ``locustfile.py`` with
``PEAKLOAD_PROFILE=profiles/smoke.yaml`` against the relay (the smoke shape,
~25 s). Counts the TCP payload each way (HTTP headers and bodies; no TCP/IP
framing) and divides by Locust's request count. Not a speed bench: one figure
for the network arithmetic.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peakload.core.net import free_port  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


class Relay:
    """Loopback TCP relay that counts the bytes client → shop (up) and shop → client (down)."""

    def __init__(self, shop_port: int) -> None:
        self.shop_port, self.up, self.down, self.connections = shop_port, 0, 0, 0

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, up: bool) -> None:
        while data := await reader.read(65536):
            if up:
                self.up += len(data)
            else:
                self.down += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        shop_reader, shop_writer = await asyncio.open_connection("127.0.0.1", self.shop_port)
        await asyncio.gather(self._pipe(reader, shop_writer, up=True), self._pipe(shop_reader, writer, up=False), return_exceptions=True)


async def _run(relay: Relay, relay_port: int, tmp: Path) -> None:
    server = await asyncio.start_server(relay.handle, "127.0.0.1", relay_port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEAKLOAD_")}
    env |= {"PEAKLOAD_PROFILE": str(REPO / "profiles" / "smoke.yaml"), "PEAKLOAD_RUN_ID": "wire-bytes"}
    cmd = [sys.executable, "-m", "locust", "-f", str(REPO / "locustfile.py"), "--headless", "--host", f"http://127.0.0.1:{relay_port}",
           "--only-summary", "--csv", str(tmp / "locust"), "--loglevel", "WARNING", "--exit-code-on-error", "0", "--stop-timeout", "10"]  # fmt: skip
    with open(tmp / "locust.err", "w") as err:
        proc = await asyncio.create_subprocess_exec(*cmd, cwd=tmp, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=err)
        await asyncio.wait_for(proc.wait(), timeout=120)
    await asyncio.sleep(0.5)  # the last bytes through the relay
    server.close()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="peakload-wire-") as tmpdir:
        tmp = Path(tmpdir)
        shop_port, relay_port = free_port(), free_port()
        shop_cmd = [
            sys.executable,
            "-m",
            "storefront",
            "serve",
            "--port",
            str(shop_port),
            "--db",
            f"sqlite:///{tmp / 'shop.db'}",
            "--reset",
        ]
        shop = subprocess.Popen(shop_cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", shop_port), 0.2).close()
                    break
                except OSError:
                    if shop.poll() is not None:
                        print(f"storefront exited with {shop.returncode}", file=sys.stderr)
                        return 1
                    time.sleep(0.1)  # poll until the shop listens
            relay = Relay(shop_port)
            asyncio.run(_run(relay, relay_port, tmp))
        finally:
            shop.terminate()
            shop.wait(timeout=10)
        rows = list(csv.DictReader(open(tmp / "locust_stats.csv")))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    n = int(total["Request Count"])
    if n == 0:
        print("no requests were made", file=sys.stderr)
        return 1
    print(json.dumps({"requests": n, "failures": int(total["Failure Count"]), "connections": relay.connections,
                      "up_bytes": relay.up, "down_bytes": relay.down, "up_per_request": round(relay.up / n, 1),
                      "down_per_request": round(relay.down / n, 1), "body_per_request": round(float(total["Average Content Size"]), 1)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
