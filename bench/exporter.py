"""Generator throughput with the peakload exporter on vs off, side by side in one run.

Usage::

    .venv/bin/python bench/exporter.py                  # 3 rounds, 5 s measured each
    .venv/bin/python bench/exporter.py --rounds 5 --seconds 4 --users 10

Target: Debian nginx answering ``return 200`` on a loopback port (falls back to
a minimal aiohttp server in a child process when nginx is not installed),
pinned to the last CPU. Each round starts two Locust generators at once, both
pinned to CPU 0 with ``taskset`` (FastHttpUser, ``constant(0)``): one plain
("off"), one with what a real run has ("on": ``import
scenarios.instrumentation``, /metrics served and scraped every 5 s (``--scrape``;
Prometheus' default is 15 s),
snapshots written every 2 s). Both measure the same wall-clock window after a
warm-up, so whatever else runs on the machine slows both alike and the kernel
splits CPU 0 fairly between them; the on/off ratio of requests is then the
ratio of per-request cost. Launch order alternates between rounds. Each "on"
generator is also checked for exactness: its snapshot file's request count
must equal Locust's own count.

Prints rps and requests per generator CPU-second of both, their on/off ratios
per round and the medians; goal ≥ 0.97. Exit 0 when met, 2 when not, 1 when a
snapshot count was off.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from peakload.core.net import free_port
from peakload.core.records import read_snapshots, split_snapshots  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LOCUSTFILE = REPO / "bench" / "exporter_locustfile.py"
GOAL = 0.97
MAX_SECONDS = 10  # measured seconds per round: keep every load short on a shared machine
MAX_ROUNDS = 5
WARMUP_S = 4.0  # start-up (imports, spawning) before the measured window opens

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type application/json; return 200 '{{"sku":"SKU-00001","price_cents":1999}}'; }}
    }}
}}
"""

AIOHTTP_SERVER = """\
import sys
from aiohttp import web
async def ok(request):
    return web.json_response({"sku": "SKU-00001", "price_cents": 1999})
app = web.Application()
app.router.add_get("/{tail:.*}", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def wait_listening(port: int, proc: subprocess.Popen, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"target exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # poll interval
    raise RuntimeError(f"target not listening on 127.0.0.1:{port} after {timeout} s")


def start_target(kind: str, tmp: Path) -> tuple[subprocess.Popen, int, str]:
    port = free_port()
    cpu = (os.cpu_count() or 1) - 1
    if kind in ("auto", "nginx") and shutil.which("nginx"):
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
        proc = subprocess.Popen([*pin(cpu), "nginx", "-p", str(tmp), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_listening(port, proc)
        return proc, port, "nginx (return 200)"
    if kind == "nginx":
        raise SystemExit("nginx not installed: apt-get install -y --no-install-recommends nginx, or use --target aiohttp")
    proc = subprocess.Popen([*pin(cpu), sys.executable, "-c", AIOHTTP_SERVER, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_listening(port, proc)
    return proc, port, "aiohttp (separate process)"


class Scraper:
    """Scrapes /metrics every ``interval`` seconds while an "on" generator runs, as Prometheus would."""

    def __init__(self, port: int, *, interval: float) -> None:
        self.port, self.interval, self.ok, self._stop = port, interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
                    if b"peakload_requests_total" in resp.read():
                        self.ok += 1
            except OSError:
                pass  # not up yet / already gone

    def __enter__(self) -> Scraper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


@dataclass
class Generator:
    """One Locust process of a round, with its scraper when instrumented."""

    on: bool
    proc: subprocess.Popen
    clock: Path
    results: Path
    scraper: Scraper | None


def start_locust(*, on: bool, host: str, t0: float, t1: float, users: int, tmp: Path, index: int, scrape: float) -> Generator:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEAKLOAD_")}
    tag = f"{'on' if on else 'off'}-{index}"
    clock, results = tmp / f"clock-{tag}.json", tmp / f"results-{tag}"
    env.update(PYTHONPATH=str(REPO), PEAKLOAD_BENCH_INSTRUMENT="1" if on else "0",
               BENCH_T0=repr(t0), BENCH_T1=repr(t1), BENCH_OUT=str(clock))  # fmt: skip
    scraper = None
    if on:
        scraper = Scraper(free_port(), interval=scrape)
        env.update(
            PEAKLOAD_PROFILE=str(REPO / "profiles" / "smoke.yaml"),
            PEAKLOAD_RUN_ID=f"bench-{index}",
            PEAKLOAD_METRICS_PORT=str(scraper.port),
            PEAKLOAD_RESULTS_DIR=str(results),
            PEAKLOAD_SNAPSHOT_INTERVAL="2",
        )
    run_time = math.ceil(t1 - time.time()) + 1
    cmd = [
        *pin(0), sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary", "--json",
        "-u", str(users), "-r", str(users * 10), "-t", f"{run_time}s", "--stop-timeout", "2", "--host", host,
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if scraper is not None:
        scraper.__enter__()
    return Generator(on=on, proc=proc, clock=clock, results=results, scraper=scraper)


def finish_locust(gen: Generator, *, timeout: float) -> dict:
    try:
        stdout, stderr = gen.proc.communicate(timeout=timeout)
    finally:
        if gen.scraper is not None:
            gen.scraper.__exit__(None, None, None)
        if gen.proc.poll() is None:
            gen.proc.kill()
            gen.proc.wait()
    if gen.proc.returncode != 0:
        raise RuntimeError(f"locust exited {gen.proc.returncode}:\n{stderr[-3000:]}")
    measured = json.loads(gen.clock.read_text())
    if "error" in measured:
        raise RuntimeError(f"{'on' if gen.on else 'off'} generator: {measured['error']} (machine too busy? try fewer users)")
    out = {"rps": measured["requests"] / measured["wall_s"], "per_cpu_s": measured["requests"] / measured["cpu_s"]}
    if gen.on:
        lines, problems = read_snapshots(gen.results / "snapshots.jsonl")
        _, intervals, end = split_snapshots(lines)
        counted = sum(r["count"] for i in intervals for r in i["requests"])
        total = sum(s["num_requests"] for s in json.loads(stdout))  # Locust's own count over the whole run
        out.update(exact=counted == total and not problems, counted=counted, total=total,
                   end=(end or {}).get("reason"), scrapes=gen.scraper.ok if gen.scraper else 0)  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help=f"rounds of on+off side by side (max {MAX_ROUNDS})")
    parser.add_argument("--seconds", type=int, default=5, help=f"measured seconds per round (max {MAX_SECONDS})")
    parser.add_argument("--users", type=int, default=10, help="users per generator")
    parser.add_argument("--target", choices=["auto", "nginx", "aiohttp"], default="auto")
    parser.add_argument("--scrape", type=float, default=5.0, help="seconds between /metrics scrapes of the 'on' generator")
    args = parser.parse_args(argv)
    rounds, seconds = min(max(args.rounds, 1), MAX_ROUNDS), min(max(args.seconds, 2), MAX_SECONDS)

    with tempfile.TemporaryDirectory(prefix="peakload-bench-") as tmpdir:
        tmp = Path(tmpdir)
        target, port, what = start_target(args.target, tmp)
        host = f"http://127.0.0.1:{port}"
        print(f"target: {what} on 127.0.0.1:{port}; generators pinned: {'yes, both on CPU 0' if pin(0) else 'no'}; "
              f"{rounds} rounds x {seconds} s measured, {args.users} users each, FastHttpUser constant(0), "
              f"/metrics scraped every {args.scrape:g} s")  # fmt: skip
        ratios, cpu_ratios, exact = [], [], True
        try:
            for i in range(rounds):
                # both generators share CPU 0 over the same wall-clock window [t0, t1]: whatever
                # else the machine does slows both alike; launch order alternates per round
                t0 = time.time() + WARMUP_S
                t1 = t0 + seconds
                kinds = (False, True) if i % 2 == 0 else (True, False)
                gens = {
                    on: start_locust(on=on, host=host, t0=t0, t1=t1, users=args.users, tmp=tmp, index=i, scrape=max(args.scrape, 0.2))
                    for on in kinds
                }
                res = {on: finish_locust(gen, timeout=t1 - time.time() + 60) for on, gen in gens.items()}
                off, on = res[False], res[True]
                ratios.append(on["rps"] / off["rps"])
                cpu_ratios.append(on["per_cpu_s"] / off["per_cpu_s"])
                exact &= on["exact"]
                print(
                    f"round {i + 1}: off {off['rps']:6.0f} rps ({off['per_cpu_s']:6.0f}/CPU-s) | "
                    f"on {on['rps']:6.0f} rps ({on['per_cpu_s']:6.0f}/CPU-s) | on/off rps {ratios[-1]:.3f}, "
                    f"per CPU-s {cpu_ratios[-1]:.3f} | on-run snapshots {on['counted']}/{on['total']} requests "
                    f"({'exact' if on['exact'] else 'MISMATCH'}), {on['scrapes']} scrapes, end={on['end']}"
                )
        finally:
            target.terminate()
            target.wait(timeout=10)
    median_ratio, median_cpu = statistics.median(ratios), statistics.median(cpu_ratios)
    print(f"median on/off: rps {median_ratio:.3f}, requests per generator CPU-second {median_cpu:.3f} (goal >= {GOAL})")
    met = median_ratio >= GOAL and median_cpu >= GOAL
    print(f"goal {'met' if met else 'NOT met'}")
    if not exact:
        print("snapshot counts did not match Locust's counts in at least one round")
        return 1
    return 0 if met else 2


if __name__ == "__main__":
    raise SystemExit(main())
