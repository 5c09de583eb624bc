"""Real hosts, simulated: a Locust master and two workers in separate network namespaces joined by veth pairs.

The master/worker protocol (ZeroMQ over TCP) and the load cross a real network
stack: the master and the target listen on the hub namespace's veth address,
each worker runs in a namespace of its own, with its own address and its own
host name, and reaches them through its veth pair. Each worker is
``locust --worker --master-host`` with the ``PEAKLOAD_*`` environment; the
master is started both supported ways (docs/kubernetes.md, "Real hosts"):
``peakload run --expect-workers 2 --master-bind HOST:PORT``, and plain
``locust --master --expect-workers 2`` (as ``deploy/k8s/master-entrypoint.sh``
does) followed by ``peakload gate``. The target counts ``GET /`` by the peer
address, so each worker's requests as the target saw them are known.

- happy path (``peakload run``): the merged count equals the target's count
  exactly, each worker sent its half of the schedule, the run passes;
- a worker SIGKILLed mid-run: the master notices (Locust marks it missing), the
  gate says the run is invalid (exit 3) in one line naming the worker, and the
  numbers are exact where they can be: everything the survivor sent is counted,
  everything the lost worker pushed before it died is counted once, and what it
  never pushed is only its last, un-pushed interval.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.command import REPO, peakload
from tests.fleet.netns import Fleet, netns_available
from tests.openmodel.harness import write_profile

pytestmark = pytest.mark.load  # real Locust loads, inside network namespaces the test creates

PY = sys.executable
RATE, SECONDS = 20.0, 10.0  # 200 arrivals, 100 per worker (constant arrivals split evenly)
INTERVAL = 1.0  # snapshot/push interval (s): the most a lost worker can take with it is about one of these
MASTER_PORT = 5557  # inside the hub namespace: nothing else listens there
SLACK_S = 1.0  # a request the target received this long before a push boundary had its answer before the push
WORKERS = ("pl-w1", "pl-w2")  # host names: Locust calls a worker "<hostname>_<hex>"
GATE = "thresholds:\n  business: [dropped_ratio < 1%]\n"  # judged: passes only when no arrival was dropped


def setup_module() -> None:
    why = netns_available()
    if why is not None:
        pytest.fail(f"network namespaces are needed for the fleet test: {why}")  # never a silent skip


@dataclass
class FleetRun:
    run_dir: Path
    master_rc: int
    gate: subprocess.CompletedProcess[str]
    target: dict[str, Any]  # the target's /stats, read before it stopped
    killed_at: float | None
    peers: dict[str, str]  # worker host name -> its address

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "summary.json").read_text())

    def end_line(self) -> dict[str, Any]:
        lines = [json.loads(x) for x in (self.run_dir / "snapshots.jsonl").read_text().splitlines() if x.strip()]
        (end,) = [x for x in lines if x.get("kind") == "end"]
        return end

    def events(self) -> list[dict[str, Any]]:
        path = self.run_dir / "events.jsonl"
        return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []

    def received(self, worker: str) -> list[float]:
        """Receive times of ``GET /`` the target saw from ``worker``'s address."""
        return self.target["peers"].get(self.peers[worker], [])


@pytest.fixture
def fleet() -> Iterator[Fleet]:
    with Fleet.create(hosts=len(WORKERS)) as f:
        yield f


def _wait_for(path: Path, proc: subprocess.Popen, *, what: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().strip()):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout:g} s")
        time.sleep(0.05)
    return path.read_text().strip()


def _first_load_line(snapshots: Path, master: subprocess.Popen, *, after: float, timeout: float) -> None:
    """Wait until the master has written an interval with requests that ends at or after ``after`` (epoch s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and master.poll() is None:
        if snapshots.exists():
            for raw in snapshots.read_text().splitlines():
                try:
                    obj = json.loads(raw)
                except ValueError:
                    continue
                if "kind" not in obj and obj.get("requests") and obj["t_end"] >= after:
                    return
        time.sleep(0.1)
    raise RuntimeError("the master wrote no interval with requests in time")


def _run(fleet: Fleet, tmp: Path, *, kill: str | None = None, via_peakload_run: bool = False) -> FleetRun:
    """Target + master in the hub, one worker per host namespace; SIGKILL worker ``kill`` 4 s into the arrivals.

    The master is plain ``locust --master`` (then ``peakload gate``), or ``peakload run --expect-workers``."""
    profile = write_profile(tmp / "fleet.yaml", rate=RATE, seconds=SECONDS, pool=20, extra=GATE)
    run_dir = tmp / "results" / "fleet-run"
    logs = tmp / "logs"
    logs.mkdir(parents=True)
    env = {
        **os.environ,
        "PEAKLOAD_PROFILE": str(profile),
        "PEAKLOAD_RUN_ID": "fleet-run",
        "PEAKLOAD_SNAPSHOT_INTERVAL": f"{INTERVAL:g}",
    }
    target_proc = fleet.popen(
        fleet.hub,
        [PY, "-m", "tests.fleet.target", "--host", fleet.hub_ip, "--port-file", str(tmp / "target.url"), "--service-ms", "5:20"],
        log=logs / "target.log",
        cwd=REPO,
        env=env,
    )
    url = _wait_for(tmp / "target.url", target_proc, what="the target")
    locust = [PY, "-m", "locust", "-f", str(REPO / "locustfile.py")]
    master_cmd = [
        *locust,
        "--master",
        "--headless",
        "--expect-workers",
        str(len(WORKERS)),
        "--expect-workers-max-wait",
        "60",
        "--master-bind-host",
        fleet.hub_ip,
        "--master-bind-port",
        str(MASTER_PORT),
        "--host",
        url,
        "--only-summary",
        "--loglevel",
        "INFO",
        "--logfile",
        str(logs / "master-locust.log"),
        "--stop-timeout",
        "10",
        "--exit-code-on-error",
        "0",
    ]
    master_env = {**env, "PEAKLOAD_RESULTS_DIR": str(run_dir)}
    if via_peakload_run:  # the same master, started by peakload run (pre-flight, reports, verdict as exit status)
        master_cmd = [PY, "-m", "peakload", "run", "--profile", str(profile), "--target", url, "--allow-target", fleet.hub_ip]
        master_cmd += ["--expect-workers", str(len(WORKERS)), "--master-bind", f"{fleet.hub_ip}:{MASTER_PORT}"]
        master_cmd += ["--results", str(run_dir.parent), "--quiet"]
        master_env = env  # PEAKLOAD_RUN_ID: the run id the master and its workers share
    master = fleet.popen(fleet.hub, master_cmd, log=logs / "master.log", cwd=REPO, env=master_env)
    workers = {}
    for i, name in enumerate(WORKERS):
        workers[name] = fleet.popen(
            fleet.hosts[i],
            [*locust, "--worker", "--master-host", fleet.hub_ip, "--master-port", str(MASTER_PORT), "--loglevel", "WARNING"],
            hostname=name,
            log=logs / f"{name}.log",
            cwd=REPO,
            env={**env, "PEAKLOAD_RESULTS_DIR": "none"},
        )
    killed_at = None
    if kill is not None:
        events = run_dir / "events.jsonl"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (events.exists() and "arrivals start" in events.read_text()):
            if master.poll() is not None:
                break
            time.sleep(0.1)
        (start,) = [json.loads(x) for x in events.read_text().splitlines() if "arrivals start" in x]
        _first_load_line(run_dir / "snapshots.jsonl", master, after=start["t"] + 4, timeout=30)
        workers[kill].kill()  # SIGKILL: no last report, no goodbye; the master only stops hearing from it
        killed_at = time.time()
        workers[kill].wait(timeout=10)
    try:
        master_rc = master.wait(timeout=SECONDS + 120)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the master did not stop; see {logs}") from None
    for proc in workers.values():
        proc.wait(timeout=30)  # the master tells its workers to quit
    stats = fleet.run(
        fleet.hub, [PY, "-c", f"import urllib.request; print(urllib.request.urlopen('{url}/stats', timeout=10).read().decode())"]
    )
    assert stats.returncode == 0, stats.stderr
    gate = peakload("gate", str(run_dir), timeout=120)
    return FleetRun(
        run_dir=run_dir,
        master_rc=master_rc,
        gate=gate,
        target=json.loads(stats.stdout),
        killed_at=killed_at,
        peers={name: fleet.host_ip(i) for i, name in enumerate(WORKERS)},
    )


def test_a_fleet_across_namespaces_counts_every_request_once(fleet: Fleet, tmp_path: Path) -> None:
    run = _run(fleet, tmp_path, via_peakload_run=True)
    assert run.master_rc == 0, (tmp_path / "logs" / "master.log").read_text()[-2000:]  # peakload run's verdict: passed
    assert run.gate.returncode == 0, run.gate.stdout + run.gate.stderr
    summary = run.summary
    merged = summary["total"]["requests"]
    served = run.target["requests"]["GET /"]
    per_worker = {w: len(run.received(w)) for w in WORKERS}
    print(f"happy path: merged {merged}, target {served}, per worker {per_worker}, {summary['duration_s']} s")
    assert merged == served == RATE * SECONDS  # every arrival of the schedule, counted once on each side
    # both halves crossed their own veth pair: each worker's address sent exactly its slot of the schedule
    assert per_worker == {w: RATE * SECONDS / len(WORKERS) for w in WORKERS}
    assert summary["arrivals"]["scheduled"] == RATE * SECONDS and summary["arrivals"]["dropped"] == 0
    assert json.loads((run.run_dir / "run.json").read_text())["launched_by"] == "peakload run"
    assert "lost_workers" not in run.end_line()
    assert not [e for e in run.events() if e.get("name") == "worker lost"]


def test_a_worker_killed_mid_run_is_reported_its_pushed_intervals_kept_and_the_run_invalid(fleet: Fleet, tmp_path: Path) -> None:
    lost, survivor = WORKERS
    run = _run(fleet, tmp_path, kill=lost)
    assert run.killed_at is not None

    # the verdict: invalid, exit 3, one line naming the lost worker
    assert run.gate.returncode == 3, run.gate.stdout + run.gate.stderr
    verdict = [line for line in run.gate.stdout.splitlines() if line.startswith("run ")]
    assert len(verdict) == 1 and "INVALID (exit 3)" in verdict[0] and f"worker {lost}_" in verdict[0], run.gate.stdout
    assert f"worker {survivor}_" not in run.gate.stdout
    summary = run.summary
    assert (summary["status"], summary["exit_code"], summary["decided_by"]) == ("invalid", 3, "run-invalid")
    assert [p for p in summary["problems"] if f"worker {lost}_" in p and "lost" in p and "into the test" in p]

    # the record: one lost worker in the end line, the same in events.jsonl (a marker on the report's charts)
    (entry,) = run.end_line()["lost_workers"]
    assert entry["worker"].startswith(f"{lost}_")
    (event,) = [e for e in run.events() if e.get("name") == "worker lost"]
    assert entry["worker"] in event["detail"] and event["kind"] == "worker"
    assert entry["last_heard"] <= run.killed_at + 0.5  # the master heard nothing from it after the kill
    assert entry["noticed"] > run.killed_at  # and noticed only afterwards (missed heartbeats)
    assert entry["worker"] in (run.run_dir / "report.html").read_text()

    # the numbers
    merged = summary["total"]["requests"]
    kept = entry["requests_kept"]
    from_survivor, from_lost = run.received(survivor), run.received(lost)
    served = run.target["requests"]["GET /"]
    boundary = entry["kept_until"]  # the end of its last push (epoch s)
    print(
        f"killed: merged {merged} = survivor {len(from_survivor)} + kept {kept} of the lost worker's {len(from_lost)} "
        f"(target {served}); lost at {entry['at_s']} s, its pushes kept up to {entry['kept_s']} s, noticed "
        f"{entry['noticed'] - run.killed_at:.1f} s after the kill; {summary['duration_s']} s"
    )
    assert served == len(from_survivor) + len(from_lost)  # no other peer
    # the survivor went on with exactly its own slot: its whole half, no more (the lost share is not re-sent)
    assert len(from_survivor) == RATE * SECONDS / len(WORKERS)
    # nothing dropped, nothing counted twice: every survivor request plus what the lost worker had pushed
    assert merged == len(from_survivor) + kept
    assert 0 < kept <= len(from_lost)  # it had pushed intervals before it died; never more than it sent
    # what was not kept is only its last, un-pushed interval: every request the target had from it more than
    # SLACK_S before its last push boundary is in the kept count, and nothing it sent after that boundary
    assert boundary <= run.killed_at
    assert sum(t < boundary - SLACK_S for t in from_lost) <= kept <= sum(t < boundary + SLACK_S for t in from_lost)

    # as a shard of a fleet: peakload merge says the merged run is incomplete, naming the shard and the worker
    merged_run = peakload("merge", str(run.run_dir), "--out", str(tmp_path / "merged"), timeout=120)
    assert merged_run.returncode == 3, merged_run.stdout + merged_run.stderr
    assert [x for x in merged_run.stdout.splitlines() if "problem: shard" in x and entry["worker"] in x], merged_run.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--expect-workers", "2"], "--master-bind HOST:PORT"),
        (["--master-bind", "10.0.0.1:5557"], "--expect-workers N"),
        (["--expect-workers", "2", "--master-bind", "master.example:5557"], "HOST an IP address"),
        (["--expect-workers", "2", "--master-bind", "10.0.0.1:70000"], "port 1..65535"),
        (["--expect-workers", "2", "--master-bind", "10.0.0.1:5557", "--workers", "2"], "exclude each other"),
        (["--expect-workers", "0", "--master-bind", "10.0.0.1:5557"], "--expect-workers"),
    ],
)
def test_remote_worker_flags_are_refused_in_one_line_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    profile = write_profile(tmp_path / "p.yaml", rate=RATE, seconds=SECONDS, pool=20)
    res = peakload("run", "--profile", str(profile), "--target", "http://127.0.0.1:9", "--results", str(tmp_path / "r"), *args)
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()
