"""Shared by the measurement-truth tests and ``bench/calibration.py``: the calibration target, open and closed runs.

Usage::

    with calibration_target(workdir=tmp) as target:
        run = run_open(target=target.url, profile=write_profile(tmp / "p.yaml", rate=200, seconds=20, pool=400),
                       results=tmp / "results")
        closed = run_closed(target=target.url, users=100, rate_per_user=2, seconds=20, out=tmp / "closed")
        print(run.percentiles_ms, closed.percentiles_ms, target.stats()["requests"])
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storefront.calibration import truth_percentiles

__all__ = [
    "ROOT",
    "Scenario",
    "Target",
    "OpenRun",
    "ClosedRun",
    "calibration_target",
    "write_profile",
    "run_open",
    "run_closed",
    "server_rate",
    "stalled_share",
]

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """The calibration set-up: target latency model and the open-model load."""

    service_ms: tuple[float, float] = (100.0, 500.0)
    stall: float = 1.0
    period: float = 10.0
    rate: float = 200.0
    seconds: float = 20.0  # a whole number of periods: the share of stalled arrivals is then exact
    pool: int = 400

    def truth(self) -> dict[float, float]:
        """Exact intended-start percentiles (seconds) of the target for open arrivals."""
        return truth_percentiles(
            service_min=self.service_ms[0] / 1000,
            service_max=self.service_ms[1] / 1000,
            stall=self.stall,
            period=self.period,
            percentiles=(50, 95, 99),
        )


class Target:
    """A running calibration target (child process)."""

    def __init__(self, url: str, proc: subprocess.Popen) -> None:
        self.url = url
        self.proc = proc

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as resp:
            return json.loads(resp.read())


@contextmanager
def calibration_target(
    *, workdir: Path, scenario: Scenario = Scenario(), cpu: int | None = None, first_screen: bool = False
) -> Iterator[Target]:
    """Start ``python -m storefront calibrate`` on a free loopback port; stop it afterwards.

    ``first_screen``: the same latency model on the shopper's ``GET /api/home``
    instead of ``GET /`` (:mod:`tests.openmodel.shopper_target`).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "calibration.url"
    port_file.unlink(missing_ok=True)
    model = [
        "--port-file",
        str(port_file),
        "--service-ms",
        f"{scenario.service_ms[0]:g}:{scenario.service_ms[1]:g}",
        "--stall",
        f"{scenario.stall:g}",
        "--period",
        f"{scenario.period:g}",
    ]
    if first_screen:
        cmd = [PY, "-m", "tests.openmodel.shopper_target", *model]
    else:
        cmd = [PY, "-m", "storefront", "calibrate", "--port", "0", *model, "--exit-with-parent"]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    log = open(workdir / "calibration.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None:
                raise RuntimeError(f"calibration target exited with {proc.returncode}: {(workdir / 'calibration.log').read_text()[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("calibration target did not start within 30 s")
            time.sleep(0.05)
        yield Target(port_file.read_text().strip(), proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()


def write_profile(
    path: Path, *, rate: float, seconds: float, pool: int | None, journey: str = "single_request", kind: str = "constant", extra: str = ""
) -> Path:
    """An open-model profile (no SLO spec) for the calibration target."""
    pool_line = f"  pool: {pool}\n" if pool is not None else ""
    path.write_text(
        "version: peakload/v1\n"
        f"name: calibration-{kind}\n"
        "slo: null\n"
        "arrivals:\n"
        f"  kind: {kind}\n"
        f"  stages: [{{duration: {seconds:g}s, rate: {rate:g}}}]\n"
        f"  journey: {journey}\n"
        "  path: /\n"
        f"{pool_line}{extra}"
    )
    return path


@dataclass
class OpenRun:
    proc: subprocess.CompletedProcess
    run_dir: Path
    summary: dict[str, Any]

    @property
    def percentiles_ms(self) -> dict[float, float]:
        """Reported (intended-start) p50/p95/p99 of ``GET /`` from summary.json."""
        return self.route_percentiles_ms("GET /")

    def route_percentiles_ms(self, key: str) -> dict[float, float]:
        """Reported p50/p95/p99 of request ``key`` (``"GET /api/home"``) from summary.json."""
        row = self.summary["requests"][key]
        return {50: row["p50_ms"], 95: row["p95_ms"], 99: row["p99_ms"]}

    def service_percentiles_ms(self) -> dict[float, float]:
        """p50/p95/p99 of service time (from the snapshots' ``service_hdr``)."""
        from exporters.histogram import decode_hdr, new_hdr

        hist = new_hdr()
        for line in (self.run_dir / "snapshots.jsonl").read_text().splitlines():
            obj = json.loads(line)
            for row in obj.get("requests") or []:
                if row.get("service_hdr"):
                    hist.add(decode_hdr(row["service_hdr"]))
        return {p: hist.get_value_at_percentile(p) / 1000 for p in (50, 95, 99)}


def run_open(*, target: str, profile: Path, results: Path, workers: int = 0, timeout: float = 180, cpu: str | None = None) -> OpenRun:
    """``peakload run`` (the real CLI, a child process) of an open-model profile against ``target``."""
    cmd = [PY, "-m", "peakload", "run", "--profile", str(profile), "--target", target, "--results", str(results), "--quiet"]
    if workers:
        cmd += ["--workers", str(workers)]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    before = set(results.iterdir()) if results.exists() else set()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    new = sorted(set(results.iterdir()) - before) if results.exists() else []
    if len(new) != 1 or not (new[0] / "summary.json").exists():
        raise RuntimeError(f"peakload run wrote no results (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return OpenRun(proc, new[0], json.loads((new[0] / "summary.json").read_text()))


@dataclass
class ClosedRun:
    requests: int
    rps: float
    percentiles_ms: dict[float, float]


def run_closed(
    *, target: str, users: int, rate_per_user: float, seconds: float, out: Path, timeout: float = 120, cpu: str | None = None
) -> ClosedRun:
    """Plain Locust, ``constant_throughput(rate_per_user)`` × ``users`` (the closed model) against ``target``."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [
        PY,
        "-m",
        "locust",
        "-f",
        str(ROOT / "tests" / "openmodel" / "closed_locustfile.py"),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds:g}s",
        "--host",
        target,
        "--csv",
        str(out / "closed"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "10",
        "--exit-code-on-error",
        "0",
    ]
    if cpu is not None:
        cmd = ["taskset", "-c", cpu, *cmd]
    env = {**os.environ, "CLOSED_RATE_PER_USER": f"{rate_per_user:g}", "PEAKLOAD_RESULTS_DIR": "none"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)
    rows = list(csv.DictReader(open(out / "closed_stats.csv")))  # noqa: SIM115
    agg = next((r for r in rows if r["Name"] == "Aggregated"), None)
    if agg is None:
        raise RuntimeError(f"locust wrote no stats (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return ClosedRun(
        requests=int(agg["Request Count"]), rps=float(agg["Requests/s"]), percentiles_ms={p: float(agg[f"{p}%"]) for p in (50, 95, 99)}
    )


def server_rate(stats: dict[str, Any], route: str = "GET /") -> float:
    """Achieved arrival rate as the target saw it: receptions over the span from first to last."""
    r = stats["routes"][route]
    span = r["last"] - r["first"]
    return (r["count"] - 1) / span if span > 0 else 0.0


def stalled_share(stats: dict[str, Any], route: str = "GET /") -> float:
    """Share of requests the target received while stalled (open arrivals: stall/period; a closed model sends fewer)."""
    r = stats["routes"][route]
    return r["stalled"] / r["count"] if r["count"] else 0.0
