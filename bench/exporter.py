"""Generator throughput with the peakload exporter on vs off, side by side in one run.

Usage::

    .venv/bin/python bench/exporter.py                 # 3 off/on pairs of 4 s each
    .venv/bin/python bench/exporter.py --pairs 2 --seconds 5 --users 20

Target: Debian nginx answering ``return 200`` on a loopback port (falls back
to a minimal aiohttp server in a child process when nginx is not installed),
pinned to the last CPU; Locust (one process, FastHttpUser, ``constant(0)``)
pinned to CPU 0 with ``taskset`` when available. Runs alternate off, on, off,
on... so drift on a shared machine hits both sides. "on" means what a real
run has: ``import scenarios.instrumentation``, /metrics served and scraped
every second, snapshots written every 2 s. Each "on" run is also checked for
exactness: the snapshot file's request count must equal Locust's own.

Prints rps and requests per generator CPU-second for each run, the on/off
ratios per pair and their medians; goal ≥ 0.97 for both. The CPU-second
figure is the steadier one when other work shares the machine: it measures
the generator's cost per request, which is what the exporter adds to.
"""

from __future__ import annotations

import argparse
import json
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCUSTFILE = REPO / "bench" / "exporter_locustfile.py"
GOAL = 0.97
MAX_SECONDS = 10  # per load run: keep every load short on a shared machine
MAX_PAIRS = 5

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """Scrapes /metrics once a second while an "on" run is going, like Prometheus would (but more often)."""

    def __init__(self, port: int) -> None:
        self.port, self.ok, self._stop = port, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
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


def run_locust(*, on: bool, host: str, seconds: int, users: int, tmp: Path, index: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO), "PEAKLOAD_BENCH_INSTRUMENT": "1" if on else "0"}
    for key in [k for k in env if k.startswith("PEAKLOAD_") and k != "PEAKLOAD_BENCH_INSTRUMENT"]:
        del env[key]
    metrics_port = 0
    results = tmp / f"on-{index}"
    if on:
        metrics_port = free_port()
        env.update(
            PEAKLOAD_PROFILE=str(REPO / "profiles" / "smoke.yaml"),
            PEAKLOAD_RUN_ID=f"bench-{index}",
            PEAKLOAD_METRICS_PORT=str(metrics_port),
            PEAKLOAD_RESULTS_DIR=str(results),
            PEAKLOAD_SNAPSHOT_INTERVAL="2",
        )
    cmd = [
        *pin(0), sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
        "-u", str(users), "-r", str(users * 10), "-t", f"{seconds}s", "--stop-timeout", "2", "--host", host,
        "--exit-code-on-error", "0",
    ]  # fmt: skip
    clock = tmp / f"clock-{'on' if on else 'off'}-{index}.json"
    env["PEAKLOAD_BENCH_OUT"] = str(clock)
    scraper = Scraper(metrics_port) if on else None
    with scraper or _Null():
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if proc.returncode != 0:
        raise RuntimeError(f"locust exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    # Measured inside the generator over the test only (imports and start-up excluded):
    # rps suffers when other work on the machine steals the generator's CPU;
    # requests per generator CPU-second does not.
    measured = json.loads(clock.read_text())
    requests = measured["requests"]
    out = {"on": on, "requests": requests, "rps": requests / measured["wall_s"], "per_cpu_s": requests / measured["cpu_s"]}
    if on:
        sys.path.insert(0, str(REPO))
        from exporters.snapshots import read_snapshots, split_snapshots

        lines, problems = read_snapshots(results / "snapshots.jsonl")
        _, intervals, end = split_snapshots(lines)
        counted = sum(r["count"] for i in intervals for r in i["requests"])
        out.update(snapshot_requests=counted, snapshot_problems=problems, end=(end or {}).get("reason"), scrapes=scraper.ok if scraper else 0)
    return out


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3, help=f"off/on pairs (max {MAX_PAIRS})")
    parser.add_argument("--seconds", type=int, default=4, help=f"load seconds per run (max {MAX_SECONDS})")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--target", choices=["auto", "nginx", "aiohttp"], default="auto")
    args = parser.parse_args(argv)
    pairs, seconds = min(max(args.pairs, 1), MAX_PAIRS), min(max(args.seconds, 2), MAX_SECONDS)

    with tempfile.TemporaryDirectory(prefix="peakload-bench-") as tmpdir:
        tmp = Path(tmpdir)
        target, port, what = start_target(args.target, tmp)
        print(f"target: {what} on 127.0.0.1:{port}; locust pinned: {'yes (CPU 0)' if pin(0) else 'no'}; "
              f"{pairs} pairs x {seconds} s, {args.users} users, FastHttpUser constant(0)")  # fmt: skip
        ratios, cpu_ratios, offs, ons, exact = [], [], [], [], True
        try:
            for i in range(pairs):
                off = run_locust(on=False, host=f"http://127.0.0.1:{port}", seconds=seconds, users=args.users, tmp=tmp, index=i)
                on = run_locust(on=True, host=f"http://127.0.0.1:{port}", seconds=seconds, users=args.users, tmp=tmp, index=i)
                ratios.append(on["rps"] / off["rps"])
                cpu_ratios.append(on["per_cpu_s"] / off["per_cpu_s"])
                offs.append(off["rps"])
                ons.append(on["rps"])
                same = on["snapshot_requests"] == on["requests"] and not on["snapshot_problems"]
                exact &= same
                print(
                    f"pair {i + 1}: off {off['rps']:6.0f} rps ({off['per_cpu_s']:6.0f}/CPU-s) | "
                    f"on {on['rps']:6.0f} rps ({on['per_cpu_s']:6.0f}/CPU-s) | ratio rps {ratios[-1]:.3f}, "
                    f"per CPU-s {cpu_ratios[-1]:.3f} | snapshots {on['snapshot_requests']}/{on['requests']} "
                    f"({'exact' if same else 'MISMATCH'}), {on['scrapes']} scrapes, end={on['end']}"
                )
        finally:
            target.terminate()
            target.wait(timeout=10)
    median_ratio, median_cpu = statistics.median(ratios), statistics.median(cpu_ratios)
    print(f"median off {statistics.median(offs):.0f} rps, median on {statistics.median(ons):.0f} rps")
    print(f"median ratio on/off: rps {median_ratio:.3f}, requests per generator CPU-second {median_cpu:.3f} (goal >= {GOAL})")
    met = median_ratio >= GOAL and median_cpu >= GOAL
    print(f"goal {'met' if met else 'NOT met'} (both ratios must reach {GOAL}; rps alone is noisy on a shared machine)")
    if not exact:
        print("snapshot counts did not match Locust's counts in at least one run")
        return 1
    return 0 if met else 2


if __name__ == "__main__":
    raise SystemExit(main())
