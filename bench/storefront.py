"""Product-page throughput: the storefront vs a bare aiohttp hello-world, side by side.

    .venv/bin/python bench/storefront.py [--duration 3] [--connections 32] [--rounds 3]

Each target runs in its own process (pinned to CPU 0 when there are two or
more CPUs); the same generator (``wrk`` when installed, else an aiohttp
client process, pinned to CPU 1) hits ``/api/products/{sku}`` over 100 hot
SKUs with the same connection count and duration, alternating A/B/A/B. It
prints every round, the medians, each back-to-back pair's ratio and their
median, storefront / hello-world (goal >= 0.5). ``--check`` exits 1 when the
goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOT_SKUS = [f"SKU-{n:06d}" for n in range(1, 101)]
GOAL = 0.5
_LUA = """
local skus = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", "/api/products/" .. skus[(i %% #skus) + 1])
end
"""


# --- the hello-world target (run as: bench/storefront.py --serve-hello PORT_FILE) -----------------


def _serve_hello(port_file: str) -> None:
    from aiohttp import web

    async def product(_request: web.Request) -> web.Response:
        return web.Response(text="Hello, World!")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/api/products/{sku}", product)
        app.router.add_get("/healthz", product)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        tmp = port_file + ".tmp"
        Path(tmp).write_text(f"http://127.0.0.1:{port}\n")
        os.replace(tmp, port_file)
        await asyncio.Event().wait()

    asyncio.run(main())


# --- the fallback generator (run as: bench/storefront.py --client URL CONNS SECONDS) ---------------


def _client(url: str, connections: int, seconds: float) -> None:
    import aiohttp

    async def main() -> None:
        done = 0
        errors = 0
        stop_at = time.perf_counter() + seconds

        async def worker(session: aiohttp.ClientSession, offset: int) -> None:
            nonlocal done, errors
            i = offset
            while time.perf_counter() < stop_at:
                async with session.get(f"{url}/api/products/{HOT_SKUS[i % len(HOT_SKUS)]}") as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
                done += 1
                i += 1

        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.perf_counter()
            await asyncio.gather(*[worker(session, k) for k in range(connections)])
            elapsed = time.perf_counter() - start
        print(f"Requests/sec: {done / elapsed:.2f}")
        print(f"Errors: {errors}")

    asyncio.run(main())


# --- orchestration -------------------------------------------------------------------------------


def _pin(cpu: int) -> list[str]:
    if (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(cpu)]
    return []


def _wait_url(port_file: Path, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"bench: {what} did not start (exit {proc.poll()})")
        time.sleep(0.05)
    url = port_file.read_text().strip()
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2):
                return url
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {what} at {url} is not healthy") from None
            time.sleep(0.05)


def _start_targets(tmp: Path) -> tuple[dict[str, str], list[subprocess.Popen]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    shop_pf, hello_pf = tmp / "shop.url", tmp / "hello.url"
    shop = subprocess.Popen(
        [
            *_pin(0),
            sys.executable,
            "-m",
            "storefront",
            "serve",
            "--port",
            "0",
            "--port-file",
            str(shop_pf),
            "--db",
            f"sqlite:///{tmp / 'bench.db'}",
            "--skus",
            "10000",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    hello = subprocess.Popen(
        [*_pin(0), sys.executable, __file__, "--serve-hello", str(hello_pf)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    procs = [shop, hello]
    try:
        urls = {"storefront": _wait_url(shop_pf, shop, "storefront"), "hello-world": _wait_url(hello_pf, hello, "hello")}
    except BaseException:
        for p in procs:
            p.kill()
        raise
    return urls, procs


def _measure(url: str, *, connections: int, seconds: int, tmp: Path) -> float:
    if shutil.which("wrk"):
        script = tmp / "skus.lua"
        script.write_text(_LUA % ", ".join(f'"{s}"' for s in HOT_SKUS))
        cmd = [*_pin(1), "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url]
    else:
        cmd = [*_pin(1), sys.executable, __file__, "--client", url, str(connections), str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    rps = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)|Errors: ([1-9]\d*)", out)
    if rps is None:
        raise SystemExit(f"bench: could not read the generator's output:\n{out}")
    if bad:
        raise SystemExit(f"bench: error responses while measuring {url}:\n{out}")
    return float(rps.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=3, help="whole seconds per measurement")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="A/B pairs")
    parser.add_argument("--check", action="store_true", help=f"exit 1 when the ratio is below {GOAL}")
    args = parser.parse_args(argv)

    generator = "wrk -t1" if shutil.which("wrk") else "aiohttp client (install wrk for a lighter generator)"
    with tempfile.TemporaryDirectory(prefix="peakload-bench-") as tmp_name:
        tmp = Path(tmp_name)
        urls, procs = _start_targets(tmp)
        try:
            for url in urls.values():  # warm caches, JIT-free but connection pools / page cache
                _measure(url, connections=args.connections, seconds=1, tmp=tmp)
            results: dict[str, list[float]] = {name: [] for name in urls}
            for rnd in range(args.rounds):
                for name in ("storefront", "hello-world"):
                    rps = _measure(urls[name], connections=args.connections, seconds=args.duration, tmp=tmp)
                    results[name].append(rps)
                    print(f"round {rnd + 1}  {name:<12} {rps:>10.0f} req/s", flush=True)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(20)
    shop = statistics.median(results["storefront"])
    hello = statistics.median(results["hello-world"])
    # Each A/B pair ran back to back, so its ratio is the least disturbed by
    # background load that drifts over the whole run (a shared CPU); the
    # verdict uses the median pair ratio, and the ratio of medians is shown too.
    pairs = [a / b for a, b in zip(results["storefront"], results["hello-world"], strict=True) if b]
    ratio = statistics.median(pairs) if pairs else 0.0
    print(
        f"generator: {generator}, {args.connections} connections, {args.duration:g}s per run, "
        f"{args.rounds} A/B rounds, GET /api/products/{{sku}} over {len(HOT_SKUS)} SKUs"
    )
    print(f"storefront   median {shop:>10.0f} req/s")
    print(f"hello-world  median {hello:>10.0f} req/s")
    print(f"pair ratios  {', '.join(f'{r:.2f}' for r in pairs)}; ratio of medians {shop / hello if hello else 0:.2f}")
    print(f"ratio storefront/hello-world = {ratio:.2f} (median of pairs; goal >= {GOAL}: {'met' if ratio >= GOAL else 'MISSED'})")
    return 1 if args.check and ratio < GOAL else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-hello":
        _serve_hello(sys.argv[2])
    elif len(sys.argv) == 5 and sys.argv[1] == "--client":
        _client(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(main())
