"""Load-generator efficiency on one core: wrk vs bare Locust vs peakload, side by side in one run.

Usage::

    .venv/bin/python bench/generator.py                      # 3 rounds, 6 s measured per generator
    .venv/bin/python bench/generator.py --rounds 5 --seconds 5 --connections 32

Target: Debian nginx (``apt-get install -y --no-install-recommends nginx wrk``)
answering ``return 200 "ok"`` on a free loopback port with its own config,
pid and log files, pinned to CPU 0. Each generator is pinned to CPU 1
(``taskset -c 1``) and keeps ``--connections`` connections busy:

* ``wrk -t1 -cN`` (C, the ceiling),
* bare Locust: ``FastHttpUser``, ``constant(0)``, N users, nothing else,
* peakload: the real ``locustfile.py`` with an open-model profile (single GET
  journeys at 50,000 arrivals/s — above what one core serves — and a pool of
  N users), the exporter serving /metrics (scraped every 5 s), HdrHistograms
  for intended-start and service time, snapshots every 2 s, arrival scheduler
  and dropped-arrival counting.

Requests are counted by nginx (``stub_status``), so every generator is
measured the same way, and CPU by the generator's process tree (psutil):
*requests per generator CPU-second* is rps per core, robust against other
load on the machine; plain rps is printed beside it. Rounds alternate the
order. Then peakload with 1 and 2 Locust worker processes (master +
``--processes``; CPUs 0-1, shared with nginx) shows how it scales.

Prints per round and medians: rps/core of each, and the ratio peakload / bare
Locust (goal >= 1.0). Exit 0 when the goal is met, 2 when not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
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

import psutil

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
GOAL = 1.0
MAX_SECONDS = 10
MAX_ROUNDS = 5
WARMUP_S = 3.0  # after the first requests reach nginx
NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    keepalive_requests 10000000;
    server {{
        listen 127.0.0.1:{port};
        location = /nginx_status {{ stub_status; }}
        location / {{ return 200 "ok"; }}
    }}
}}
"""
PROFILE = """\
version: peakload/v1
name: bench-generator
slo: {slo}
arrivals:
  kind: constant
  stages: [{{duration: {seconds}s, rate: 50000}}]
  journey: single_request
  path: /
  pool: {pool}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def nginx_requests(port: int) -> int:
    """Requests nginx has handled so far (stub_status; this poll included)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=5) as resp:
        text = resp.read().decode()
    return int(re.search(r"\s(\d+)\s+(\d+)\s+(\d+)\s*\nReading", text).group(3))


def start_nginx(tmp: Path) -> tuple[subprocess.Popen, int]:
    if not shutil.which("nginx"):
        raise SystemExit("nginx not installed: apt-get install -y --no-install-recommends nginx wrk")
    port = free_port()
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=port))
    proc = subprocess.Popen(["taskset", "-c", "0", "nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while True:
        try:
            nginx_requests(port)
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start") from None
            time.sleep(0.05)  # poll until it listens


def tree_cpu(proc: psutil.Process) -> float:
    """User + system CPU seconds of a process and its children (Locust --processes forks workers)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


class Scraper(threading.Thread):
    """Scrape the generator's /metrics every ``interval`` s, as Prometheus would."""

    def __init__(self, port: int, interval: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.port, self.interval, self.ok, self.stop = port, interval, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as resp:
                    self.ok += b"peakload_requests_total" in resp.read()
            except OSError:
                pass  # not serving yet


@dataclass
class Measured:
    requests: int
    wall_s: float
    cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.wall_s

    @property
    def per_core(self) -> float:
        return self.requests / self.cpu_s if self.cpu_s > 0 else float("nan")


def measure(cmd: list[str], *, port: int, seconds: float, env: dict[str, str] | None = None,
            scrape_port: int | None = None) -> Measured:
    """Start a generator, wait for its traffic plus a warm-up, measure ``seconds``, stop it."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    ps = psutil.Process(proc.pid)
    scraper = Scraper(scrape_port) if scrape_port else None
    if scraper:
        scraper.start()
    try:
        start = nginx_requests(port)
        deadline = time.monotonic() + 30
        while nginx_requests(port) < start + 100:  # its load has begun
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"generator produced no load: {' '.join(cmd[:6])}...: {proc.stderr.read().decode()[-800:]}")
            time.sleep(0.1)
        time.sleep(WARMUP_S)
        n0, c0, w0 = nginx_requests(port), tree_cpu(ps), time.monotonic()
        time.sleep(seconds)
        n1, c1, w1 = nginx_requests(port), tree_cpu(ps), time.monotonic()
        if proc.poll() is not None:
            raise RuntimeError(f"generator ended before the measured window closed: {' '.join(cmd[:6])}")
        return Measured(requests=n1 - n0 - 1, wall_s=w1 - w0, cpu_s=c1 - c0)
    finally:
        if scraper:
            scraper.stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def locust_cmd(locustfile: Path, *, host: str, users: int, run_s: float, cpus: str, processes: int = 0) -> list[str]:
    cmd = ["taskset", "-c", cpus, PY, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
           "-u", str(users), "-r", str(users * 10), "-t", f"{run_s:.0f}s", "--host", host, "--stop-timeout", "2",
           "--loglevel", "ERROR", "--exit-code-on-error", "0"]
    if processes:
        port = free_port()
        cmd += ["--processes", str(processes), "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
                "--master-host", "127.0.0.1", "--master-port", str(port)]
    return cmd


def peakload_env(tmp: Path, *, seconds: float, pool: int, tag: str) -> tuple[dict[str, str], int]:
    profile = tmp / f"bench-{tag}.yaml"
    profile.write_text(PROFILE.format(seconds=int(seconds), pool=pool, slo=REPO / "profiles" / "slo.yaml"))
    metrics = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEAKLOAD_")}
    env.update(PEAKLOAD_PROFILE=str(profile), PEAKLOAD_RUN_ID=f"bench-{tag}", PEAKLOAD_METRICS_PORT=str(metrics),
               PEAKLOAD_RESULTS_DIR=str(tmp / f"results-{tag}"), PEAKLOAD_SNAPSHOT_INTERVAL="2", PYTHONPATH=str(REPO))
    return env, metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help=f"rounds (max {MAX_ROUNDS})")
    parser.add_argument("--seconds", type=int, default=6, help=f"measured seconds per generator (max {MAX_SECONDS})")
    parser.add_argument("--connections", type=int, default=32, help="connections / users / pool size")
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1 vs 2 workers part")
    args = parser.parse_args(argv)
    rounds, seconds, conns = min(max(args.rounds, 1), MAX_ROUNDS), min(max(args.seconds, 2), MAX_SECONDS), args.connections
    if not shutil.which("wrk"):
        raise SystemExit("wrk not installed: apt-get install -y --no-install-recommends wrk")
    run_s = seconds + WARMUP_S + 8
    results: dict[str, list[Measured]] = {"wrk": [], "locust": [], "peakload": []}
    with tempfile.TemporaryDirectory(prefix="peakload-genbench-") as tmpdir:
        tmp = Path(tmpdir)
        nginx, port = start_nginx(tmp)
        host = f"http://127.0.0.1:{port}"
        print(f"target: nginx return 200 on 127.0.0.1:{port} (CPU 0); generators on CPU 1; {conns} connections; "
              f"{rounds} rounds x {seconds} s measured; load on the machine: {os.getloadavg()[0]:.1f}")
        try:
            for r in range(rounds):
                order = ["wrk", "locust", "peakload"] if r % 2 == 0 else ["peakload", "locust", "wrk"]
                line = []
                for name in order:
                    if name == "wrk":
                        m = measure(["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{run_s:.0f}s", host + "/"],
                                    port=port, seconds=seconds)
                    elif name == "locust":
                        m = measure(locust_cmd(REPO / "bench" / "generator_bare_locustfile.py", host=host, users=conns,
                                               run_s=run_s, cpus="1"), port=port, seconds=seconds)
                    else:
                        env, mport = peakload_env(tmp, seconds=run_s, pool=conns, tag=f"r{r}")
                        m = measure(locust_cmd(REPO / "locustfile.py", host=host, users=1, run_s=run_s, cpus="1"),
                                    port=port, seconds=seconds, env=env, scrape_port=mport)
                    results[name].append(m)
                    line.append(f"{name} {m.per_core:7.0f}/core ({m.rps:7.0f} rps, {m.cpu_s / m.wall_s:4.2f} cores)")
                ratio = results["peakload"][-1].per_core / results["locust"][-1].per_core
                print(f"round {r + 1}: " + " | ".join(line) + f" | peakload/locust {ratio:.3f}")
            med = {k: statistics.median(m.per_core for m in v) for k, v in results.items()}
            med_rps = {k: statistics.median(m.rps for m in v) for k, v in results.items()}
            ratios = [p.per_core / b.per_core for p, b in zip(results["peakload"], results["locust"])]
            print(f"median requests per generator CPU-second (rps/core): wrk {med['wrk']:.0f}, bare Locust "
                  f"{med['locust']:.0f}, peakload {med['peakload']:.0f}")
            print(f"median rps on CPU 1: wrk {med_rps['wrk']:.0f}, bare Locust {med_rps['locust']:.0f}, peakload {med_rps['peakload']:.0f}")
            ratio = statistics.median(ratios)
            print(f"ratio peakload / bare Locust (per core): {ratio:.3f} (goal >= {GOAL}); wrk / peakload: "
                  f"{med['wrk'] / med['peakload']:.1f}x")
            if not args.no_scaling:
                scaled = {}
                for workers in (1, 2):
                    env, mport = peakload_env(tmp, seconds=run_s, pool=conns * workers, tag=f"w{workers}")
                    scaled[workers] = measure(locust_cmd(REPO / "locustfile.py", host=host, users=1, run_s=run_s,
                                                         cpus="0,1", processes=workers),
                                              port=port, seconds=seconds, env=env, scrape_port=mport)
                    m = scaled[workers]
                    print(f"peakload, {workers} worker process(es) + master, CPUs 0-1 (shared with nginx): "
                          f"{m.rps:7.0f} rps, {m.per_core:7.0f}/core, {m.cpu_s / m.wall_s:4.2f} cores used")
                print(f"scaling 1 -> 2 workers: rps x{scaled[2].rps / scaled[1].rps:.2f}, "
                      f"per-core efficiency x{scaled[2].per_core / scaled[1].per_core:.2f}")
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
    met = ratio >= GOAL
    print(f"goal {'met' if met else 'NOT met'}")
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
