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

The figure compared is *requests per generator CPU-second* — rps per core,
robust against other load on the machine. wrk runs alone (requests counted by
nginx's ``stub_status``, CPU by psutil). Bare Locust and peakload run *at the
same time on the same core* over the same wall-clock window
(``bench/generator_window.py`` samples each one's request count and CPU
time), so whatever else the shared machine does slows both alike; launch
order alternates per round. Then peakload with 1 and 2 Locust worker
processes (master + ``--processes``; CPUs 0-1, shared with nginx; counted by
nginx) shows how it scales.

With ``--shopper``, it also measures what a full shopper visit costs the
generator: the embedded storefront on CPU 0, peakload's open-model shopper
journeys (``FastHttpSession``, JSON body checks, think times, intended-start
bookkeeping) on CPU 1 at 15 and at 45 visits/s; the marginal requests per
generator CPU-second between the two (fixed costs of an idle generator cancel
out). docs/capacity.md uses these numbers.

Prints per round and medians: rps/core of each, and the ratio peakload / bare
Locust (goal >= 1.0). Exit 0 when the goal is met, 2 when not.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import signal
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

from peakload.app.runner import distributed_args
from peakload.core.net import free_port

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
GOAL = 1.0
MAX_SECONDS = 10
MAX_ROUNDS = 5
WARMUP_S = 3.0  # after the first requests reach nginx
PAIR_WARMUP_S = 7.0  # start-up of two Locust processes on one core, spawning, the schedule's aligned start
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
{locations}
    }}
}}
"""
SHOPPER_PROFILE = """\
version: peakload/v1
name: bench-shopper
slo: {slo}
target: {{users: 1000}}
arrivals:
  kind: constant
  stages: [{{duration: {seconds}s, rate: {rate}}}]
  journey: shopper
  pool: 300
journey:
  think_time: {{min: 0.1, max: 0.4}}
  session_actions: {{min: 2, max: 5}}
  ratios: {{search: 0.3, view_to_cart: 0.5, cart_edit: 0.2, cart_to_checkout: 0.7, checkout_to_pay: 0.9, coupon: 0.2}}
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


def nginx_requests(port: int) -> int:
    """Requests nginx has handled so far (stub_status; this poll included)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx_status", timeout=5) as resp:
        text = resp.read().decode()
    return int(re.search(r"\s(\d+)\s+(\d+)\s+(\d+)\s*\nReading", text).group(3))


STATIC_OK = '        location / { return 200 "ok"; }'


def start_nginx(tmp: Path, *, locations: str = STATIC_OK) -> tuple[subprocess.Popen, int]:
    """Debian nginx on CPU 0 with its own config/pid/logs under ``tmp``, answering ``locations`` (nginx syntax)."""
    if not shutil.which("nginx"):
        raise SystemExit("nginx not installed: apt-get install -y --no-install-recommends nginx wrk")
    port = free_port()
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(tmp=tmp, port=port, locations=locations))
    proc = subprocess.Popen(
        ["taskset", "-c", "0", "nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
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


def measure(cmd: list[str], *, port: int, seconds: float, env: dict[str, str] | None = None, scrape_port: int | None = None) -> Measured:
    """Start a generator, wait for its traffic plus a warm-up, measure ``seconds``, stop it."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
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


def locust_cmd(
    locustfile: Path, *, host: str, users: int, run_s: float, cpus: str, processes: int = 0, spawn_rate: float | None = None
) -> list[str]:
    """A headless Locust command pinned to ``cpus``: ``users`` spawned at ``spawn_rate`` per second (default: all in 0.1 s)."""
    cmd = [
        "taskset",
        "-c",
        cpus,
        PY,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        f"{spawn_rate:g}" if spawn_rate else str(users * 10),
        "-t",
        f"{run_s:.0f}s",
        "--host",
        host,
        "--stop-timeout",
        "2",
        "--loglevel",
        "ERROR",
        "--exit-code-on-error",
        "0",
    ]
    return cmd + distributed_args(processes)


def peakload_env(tmp: Path, *, seconds: float, pool: int, tag: str) -> tuple[dict[str, str], int]:
    profile = tmp / f"bench-{tag}.yaml"
    profile.write_text(PROFILE.format(seconds=int(seconds), pool=pool, slo=REPO / "profiles" / "slo.yaml"))
    return run_env(profile, tmp, tag=tag)


def run_env(profile: Path, tmp: Path, *, tag: str, drop: tuple[str, ...] = ("PEAKLOAD_",)) -> tuple[dict[str, str], int]:
    """The environment of an instrumented Locust process on ``profile`` (results under ``tmp``) and its metrics port."""
    metrics = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        PEAKLOAD_PROFILE=str(profile),
        PEAKLOAD_RUN_ID=f"bench-{tag}",
        PEAKLOAD_METRICS_PORT=str(metrics),
        PEAKLOAD_RESULTS_DIR=str(tmp / f"results-{tag}"),
        PEAKLOAD_SNAPSHOT_INTERVAL="2",
        PYTHONPATH=str(REPO),
    )
    return env, metrics


def run_pair(tmp: Path, *, host: str, conns: int, seconds: float, tag: str, peakload_first: bool) -> tuple[Measured, Measured]:
    """Bare Locust and peakload together on CPU 1, measured over the same window; returns (bare, peakload)."""
    t0 = time.time() + PAIR_WARMUP_S
    t1 = t0 + seconds
    run_s = math.ceil(t1 - time.time()) + 2
    window = REPO / "bench" / "generator_window.py"
    procs = {}
    order = ["peakload", "locust"] if peakload_first else ["locust", "peakload"]
    for name in order:
        out = tmp / f"window-{name}-{tag}.json"
        out.unlink(missing_ok=True)
        if name == "locust":
            env = {k: v for k, v in os.environ.items() if not k.startswith("PEAKLOAD_")}
            cmd = locust_cmd(
                Path(f"{REPO / 'bench' / 'generator_bare_locustfile.py'},{window}"), host=host, users=conns, run_s=run_s, cpus="1"
            )
        else:
            env, mport = peakload_env(tmp, seconds=run_s, pool=conns, tag=tag)
            cmd = locust_cmd(Path(f"{REPO / 'locustfile.py'},{window}"), host=host, users=1, run_s=run_s, cpus="1")
        env.update(BENCH_T0=repr(t0), BENCH_T1=repr(t1), BENCH_OUT=str(out), PYTHONPATH=str(REPO))
        procs[name] = (
            subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True),
            out,
        )
    scraper = Scraper(mport)
    scraper.start()
    try:
        got = {}
        for name, (proc, out) in procs.items():
            try:
                _, err = proc.communicate(timeout=run_s + 60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                _, err = proc.communicate()
            if not out.exists():
                raise RuntimeError(f"{name}: no measurement (exit {proc.returncode}): {err.decode()[-800:]}")
            data = json.loads(out.read_text())
            if "error" in data:
                raise RuntimeError(f"{name}: {data['error']} (machine too busy?)")
            got[name] = Measured(requests=data["requests"], wall_s=data["wall_s"], cpu_s=data["cpu_s"])
    finally:
        scraper.stop.set()
    return got["locust"], got["peakload"]


def shopper_cost(tmp: Path, *, seconds: float, rate: float) -> tuple[Measured, int]:
    """Requests per generator CPU-second of shopper visits against the real storefront (CPU 0); generator on CPU 1."""
    url_file = tmp / "storefront.url"
    store = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            PY,
            "-m",
            "storefront",
            "serve",
            "--port",
            "0",
            "--port-file",
            str(url_file),
            "--db",
            f"sqlite:///{tmp / 'shop.sqlite'}",
            "--users",
            "1000",
            "--gateway-latency-ms",
            "10",
            "--gateway-failure-rate",
            "0",
            "--exit-with-parent",
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (url_file.exists() and url_file.read_text().strip()):
            if store.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("storefront did not start")
            time.sleep(0.1)  # poll until it announces its URL
        host = url_file.read_text().strip()
        t0 = time.time() + PAIR_WARMUP_S
        t1 = t0 + seconds
        run_s = math.ceil(t1 - time.time()) + 2
        profile = tmp / "bench-shopper.yaml"
        profile.write_text(SHOPPER_PROFILE.format(seconds=run_s, rate=rate, slo=REPO / "profiles" / "slo.yaml"))
        out = tmp / f"window-shopper-{rate:g}.json"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PEAKLOAD_")}
        env.update(
            PEAKLOAD_PROFILE=str(profile),
            PEAKLOAD_RUN_ID="bench-shopper",
            PEAKLOAD_RESULTS_DIR=str(tmp / "results-shopper"),
            BENCH_T0=repr(t0),
            BENCH_T1=repr(t1),
            BENCH_OUT=str(out),
            PYTHONPATH=str(REPO),
        )
        cmd = locust_cmd(
            Path(f"{REPO / 'locustfile.py'},{REPO / 'bench' / 'generator_window.py'}"), host=host, users=1, run_s=run_s, cpus="1"
        )
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, timeout=run_s + 60)
        if not out.exists():
            raise RuntimeError(f"shopper run: no measurement (exit {proc.returncode}): {proc.stderr.decode()[-800:]}")
        data = json.loads(out.read_text())
        if "error" in data:
            raise RuntimeError(f"shopper run: {data['error']}")
        visits = rate * seconds
        return Measured(requests=data["requests"], wall_s=data["wall_s"], cpu_s=data["cpu_s"]), int(visits)
    finally:
        store.terminate()
        store.wait(timeout=20)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help=f"rounds (max {MAX_ROUNDS})")
    parser.add_argument("--seconds", type=int, default=6, help=f"measured seconds per generator (max {MAX_SECONDS})")
    parser.add_argument("--connections", type=int, default=32, help="connections / users / pool size")
    parser.add_argument("--no-scaling", action="store_true", help="skip the 1 vs 2 workers part")
    parser.add_argument("--shopper", action="store_true", help="also measure a shopper visit's cost against the storefront")
    args = parser.parse_args(argv)
    rounds, seconds, conns = min(max(args.rounds, 1), MAX_ROUNDS), min(max(args.seconds, 2), MAX_SECONDS), args.connections
    if not shutil.which("wrk"):
        raise SystemExit("wrk not installed: apt-get install -y --no-install-recommends wrk")
    results: dict[str, list[Measured]] = {"wrk": [], "locust": [], "peakload": []}
    with tempfile.TemporaryDirectory(prefix="peakload-genbench-") as tmpdir:
        tmp = Path(tmpdir)
        nginx, port = start_nginx(tmp)
        host = f"http://127.0.0.1:{port}"
        print(
            f"target: nginx return 200 on 127.0.0.1:{port} (CPU 0); generators on CPU 1; {conns} connections; "
            f"{rounds} rounds x {seconds} s measured; load on the machine: {os.getloadavg()[0]:.1f}"
        )
        try:
            for r in range(rounds):
                wrk = measure(
                    ["taskset", "-c", "1", "wrk", "-t1", f"-c{conns}", f"-d{seconds + WARMUP_S + 8:.0f}s", host + "/"],
                    port=port,
                    seconds=seconds,
                )
                bare, peak = run_pair(tmp, host=host, conns=conns, seconds=seconds, tag=f"r{r}", peakload_first=r % 2 == 1)
                for name, m in (("wrk", wrk), ("locust", bare), ("peakload", peak)):
                    results[name].append(m)
                print(
                    f"round {r + 1}: wrk {wrk.per_core:7.0f}/core ({wrk.rps:6.0f} rps alone) | side by side on CPU 1: "
                    f"bare Locust {bare.per_core:6.0f}/core ({bare.rps:5.0f} rps), peakload {peak.per_core:6.0f}/core "
                    f"({peak.rps:5.0f} rps) | peakload/locust {peak.per_core / bare.per_core:.3f}"
                )
            med = {k: statistics.median(m.per_core for m in v) for k, v in results.items()}
            ratios = [p.per_core / b.per_core for p, b in zip(results["peakload"], results["locust"])]
            ratio = statistics.median(ratios)
            print(
                f"median rps per core (requests per generator CPU-second): wrk {med['wrk']:.0f}, bare Locust "
                f"{med['locust']:.0f}, peakload {med['peakload']:.0f}"
            )
            print(
                f"ratio peakload / bare Locust (per core, median of rounds {', '.join(f'{x:.3f}' for x in ratios)}): "
                f"{ratio:.3f} (goal >= {GOAL}); wrk / peakload: {med['wrk'] / med['peakload']:.1f}x"
            )
            if not args.no_scaling:
                run_s = seconds + WARMUP_S + 8
                scaled = {}
                for workers in (1, 2):
                    env, mport = peakload_env(tmp, seconds=run_s, pool=conns * workers, tag=f"w{workers}")
                    scaled[workers] = measure(
                        locust_cmd(REPO / "locustfile.py", host=host, users=1, run_s=run_s, cpus="0,1", processes=workers),
                        port=port,
                        seconds=seconds,
                        env=env,
                        scrape_port=mport,
                    )
                    m = scaled[workers]
                    print(
                        f"peakload, {workers} worker process(es) + master, CPUs 0-1 (shared with nginx): "
                        f"{m.rps:7.0f} rps, {m.per_core:7.0f}/core, {m.cpu_s / m.wall_s:4.2f} cores used"
                    )
                print(
                    f"scaling 1 -> 2 workers: rps x{scaled[2].rps / scaled[1].rps:.2f}, "
                    f"per-core efficiency x{scaled[2].per_core / scaled[1].per_core:.2f}"
                )
        finally:
            nginx.terminate()
            nginx.wait(timeout=10)
        if args.shopper:
            # two rates: the difference is the marginal cost of a request (a generator's fixed costs cancel out)
            lo, lo_visits = shopper_cost(tmp, seconds=seconds, rate=15)
            hi, hi_visits = shopper_cost(tmp, seconds=seconds, rate=45)
            marginal = (hi.requests - lo.requests) / (hi.cpu_s - lo.cpu_s)
            print(
                f"shopper visits (FastHttpSession + JSON checks + think times) against the storefront: "
                f"{lo.rps:.0f} rps at {lo.cpu_s / lo.wall_s:.2f} of a core, {hi.rps:.0f} rps at {hi.cpu_s / hi.wall_s:.2f}; "
                f"marginal {marginal:.0f} requests per generator CPU-second; {hi.requests / hi_visits:.1f} requests per visit"
            )
    met = ratio >= GOAL
    print(f"goal {'met' if met else 'NOT met'}")
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
