"""Simulated Locust workers for bench/master.py: N workers in one gevent process, Locust's real protocol.

Each simulated worker is one zmq DEALER socket (identity = its client id, as
``locust.rpc.zmqrpc.Client`` sets it; one shared zmq context instead of one per
worker, so 1,000 workers are not 1,000 zmq I/O threads) that speaks what Locust
2.47's ``WorkerRunner`` speaks, with ``locust.rpc.protocol.Message``:
``client_ready`` (Locust's version) → ``ack``; ``spawn`` → ``spawning`` +
``spawning_complete``; a ``heartbeat`` every second (state, CPU, memory); a
``stats`` report every 3 s with Locust's own serialized ``RequestStats`` (20
entries, ``stats_total``, ``errors``, user counts); peakload's ``peakload_delta``
push at every wall-clock multiple of the interval, aligned across all workers as
:class:`scenarios.bridge.WorkerBridge` does it; ``stop`` → ``client_stopped`` +
``client_ready``; ``quit`` → a final ``stats`` report carrying a last
``peakload`` remainder (as ``on_report_to_master`` adds it) and ``quit``.

The payloads are real: peakload's :class:`exporters.stats.StatsStore` fed 5,500
requests per 2 s interval (2,750 requests per generator CPU-second, the
shopper figure of docs/capacity.md) over 20 request series with lognormal
latencies, a slow tail, 1 % failures with reasons, service-time histograms and
business/arrival counters, then ``drain_delta()`` — the bytes a worker sends.
Filling a store per worker per interval would cost this process more than the
master it measures, so ``--templates`` such deltas are built once and worker w
sends template ``(w + k) % templates`` at boundary k; the master cannot tell.
Locust's own stats report is built the same way from a real ``RequestStats``
(its per-second timestamps moved to the sending second).

Writes ``--out`` (JSON) at exit: what was sent (requests, failures, per series,
business, arrivals, pushes and finals), push lateness, this process's CPU.
Prints ``READY <epoch>`` once every worker has been told to spawn. Not meant to
be run by hand; bench/master.py starts it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from gevent import monkey

monkey.patch_all()

import gevent  # noqa: E402
import zmq.green as zmq  # noqa: E402
from gevent.event import Event  # noqa: E402
from locust import __version__ as LOCUST_VERSION  # noqa: E402
from locust.rpc.protocol import Message  # noqa: E402
from locust.stats import RequestStats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from scenarios.bridge import DELTA_MESSAGE, next_boundary  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from master_payload import REQ_PER_S, SERIES, build_templates, edges_of  # noqa: E402


def build_locust_reports(*, count: int, seconds: float, seed: int, rps: float = REQ_PER_S) -> list[dict[str, Any]]:
    """``count`` Locust worker reports (``serialize_stats`` etc.) of ``seconds`` at ``rps`` requests/s."""
    rng = random.Random(seed)
    weights = [s[4] for s in SERIES]
    out = []
    for _ in range(count):
        stats = RequestStats()
        for name, method, _step, median, _w in rng.choices(SERIES, weights=weights, k=int(rps * seconds)):
            ms = median * 1000.0 * math.exp(rng.gauss(0.0, 0.6))
            stats.log_request(method, name, ms, rng.randint(200, 4000))
            if rng.random() < 0.01:
                stats.log_error(method, name, "HTTPError('503 Server Error')")
        out.append({"stats": stats.serialize_stats(), "stats_total": stats.total.get_stripped_report(), "errors": stats.serialize_errors()})
    return out


def _restamp(report: dict[str, Any], now: float) -> dict[str, Any]:
    """A template report as if its requests happened in the last seconds: per-second keys moved to ``now``."""

    def entry(e: dict[str, Any]) -> dict[str, Any]:
        e = dict(e)
        last = int(e.get("last_request_timestamp") or now)
        shift = int(now) - last
        e["num_reqs_per_sec"] = {int(k) + shift: v for k, v in e["num_reqs_per_sec"].items()}
        e["num_fail_per_sec"] = {int(k) + shift: v for k, v in e["num_fail_per_sec"].items()}
        e["last_request_timestamp"] = (e.get("last_request_timestamp") or now) + shift
        e["start_time"] = (e.get("start_time") or now) + shift
        return e

    return {"stats": [entry(e) for e in report["stats"]], "stats_total": entry(report["stats_total"]), "errors": report["errors"]}


class Sent:
    """What every simulated worker sent, summed (the exactness reference)."""

    def __init__(self) -> None:
        self.requests = 0
        self.failures = 0
        self.series: Counter[str] = Counter()
        self.business: Counter[str] = Counter()
        self.arrivals: Counter[str] = Counter()
        self.pushes = 0
        self.finals = 0
        self.push_late: list[float] = []  # send time - boundary, s
        self.push_bytes = 0

    def add(self, delta: dict[str, Any]) -> None:
        for row in delta["requests"]:
            self.requests += row["count"]
            self.failures += row["failures"]
            self.series[f"{row['method']} {row['name']} {row.get('step', '')}"] += row["count"]
        self.business.update(delta["business"])
        self.arrivals.update(delta["arrivals"])


class SimWorker:
    """One simulated worker: its socket, its greenlets, its state."""

    def __init__(self, index: int, *, ctx: Any, host: str, port: int, bench: Bench) -> None:
        self.index = index
        self.id = f"simworker{index:04d}_{uuid.uuid4().hex}"
        self.bench = bench
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
        self.sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 30)
        self.sock.setsockopt(zmq.IDENTITY, self.id.encode())
        self.sock.connect(f"tcp://{host}:{port}")
        self.state = "ready"
        self.acked = Event()
        self.spawned = Event()
        self.done = Event()
        self.users: dict[str, int] = {}
        self.pusher: gevent.Greenlet | None = None
        self.k = index  # template rotation

    def send(self, msg_type: str, data: Any) -> int:
        blob = Message(msg_type, data, self.id).serialize()
        self.sock.send(blob, zmq.NOBLOCK)
        return len(blob)

    def next_delta(self) -> dict[str, Any]:
        self.k += 1
        return self.bench.templates[self.k % len(self.bench.templates)]

    def listen(self) -> None:
        while not self.done.is_set():
            msg = Message.unserialize(self.sock.recv())
            if msg.type == "ack":
                self.acked.set()
            elif msg.type == "spawn":
                self.send("spawning", None)
                self.users = dict(msg.data["user_classes_count"])
                if self.state != "running":
                    self.state = "running"
                    self.pusher = gevent.spawn(self.push_loop)
                self.send("spawning_complete", {"user_classes_count": self.users, "user_count": sum(self.users.values())})
                self.spawned.set()
            elif msg.type == "stop":
                self.stop_pushing()
                self.state = "ready"
                self.send("client_stopped", None)
                self.send("client_ready", LOCUST_VERSION)
            elif msg.type == "quit":
                self.stop_pushing()
                delta = self.next_delta()  # the remainder a real worker's final report carries
                self.bench.sent.add(delta)
                self.bench.sent.finals += 1
                self.send("stats", {**self.locust_report(), "peakload": delta})
                self.send("quit", None)
                self.done.set()
            # heartbeat replies and peakload_arrivals need no answer

    def stop_pushing(self) -> None:
        if self.pusher is not None:
            self.pusher.kill(block=True)
            self.pusher = None

    def push_loop(self) -> None:
        interval = self.bench.interval
        while True:
            boundary = next_boundary(time.time(), interval)
            gevent.sleep(max(0.0, boundary - time.time()))
            delta = self.next_delta()
            n = self.send(DELTA_MESSAGE, {"delta": delta, "t_end": boundary})
            sent = self.bench.sent
            sent.add(delta)
            sent.pushes += 1
            sent.push_bytes += n
            sent.push_late.append(time.time() - boundary)

    def heartbeat_loop(self) -> None:
        gevent.sleep(random.random())  # real workers start at different instants
        while not self.done.is_set():
            state = "running" if self.state == "running" else "ready"
            self.send("heartbeat", {"state": state, "current_cpu_usage": 40.0, "current_memory_usage": 150_000_000})
            gevent.sleep(1.0)

    def locust_report(self) -> dict[str, Any]:
        rep = self.bench.locust_reports[self.k % len(self.bench.locust_reports)]
        data = _restamp(rep, time.time()) if self.state == "running" else {"stats": [], "stats_total": rep["stats_total"], "errors": {}}
        return {**data, "user_classes_count": self.users, "user_count": sum(self.users.values())}

    def stats_loop(self) -> None:
        gevent.sleep(random.uniform(0.0, 3.0))
        while not self.done.is_set():
            self.send("stats", self.locust_report())
            gevent.sleep(3.0)


class Bench:
    def __init__(self, *, interval: float, templates: list[dict[str, Any]], locust_reports: list[dict[str, Any]]) -> None:
        self.interval = interval
        self.templates = templates
        self.locust_reports = locust_reports
        self.sent = Sent()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workers", type=int, required=True)
    ap.add_argument("--interval", type=float, default=2.0)
    ap.add_argument("--profile", required=True)
    ap.add_argument("--templates", type=int, default=8)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--worker-rps", type=float, default=REQ_PER_S)
    args = ap.parse_args()
    edges = edges_of(Path(args.profile))
    t = time.perf_counter()
    bench = Bench(
        interval=args.interval,
        templates=build_templates(edges, count=args.templates, interval=args.interval, seed=13, rps=args.worker_rps),
        locust_reports=build_locust_reports(count=4, seconds=3.0, seed=17, rps=args.worker_rps),
    )
    print(f"TEMPLATES {time.perf_counter() - t:.1f}s", flush=True)
    ctx = zmq.Context()
    workers = [SimWorker(i, ctx=ctx, host=args.host, port=args.port, bench=bench) for i in range(args.workers)]
    for w in workers:
        gevent.spawn(w.listen)
        w.send("client_ready", LOCUST_VERSION)
    deadline = time.time() + args.max_seconds
    for w in workers:
        if not w.acked.wait(timeout=max(0.1, deadline - time.time())):
            print("ERROR the master did not ack every worker", flush=True)
            return 1
        gevent.spawn(w.heartbeat_loop)
        gevent.spawn(w.stats_loop)
    print(f"ACKED {time.time():.3f}", flush=True)
    for w in workers:
        if not w.spawned.wait(timeout=max(0.1, deadline - time.time())):
            print("ERROR not every worker was told to spawn", flush=True)
            return 1
    print(f"READY {time.time():.3f}", flush=True)
    for w in workers:
        w.done.wait(timeout=max(0.1, deadline - time.time()))
    gevent.sleep(0.5)  # let the last sends leave the sockets
    s = bench.sent
    cpu = os.times()
    result = {
        "workers": args.workers,
        "quit": sum(w.done.is_set() for w in workers),
        "requests": s.requests,
        "failures": s.failures,
        "series": dict(s.series),
        "business": dict(s.business),
        "arrivals": dict(s.arrivals),
        "pushes": s.pushes,
        "finals": s.finals,
        "push_bytes": s.push_bytes,
        "push_late_s": sorted(s.push_late),
        "cpu_s": cpu.user + cpu.system,
        "template_requests": [sum(r["count"] for r in d["requests"]) for d in bench.templates],
    }
    Path(args.out).write_text(json.dumps(result))
    ctx.destroy(linger=1000)
    return 0


if __name__ == "__main__":
    sys.exit(main())
