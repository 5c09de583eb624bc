"""The exporting side: a local runner's or a master's store, served on /metrics and streamed to snapshots.

:class:`Aggregator` is what a ``LocalRunner`` gets: it records its own requests
(through :class:`scenarios.bridge.Instrumentation`), serves /metrics and writes
one snapshot line per wall-clock interval. :class:`MasterAggregator` is what a
``MasterRunner`` gets: it records nothing of its own but merges the workers'
deltas (custom message ``peakload_delta`` and the ``peakload`` key of their
reports), so its /metrics and snapshots are the exact sum over workers (counts
and buckets added, HdrHistograms added — never averaged). It writes its lines
half an interval after each push boundary so every line holds one push per
worker (Locust's own 3 s report cadence would make 2 s lines alternate between
empty and double).

/metrics is served by gevent's ``pywsgi.WSGIServer`` running prometheus-client's
WSGI app: Locust's hub is gevent already, each scrape runs in a greenlet, the
server stops cleanly, and nothing relies on monkey-patched ``threading`` as
``start_http_server`` would. It stays up until Locust's ``quit`` event, so a
last scrape after the final merge still works; the snapshot end line is written
then too (reason ``completed``, ``interrupted`` on SIGTERM/Ctrl-C, or what
``set_end_reason`` set).

Usage: ``install(environment)`` from :mod:`scenarios.instrumentation` (the
``events.init`` listener does it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gevent
from gevent.pywsgi import WSGIServer
from locust import __version__ as locust_version
from locust.env import Environment
from locust.runners import STATE_MISSING, STATE_RUNNING, STATE_SPAWNING
from prometheus_client.registry import CollectorRegistry

from exporters.histogram import HDR_HIGHEST_US, HDR_LOWEST_US, HDR_SIGNIFICANT_FIGURES
from exporters.prometheus import PeakloadCollector, metrics_app
from exporters.settings import ExporterSettings
from peakload.core import ConfigError
from peakload.core.records import EVENTS, LOST_WORKERS, lost_worker_lines
from peakload.core.runenv import RunEnv
from peakload.core.snapshots import SNAPSHOT_FILE, SnapshotWriter
from scenarios.bridge import DELTA_MESSAGE, Instrumentation, logger, next_boundary

__all__ = ["Aggregator", "MasterAggregator"]

_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


class Aggregator(Instrumentation):
    """A local runner: records, serves /metrics, writes the snapshot stream and its end line."""

    role = "local"
    write_lag = 0.0  # fraction of an interval a line waits after its boundary

    def __init__(self, environment: Environment, *, settings: ExporterSettings) -> None:
        super().__init__(environment, settings=settings)
        self.registry: CollectorRegistry | None = None
        self.server: WSGIServer | None = None
        self.writer: SnapshotWriter | None = None
        self.end_reason: str | None = None
        self.merge_errors = 0
        self._t_last: float | None = None

    # ------------------------------------------------------------ wiring

    def start(self) -> None:
        """Attach listeners; start /metrics and the snapshot file when configured."""
        super().start()
        ev = self.environment.events
        ev.test_start.add_listener(self.on_test_start)
        ev.test_stop.add_listener(self.on_test_stop)
        ev.quitting.add_listener(self.on_quitting)
        ev.quit.add_listener(self.on_quit)
        gevent.signal_handler(signal.SIGTERM, self._on_sigterm)
        if self.settings.metrics_port > 0:
            self._start_server()
        if self.settings.results_dir is not None:
            self.writer = SnapshotWriter(self.settings.results_dir / SNAPSHOT_FILE, header=self._header())

    def _on_sigterm(self) -> None:
        """Stop a shape-driven headless run gracefully on SIGTERM.

        Locust 2.47 installs its own SIGTERM handler only after a headless
        shape run has finished (main.py joins the shape greenlet first), so
        without this a SIGTERM kills the process outright: no end line, no
        final interval. Killing the shape greenlet takes Locust's normal
        "shape completed" path: users stop within --stop-timeout, quit fires.
        """
        runner = self.environment.runner
        shape = getattr(runner, "shape_greenlet", None)
        if shape is not None and not shape.dead:
            logger.info("peakload: SIGTERM: stopping the run gracefully")
            if self.end_reason is None:
                self.end_reason = "interrupted"
            shape.kill(block=False)

    def _start_server(self) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(PeakloadCollector(self.store, run_id=self.settings.run_id, profile=self.settings.profile_name))
        inner = metrics_app(self.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Any:
            self._refresh_gauges()  # users/workers as of this scrape
            return inner(environ, start_response)

        port = self.settings.metrics_port
        host = RunEnv.from_environ(os.environ).metrics_host or "127.0.0.1"  # loopback unless asked (a pod)
        self.server = WSGIServer((host, port), app, log=None, error_log=logger)
        try:
            self.server.start()
        except OSError as exc:
            self.server = None
            raise ConfigError(f"PEAKLOAD_METRICS_PORT={port}: cannot listen on {host}:{port}: {exc.strerror}") from None
        logger.info("peakload: serving /metrics on http://%s:%d/metrics", host, port)

    def _header(self) -> dict[str, Any]:
        return {
            "run_id": self.settings.run_id,
            "profile": self.settings.profile_name,
            "role": self.role,
            "created": time.time(),
            "interval_s": self.settings.snapshot_interval,
            "latency_basis": self.settings.latency_basis,
            "bucket_edges": list(self.settings.edges),
            "hdr": {"unit": "us", "lowest": HDR_LOWEST_US, "highest": HDR_HIGHEST_US, "digits": HDR_SIGNIFICANT_FIGURES},
            "host": self.environment.host,
            "locust": locust_version,
        }

    # ------------------------------------------------------------ lifecycle

    def on_test_start(self, environment: Environment, **_kw: Any) -> None:
        now = time.time()
        if self._t_last is not None:  # a previous test in this process (web UI): its leftovers first
            self._write_interval(t_end=now, only_if_data=True)
        self._t_last = now
        if self.writer is not None:
            self._start_loop(self._snapshot_loop)

    def on_test_stop(self, environment: Environment, **_kw: Any) -> None:
        self._stop_loop()
        self._write_interval(t_end=time.time())  # the last, partial interval

    def on_quitting(self, environment: Environment, **_kw: Any) -> None:
        """Locust is shutting down: note why, and flush what arrived since test_stop.

        The master merges the workers' last reports after its own test_stop;
        on SIGTERM/Ctrl-C users may still run here. The end line waits for
        ``quit`` so requests finished during Locust's own shutdown still count.
        """
        if self.end_reason is None:
            state = getattr(environment.runner, "state", None)
            self.end_reason = "interrupted" if state in (STATE_RUNNING, STATE_SPAWNING) else "completed"
        self._stop_loop()
        self._write_interval(t_end=time.time(), only_if_data=True)

    def on_quit(self, exit_code: int = 0, **_kw: Any) -> None:
        """Last event of the process: final flush, end line, stop /metrics."""
        self.close()

    def close(self, *, reason: str | None = None) -> None:
        """Write what is left and the end line, stop serving /metrics (idempotent).

        Locust calls this through the ``quit`` event; call it yourself when you
        drive a runner from code and never fire ``quit``.
        """
        self._stop_loop()
        if self.writer is not None and not self.writer.closed:
            self._write_interval(t_end=time.time(), only_if_data=True)
            final = reason or self.end_reason or "completed"
            self.writer.close(
                reason=final,
                merge_errors=self.merge_errors,
                cpu_warning=self._cpu_warning(),
                user_errors=self._user_errors(),
                **self._end_extra(),
            )
        if self.server is not None:
            self.server.stop(timeout=1)
            self.server = None

    # ------------------------------------------------------------ snapshots

    def _snapshot_loop(self) -> None:
        """One line per wall-clock interval ``[(k-1)I, kI]``, written at ``kI + write_lag·I``."""
        interval = self.settings.snapshot_interval
        lag = interval * self.write_lag
        while True:
            boundary = next_boundary(max(time.time() - lag, self._t_last or 0.0), interval)
            gevent.sleep(max(0.0, boundary + lag - time.time()))
            self._write_interval(t_end=boundary)

    def _write_interval(self, *, t_end: float, only_if_data: bool = False) -> None:
        if self.writer is None or self.writer.closed:
            return
        delta = self.store.drain_delta()
        if only_if_data and not _has_data(delta):
            return
        t_start = self._t_last if self._t_last is not None else t_end
        t_end = max(t_end, t_start)
        self._t_last = t_end
        self._refresh_gauges()
        self.writer.write_interval(
            delta,
            t_start=t_start,
            t_end=t_end,
            users=self.store.users,
            workers=self.store.workers,
            target_rate=self.store.target_rate,
            cpu_warning=self._cpu_warning(),
        )

    def _refresh_gauges(self) -> None:
        self.store.users = self.environment.runner.user_count  # type: ignore[union-attr]
        self.store.workers = self._worker_count()

    def _worker_count(self) -> int:
        return 1

    def _end_extra(self) -> dict[str, Any]:
        return {}

    def _user_errors(self) -> list[dict[str, Any]]:
        """Exceptions raised in user code (tasks, on_start), as Locust counted them on every node: the top 10.

        Each is ``{"message": "AttributeError(...) at locustfile.py:43 in sign_in", "count": n}``; a run whose
        journey crashes would otherwise only show fewer requests.
        """
        rows = getattr(self.environment.runner, "exceptions", None) or {}
        out = []
        for row in rows.values():
            frames = _FRAME.findall(str(row.get("traceback", "")))
            where = f" at {Path(frames[-1][0]).name}:{frames[-1][1]} in {frames[-1][2]}" if frames else ""
            out.append({"message": (" ".join(str(row.get("msg", "")).split()) + where)[:300], "count": int(row.get("count", 0))})
        out.sort(key=lambda r: (-r["count"], r["message"]))
        return out[:10]

    def _cpu_warning(self) -> bool:
        runner = self.environment.runner
        return bool(runner.cpu_warning_emitted or getattr(runner, "worker_cpu_warning_emitted", False))  # type: ignore[union-attr]


@dataclass
class _WorkerBook:
    """What the master has of one worker: the requests of its merged pushes, the end of its last one, when last heard."""

    requests: int = 0
    kept_until: float | None = None  # t_end of its last aligned push
    last_heard: float | None = None  # its last heartbeat (or push)
    lost: bool = False


class MasterAggregator(Aggregator):
    """A master: merges the workers' deltas instead of recording users of its own.

    Workers push at ``kI``; the master writes at ``kI + I/2``, so each line holds
    exactly one push per worker unless a push is more than half an interval
    late (then it lands in the next line — sums stay exact).

    A worker that stops sending heartbeats mid-run (killed, its host or network
    gone) is marked ``missing`` by Locust after ~4 s and is not replaced: its
    slot of the open-model schedule is not sent from then on, and what it
    measured since its last push never arrives. The intervals it pushed stay in
    the snapshots (each push is merged once, as it arrives); the master writes a
    ``worker lost`` event to ``events.jsonl`` and lists the worker in the end
    line's ``lost_workers``, which makes the run invalid (reports.summary).
    """

    role = "master"
    write_lag = 0.5
    watch_s = 1.0  # how often the worker list is checked for missing workers (Locust's heartbeat interval)

    def __init__(self, environment: Environment, *, settings: ExporterSettings) -> None:
        super().__init__(environment, settings=settings)
        self.books: dict[str, _WorkerBook] = {}
        self.lost: list[dict[str, Any]] = []  # the end line's lost_workers entries
        self._t_test: float | None = None  # when the test started (seconds in the lost-worker lines count from here)
        self._watch: gevent.Greenlet | None = None

    def start(self) -> None:
        super().start()
        self.environment.events.worker_report.add_listener(self.on_worker_report)
        self.environment.events.heartbeat_sent.add_listener(self.on_heartbeat)
        self.environment.runner.register_message(DELTA_MESSAGE, self.on_delta_message)  # type: ignore[union-attr]

    def on_test_start(self, environment: Environment, **_kw: Any) -> None:
        super().on_test_start(environment)
        if self._t_test is None:
            self._t_test = time.time()
        if self._watch is None or self._watch.dead:
            self._watch = gevent.spawn(self._watch_loop)

    def on_test_stop(self, environment: Environment, **_kw: Any) -> None:
        self._stop_loop()  # the workers' last numbers arrive after test_stop; on_quitting writes them

    def on_quitting(self, environment: Environment, **_kw: Any) -> None:
        self._check_workers()
        if self._watch is not None:
            self._watch.kill(block=True)
            self._watch = None
        super().on_quitting(environment)

    def on_heartbeat(self, client_id: str, timestamp: float, **_kw: Any) -> None:
        self._book(client_id).last_heard = timestamp

    def on_delta_message(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        """A worker's aligned push."""
        data = msg.data or {}
        if self._merge(msg.node_id, data.get("delta")):
            book = self._book(msg.node_id)
            t_end = data.get("t_end")
            book.kept_until = float(t_end) if isinstance(t_end, (int, float)) else time.time()
            book.last_heard = max(book.last_heard or 0.0, time.time())

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_kw: Any) -> None:
        """A worker's report (its final remainder)."""
        self._merge(client_id, data.get("peakload"))

    def _book(self, client_id: str) -> _WorkerBook:
        book = self.books.get(client_id)
        if book is None:
            book = self.books[client_id] = _WorkerBook()
        return book

    def _merge(self, client_id: str, delta: Any) -> bool:
        if delta is None:
            return False
        try:
            self.store.merge_delta(delta)
        except (ValueError, KeyError, TypeError) as exc:
            # a worker with another profile/version: refuse its numbers loudly rather than mix them
            self.merge_errors += 1
            logger.error("peakload: dropped metrics from worker %s: %s", client_id, exc)
            return False
        self._book(client_id).requests += sum(int(row.get("count", 0)) for row in delta.get("requests", ()))
        return True

    # ------------------------------------------------------------ lost workers

    def _watch_loop(self) -> None:
        while True:
            gevent.sleep(self.watch_s)
            self._check_workers()

    def _check_workers(self) -> None:
        """Record every worker Locust has marked missing (once each)."""
        runner = self.environment.runner
        for cid, node in list(getattr(runner, "clients", {}).items()):
            if node.state == STATE_MISSING and not self._book(cid).lost:
                self._lost(cid)

    def _lost(self, client_id: str) -> None:
        book = self._book(client_id)
        book.lost = True
        now = time.time()
        t0 = self._t_test if self._t_test is not None else now
        heard = book.last_heard if book.last_heard is not None else now
        index = getattr(self.environment.runner, "worker_indexes", {}).get(client_id)
        entry = {
            "worker": client_id,
            "index": index,
            "at_s": round(heard - t0, 3),
            "kept_s": None if book.kept_until is None else round(book.kept_until - t0, 3),
            "requests_kept": book.requests,
            "kept_until": book.kept_until,
            "last_heard": heard,
            "noticed": now,
        }
        self.lost.append(entry)
        (line,) = lost_worker_lines({LOST_WORKERS: [entry]})
        logger.error("peakload: %s", line)
        folder = self.settings.results_dir
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            with open(folder / EVENTS, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"t": round(heard, 3), "kind": "worker", "name": "worker lost", "detail": line}) + "\n")
                fh.flush()
                os.fsync(fh.fileno())

    def _end_extra(self) -> dict[str, Any]:
        return {LOST_WORKERS: self.lost} if self.lost else {}

    def _worker_count(self) -> int:
        return self.environment.runner.worker_count  # type: ignore[union-attr]


def _has_data(delta: dict[str, Any]) -> bool:
    return bool(delta["requests"]) or any(delta["business"].values()) or any(delta["arrivals"].values())
