"""Master capacity: one real peakload Locust master merging N simulated workers' per-interval deltas.

Usage::

    flock /tmp/peakload-heavy.lock .venv/bin/python bench/master.py           # N = 50, 100, 200, 500; 20 s each (about 5 min)
    flock /tmp/peakload-heavy.lock .venv/bin/python bench/master.py --quick   # N = 100, 500; 10 s each (about 2.5 min)
    .venv/bin/python bench/master.py --workers 500,800 --seconds 30 --interval 2

The master is ``python -m locust --master --headless --expect-workers N`` on the
real ``locustfile.py`` (through bench/master_locustfile.py, which only adds
timers), with the ``PEAKLOAD_*`` variables ``peakload run`` sets
(:class:`peakload.core.runenv.RunEnv`: profile, run id, results folder, 2 s
snapshots, /metrics scraped every 5 s as Prometheus would), bound to
127.0.0.1 and pinned to CPU 0. The profile is an open model (constant
arrivals, one pool user per worker) written to a temporary folder; no HTTP
target is needed because the master sends no requests.

The workers are bench/master_workers.py: one process pinned to CPU 1 that
speaks Locust 2.47's master/worker protocol for all N (hello, spawn, heartbeats
every second, Locust's stats reports every 3 s, peakload's aligned delta push
every interval, stop/quit with a final remainder), with real
``StatsStore.drain_delta()`` payloads: 20 request series, full HdrHistograms of
latency and service time, ``--worker-rps`` × interval requests per push (default
2,750/s: 5,500 per 2 s; ``--worker-rps 8432`` is bench/journey.py's 12,045 per
CPU-second at 70 % busy).

Per N it measures, over a steady window that opens two intervals after every
worker spawned:

* master CPU (user+sys from /proc/<pid>/stat) as % of one core, and per worker;
* merge latency: for each push, the time from its interval end (the boundary
  the worker pushed at) to the master's handler finishing its merge (p50/p99/
  max), and the handler's own duration per push;
* snapshot write delay: how late the master's loop wrote each line against
  ``boundary + I/2`` (a late line means the loop was busy merging);
* exactness over the whole run: requests, failures, per-series counts, HDR
  sample counts, business and arrival counters in the master's
  snapshots.jsonl vs the sum of what the workers sent;
* the master's RSS at the end of the window.

Then, for the sharding arithmetic, the CPU one ``StatsStore.merge_delta`` of
the same payload costs in a plain process (bench/master_payload.py, CPU 0):
what a merge process off Locust's loop would pay per push.

Prints one row per N and whether the goal holds: **500 workers at a 2 s
interval with <= 50 % of one core, exact counts** (and no push merged after its
line was written, i.e. merge latency <= I/2). Exit 0 when met, 2 when not, 1
when a count was not exact or a run failed (a saturated master — one still
merging its backlog 30 s after SIGTERM — is killed and reported with its CPU
and the snapshot lines it managed to write: goal not met, counts n/a). A
master that keeps up takes about window + 15 s per N, a saturated one about a
minute; the default run takes about 5 minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from exporters.histogram import decode_hdr  # noqa: E402
from peakload.core.net import free_port  # noqa: E402
from peakload.core.records import read_snapshots, split_snapshots  # noqa: E402
from peakload.core.runenv import RunEnv  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from master_payload import REQ_PER_S  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LOCUSTFILE = REPO / "bench" / "master_locustfile.py"
DRIVER = REPO / "bench" / "master_workers.py"
PAYLOAD = REPO / "bench" / "master_payload.py"
GOAL_WORKERS, GOAL_CORE, GOAL_INTERVAL = 500, 0.50, 2.0
MAX_SECONDS = 60  # measured seconds per N
MAX_WORKERS = 2000
STOP_WAIT_S = 30  # after SIGTERM; a master still merging a backlog is reported as saturated
TICK = os.sysconf("SC_CLK_TCK")

PROFILE = """\
# bench/master.py: an open model whose numbers the simulated workers make up
version: peakload/v1
name: master-bench
description: bench/master.py master capacity; one pool user per worker.
seed: 7
slo: {slo}
arrivals:
  kind: constant
  stages:
    - {{name: hold, duration: 900s, rate: {rate}}}
  journey: shopper
  pool: {pool}
  max_pool: {pool}
users: {{shopper: 1}}
"""


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []


def cpu_seconds(pid: int) -> float:
    """user+sys CPU seconds of a process (all its threads) from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14, 15)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


class Scraper(threading.Thread):
    """GET /metrics every ``every`` seconds, as Prometheus would scrape a master."""

    def __init__(self, port: int, every: float) -> None:
        super().__init__(daemon=True)
        self.port, self.every, self.ok, self.stop = port, every, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as resp:
                    self.ok += b"peakload_requests_total" in resp.read()
            except OSError:
                pass  # not up yet / already gone


def read_driver(proc: subprocess.Popen, tag: str, timeout: float) -> float:
    """Wait for the driver's ``TAG <epoch>`` line; its epoch."""
    deadline = time.time() + timeout
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"workers driver exited ({proc.poll()}) before {tag}")
        if line.startswith("ERROR"):
            raise RuntimeError(f"workers driver: {line.strip()}")
        if line.startswith(tag + " "):
            return float(line.split()[1].rstrip("s"))
    raise RuntimeError(f"workers driver: no {tag} after {timeout:.0f} s")


def measure(n: int, *, seconds: float, interval: float, worker_rps: float, tmp: Path) -> dict[str, Any]:
    """One master, ``n`` simulated workers; the figures of one table row."""
    run = tmp / f"n{n}"
    results = run / "results"
    results.mkdir(parents=True)
    profile = run / "profile.yaml"
    profile.write_text(PROFILE.format(rate=n, pool=n, slo=REPO / "profiles" / "slo.yaml"))
    port, mport = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PEAKLOAD_")}
    env |= RunEnv(profile_path=str(profile), run_id=f"master-bench-{n}", results_dir=str(results),
                  metrics_port=mport, snapshot_interval=interval, workers=n).to_environ()  # fmt: skip
    env |= {"PYTHONPATH": str(REPO), "BENCH_MASTER_OUT": str(run / "master.json")}
    master_cmd = [
        *pin(0), sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--master", "--headless",
        "--expect-workers", str(n), "--expect-workers-max-wait", "120",
        "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port),
        "--host", "http://127.0.0.1:9", "--only-summary", "--loglevel", "WARNING",
        "--logfile", str(run / "locust.log"), "--exit-code-on-error", "0", "--stop-timeout", "1",
    ]  # fmt: skip
    master = subprocess.Popen(master_cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(run / "master.err", "w"))
    driver_cmd = [*pin(1), sys.executable, str(DRIVER), "--port", str(port), "--workers", str(n), "--worker-rps", str(worker_rps),
                  "--interval", str(interval), "--profile", str(profile), "--out", str(run / "sent.json")]  # fmt: skip
    driver = subprocess.Popen(driver_cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=open(run / "driver.err", "w"), text=True)
    scraper = Scraper(mport, 5.0)
    scraper.start()
    try:
        ready = read_driver(driver, "READY", 150)
        t_a = (int(ready / interval) + 2) * interval + interval * 0.25  # two full intervals after every spawn
        time.sleep(max(0.0, t_a - time.time()))
        c_a, d_a, t_a = cpu_seconds(master.pid), cpu_seconds(driver.pid), time.time()
        time.sleep(seconds)
        c_b, d_b, t_b = cpu_seconds(master.pid), cpu_seconds(driver.pid), time.time()
        rss = rss_mib(master.pid)
        master.send_signal(signal.SIGTERM)  # the graceful stop peakload's runner uses: stop, final reports, quit
        try:
            master.wait(timeout=STOP_WAIT_S)
            driver.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stuck = True
        else:
            stuck = False
    finally:
        scraper.stop.set()
        for p in (master, driver):
            if p.poll() is None:
                p.kill()
                p.wait()
    wall = t_b - t_a
    if stuck:  # a saturated master: its hub never got round to stopping; what it wrote is all there is
        got = merged_counts(results / "snapshots.jsonl")
        return {"n": n, "core": (c_b - c_a) / wall, "driver_core": (d_b - d_a) / wall, "rss_mib": rss, "stuck": True,
                "lines_in_window": sum(1 for t in got["t_ends"] if t_a <= t <= t_b), "expected_lines": round(wall / interval),
                "interval": interval}  # fmt: skip
    sent = json.loads((run / "sent.json").read_text())
    timing = json.loads((run / "master.json").read_text())
    in_window = [p for p in timing["pushes"] if t_a <= p[0] <= t_b]
    lines = [x for x in timing["lines"] if t_a <= x[0] <= t_b]
    got = merged_counts(results / "snapshots.jsonl")
    exact = {
        "requests": got["requests"] == sent["requests"],
        "failures": got["failures"] == sent["failures"],
        "series": got["series"] == Counter(sent["series"]),
        "hdr": got["hdr"] == sent["requests"],
        "business": all(got["business"].get(k, 0) == v for k, v in sent["business"].items()),
        "arrivals": all(got["arrivals"].get(k, 0) == v for k, v in sent["arrivals"].items()),
    }
    return {
        "n": n,
        "core": (c_b - c_a) / wall,
        "driver_core": (d_b - d_a) / wall,
        "rss_mib": rss,
        "pushes": len(in_window),
        "expected_pushes": n * round(wall / interval),
        "lag_p50": pct([p[2] for p in in_window], 0.5),
        "lag_p99": pct([p[2] for p in in_window], 0.99),
        "lag_max": max((p[2] for p in in_window), default=float("nan")),
        "merge_ms": 1000 * sum(p[2] - p[1] for p in in_window) / max(1, len(in_window)),
        "line_late_max": max((x[1] for x in lines), default=float("nan")),
        "line_write_ms": 1000 * max((x[2] for x in lines), default=float("nan")),
        "workers_seen_min": min((x[3] for x in lines), default=0),
        "push_late_p99": pct(sent["push_late_s"], 0.99),
        "push_kib": sent["push_bytes"] / max(1, sent["pushes"]) / 1024,
        "sent": sent,
        "got": got,
        "exact": exact,
        "scrapes": scraper.ok,
        "end": got["end"],
        "interval": interval,
        "stuck": False,
    }


def merged_counts(path: Path) -> dict[str, Any]:
    """What the master wrote: sums over every interval line of its snapshots.jsonl."""
    rows, problems = read_snapshots(path)
    _, intervals, end = split_snapshots(rows)
    out: dict[str, Any] = {"requests": 0, "failures": 0, "hdr": 0, "series": Counter(), "business": Counter(), "arrivals": Counter()}
    out["t_ends"] = [iv["t_end"] for iv in intervals]
    for iv in intervals:
        for r in iv["requests"]:
            out["requests"] += r["count"]
            out["failures"] += r["failures"]
            out["series"][f"{r['method']} {r['name']} {r.get('step', '')}"] += r["count"]
            if r.get("hdr"):
                out["hdr"] += decode_hdr(r["hdr"]).get_total_count()
        out["business"].update(iv.get("business") or {})
        out["arrivals"].update(iv.get("arrivals") or {})
    out["end"] = (end or {}).get("reason")
    out["problems"] = problems
    out["lines"] = len(intervals)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", default="50,100,200,500", help="comma-separated worker counts")
    ap.add_argument("--seconds", type=float, default=20.0, help=f"measured seconds per N (max {MAX_SECONDS})")
    ap.add_argument("--interval", type=float, default=2.0, help="snapshot/push interval, s")
    ap.add_argument("--worker-rps", type=float, default=REQ_PER_S,
                    help=f"requests per second each simulated worker reports (default {REQ_PER_S}: bench/generator.py --shopper per core)")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="N = 100, 500; 10 s each")
    ap.add_argument("--keep", action="store_true", help="keep the runs' folders (logs, snapshots) and print where")
    args = ap.parse_args(argv)
    try:
        counts = [int(x) for x in ("100,500" if args.quick else args.workers).split(",")]
    except ValueError:
        print(f"--workers: expected comma-separated whole numbers, got {args.workers!r}", file=sys.stderr)
        return 2
    if not all(1 <= c <= MAX_WORKERS for c in counts):
        print(f"--workers: expected counts 1..{MAX_WORKERS}, got {args.workers!r}", file=sys.stderr)
        return 2
    seconds = min(max(10.0 if args.quick else args.seconds, 4.0), MAX_SECONDS)
    print(f"master pinned to CPU 0{'' if pin(0) else ' (no taskset: NOT pinned)'}, simulated workers on CPU 1; "
          f"interval {args.interval:g} s, {seconds:g} s measured per N; payload: 20 series, HDR latency+service, "
          f"{args.worker_rps * args.interval:,.0f} requests/worker/interval; Locust stats every 3 s, heartbeats every 1 s")  # fmt: skip
    print(f"{'workers':>7} | {'master core':>11} | {'per worker':>10} | {'merge/push':>10} | {'lag p50/p99/max (s)':>20} | "
          f"{'line late':>9} | {'RSS MiB':>7} | {'pushes':>11} | {'exact':>5} | {'driver core':>11} | push KiB")  # fmt: skip
    rows = []
    tmpdir = tempfile.mkdtemp(prefix="peakload-bench-master-")
    if args.keep:
        print(f"runs kept in {tmpdir}")
    try:
        for n in counts:
            try:
                r = measure(n, seconds=seconds, interval=args.interval, worker_rps=args.worker_rps, tmp=Path(tmpdir))
            except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
                print(f"{n:>7} | run failed: {exc}")
                rows.append(None)
                continue
            rows.append(r)
            if r["stuck"]:
                print(f"{n:>7} | {100 * r['core']:10.1f}% | {100 * r['core'] / n:9.3f}% | SATURATED: {r['lines_in_window']} of "
                      f"{r['expected_lines']} snapshot lines written in the window, master still busy {STOP_WAIT_S} s after "
                      f"SIGTERM (killed; no timings, counts n/a) | RSS {r['rss_mib']:.0f} MiB | driver {100 * r['driver_core']:.1f}%")  # fmt: skip
                continue
            ok = all(r["exact"].values())
            print(
                f"{n:>7} | {100 * r['core']:10.1f}% | {100 * r['core'] / n:9.3f}% | {r['merge_ms']:8.2f}ms | "
                f"{r['lag_p50']:6.3f}/{r['lag_p99']:6.3f}/{r['lag_max']:6.3f} | {r['line_late_max']:8.3f}s | {r['rss_mib']:7.0f} | "
                f"{r['pushes']:>5}/{r['expected_pushes']:<5} | {'yes' if ok else 'NO':>5} | {100 * r['driver_core']:10.1f}% | {r['push_kib']:.1f}"
            )
            s, g = r["sent"], r["got"]
            print(f"        sent {s['requests']:,} requests ({s['pushes']} pushes + {s['finals']} final reports), "
                  f"master merged {g['requests']:,} in {g['lines']} lines, HDR samples {g['hdr']:,}, failures {g['failures']:,}/{s['failures']:,}; "
                  f"end={r['end']}; scrapes {r['scrapes']}; workers pushes late p99 {1000 * r['push_late_p99']:.0f} ms"
                  + ("" if ok else f"; NOT exact: {[k for k, v in r['exact'].items() if not v]}"))  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(tmpdir, ignore_errors=True)
    merge = json.loads(subprocess.run([*pin(0), sys.executable, str(PAYLOAD), "--interval", str(args.interval), "--worker-rps", str(args.worker_rps)],
                                      cwd=REPO, capture_output=True, text=True, check=True).stdout)  # fmt: skip
    ms = merge["ms_per_push"]
    print(f"off the loop: StatsStore.merge_delta alone (plain process, CPU 0): {ms:.2f} ms CPU per push -> "
          f"{GOAL_CORE * 1000 * args.interval / ms:.0f} workers per 50 % of a core at {args.interval:g} s")  # fmt: skip
    good = [r for r in rows if r is not None and not r["stuck"]]
    exact = all(all(r["exact"].values()) for r in good) and None not in rows  # a saturated run has no counts: not met, not inexact
    at_goal = [r for r in rows if r is not None and r["n"] >= GOAL_WORKERS]
    met = (
        args.interval <= GOAL_INTERVAL
        and bool(at_goal)
        and all(
            not r["stuck"] and r["core"] <= GOAL_CORE and r["lag_max"] <= r["interval"] / 2 and all(r["exact"].values()) for r in at_goal
        )
    )
    fits = [r["n"] for r in good if r["core"] <= GOAL_CORE and r["lag_max"] <= r["interval"] / 2]
    where = "" if args.interval == GOAL_INTERVAL else f" (the goal is stated for {GOAL_INTERVAL:g} s; this run used {args.interval:g} s)"
    print(f"goal: {GOAL_WORKERS} workers with <= {100 * GOAL_CORE:.0f} % of one core, merge lag <= I/2, exact counts: "
          f"{'met' if met else 'NOT met'}{where}; largest N within that: {max(fits) if fits else 'n/a'}")  # fmt: skip
    if good:
        per = sorted(r["core"] / r["n"] for r in good if r["n"] >= 100)
        if per:
            print(f"master CPU per worker (N >= 100, median): {100 * per[len(per) // 2]:.3f} % of a core -> "
                  f"{GOAL_CORE / per[len(per) // 2]:.0f} workers per 50 % of a core (linear)")  # fmt: skip
    if not exact:
        return 1
    return 0 if met else 2


if __name__ == "__main__":
    raise SystemExit(main())
