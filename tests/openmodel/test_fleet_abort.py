"""One abort for the fleet: `peakload fleet-gate` judges the shards on one Prometheus and stops them all.

The endpoint tests start a :class:`ControlServer` in this process and speak HTTP
to it on loopback; the live test runs three ``peakload run --shard i/3 --control``
against the calibration target, a real Prometheus (Debian) scraping every
shard's exporter, and the fleet gate, whose abort threshold breaches.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dashboards.prometheus import running_prometheus
from peakload.app.control import ControlServer, check_control
from peakload.app.fleet_gate import live_queries
from peakload.core import UsageError, parse_threshold
from peakload.core.net import free_ports, http_request
from tests.command import peakload
from tests.openmodel.harness import ROOT, Scenario, calibration_target, write_profile

PY = sys.executable
TOKEN = "fleet-token-0123456789abcdef"


def _token_file(tmp_path: Path, text: str = TOKEN + "\n") -> Path:
    path = tmp_path / "fleet.token"
    path.write_text(text)
    return path


def _server(tmp_path: Path) -> ControlServer:
    (port,) = free_ports(1)
    spec = check_control(f"127.0.0.1:{port}", _token_file(tmp_path), allow=[])
    assert spec is not None
    server = ControlServer(spec, run_id="r-1", shard="1/3")
    server.start()
    return server


def _call(url: str, *, token: str | None = TOKEN, body: bytes | None = None, method: str = "GET") -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    status, raw = http_request(url, body, method=method, headers=headers)
    return status, json.loads(raw) if raw.startswith(b"{") else {}


# ---------------------------------------------------------------- the control endpoint


def test_the_endpoint_refuses_a_wrong_or_missing_token_and_a_bad_body(tmp_path):
    server = _server(tmp_path)
    try:
        status, doc = _call(server.url + "/status", token=None)
        assert status == 401 and "Bearer" in doc["error"]
        assert _call(server.url + "/status", token=TOKEN[:-1] + "x")[0] == 401
        assert _call(server.url + "/abort", token="wrong-token-0123456789", body=b'{"reason": "x"}', method="POST")[0] == 401
        for body in (b"not json", b'["reason"]', b'{"reason": 3}', b'{"reason": ""}', b'{"reason": "a\\nb"}'):
            status, doc = _call(server.url + "/abort", body=body, method="POST")
            assert status == 400 and "reason" in doc["error"], body
        assert _call(server.url + "/abort", body=json.dumps({"reason": "x" * 501}).encode(), method="POST")[0] == 400
        assert _call(server.url + "/abort", body=b"{" + b" " * 5000 + b"}", method="POST")[0] == 413
        assert _call(server.url + "/nothing")[0] == 404
        assert server.poll(None) is None  # nothing above asked the run to stop
        status, doc = _call(server.url + "/status")
        assert status == 200 and doc == {"run_id": "r-1", "shard": "1/3", "state": "starting", "aborted": None}
    finally:
        server.stop()


def test_an_abort_reaches_the_runner_once_and_is_refused_after_the_run(tmp_path):
    server = _server(tmp_path)
    try:
        server.running()
        status, doc = _call(server.url + "/abort", body=b'{"reason": "p95 over budget"}', method="POST")
        assert status == 202 and doc["state"] == "aborting"
        assert server.poll(None) == "p95 over budget (from the fleet gate at 127.0.0.1)"
        _call(server.url + "/abort", body=b'{"reason": "second"}', method="POST")
        assert server.poll(None) == "p95 over budget (from the fleet gate at 127.0.0.1)"  # the first reason stays
        server.close("aborted: p95 over budget (from the fleet gate at 127.0.0.1)")
        status, doc = _call(server.url + "/abort", body=b'{"reason": "late"}', method="POST")
        assert status == 409 and doc["state"] == "stopping"
        assert _call(server.url + "/status")[1]["aborted"].startswith("aborted: p95 over budget")
    finally:
        server.stop()
    assert http_request(server.url + "/status", timeout=2)[0] == 0  # gone once stopped


@pytest.mark.parametrize(
    "listen, token_text, needle",
    [
        ("10.1.2.3:9700", TOKEN, "--allow-control 10.1.2.3"),
        ("0.0.0.0:9700", TOKEN, "--allow-control 0.0.0.0"),
        ("127.0.0.1:70000", TOKEN, "port 1..65535"),
        ("127.0.0.1", TOKEN, "HOST:PORT"),
        ("shop.example:9700", TOKEN, "IP address"),
        ("127.0.0.1:9700", "", "is empty"),
        ("127.0.0.1:9700", "short", "at least 16"),
        ("127.0.0.1:9700", "two words but long enough", "without spaces"),
        ("127.0.0.1:9700", "x" * 5000, "at most 4,096"),
    ],
)
def test_bad_control_flags_are_one_line_exit_2(tmp_path, listen, token_text, needle):
    profile = write_profile(tmp_path / "p.yaml", rate=10, seconds=5, pool=10)
    token = _token_file(tmp_path, token_text)
    res = peakload("run", "--profile", str(profile), "--target", "http://127.0.0.1:9", "--results", str(tmp_path / "r"),
                   "--control", listen, "--control-token-file", str(token), timeout=120)  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()


def test_an_address_in_use_is_refused_before_the_run(tmp_path):
    import socket

    profile = write_profile(tmp_path / "p.yaml", rate=10, seconds=5, pool=10)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = peakload("run", "--profile", str(profile), "--target", "http://127.0.0.1:9", "--results", str(tmp_path / "r"),
                       "--control", f"127.0.0.1:{port}", "--control-token-file", str(_token_file(tmp_path)), timeout=120)  # fmt: skip
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and f"--control: cannot listen on 127.0.0.1:{port}" in res.stderr
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def test_a_missing_token_file_or_half_the_flags_are_refused(tmp_path):
    with pytest.raises(UsageError, match="file not found"):
        check_control("127.0.0.1:9700", tmp_path / "absent.token", allow=[])
    with pytest.raises(UsageError, match="--control HOST:PORT too"):
        check_control(None, _token_file(tmp_path), allow=[])
    with pytest.raises(UsageError, match="--control-token-file FILE too"):
        check_control("127.0.0.1:9700", None, allow=[])
    spec = check_control("10.1.2.3:9700", _token_file(tmp_path), allow=["10.1.2.3"])
    assert spec is not None and spec.token == TOKEN and TOKEN not in repr(spec)


def test_the_fleet_gate_refuses_bad_input_in_one_line(tmp_path):
    profile = write_profile(tmp_path / "p.yaml", rate=10, seconds=5, pool=10)
    token = _token_file(tmp_path)
    base = ["fleet-gate", "--profile", str(profile), "--control-token-file", str(token)]
    for args, needle in [
        (["--prometheus", "http://127.0.0.1:9", "--control", "http://10.0.0.5:9700"], "--allow-host 10.0.0.5"),
        (["--prometheus", "http://127.0.0.1:9", "--control", "http://127.0.0.1:9700", "--control", "http://127.0.0.1:9700/"], "twice"),
        (["--prometheus", "http://127.0.0.1:9", "--control", "http://127.0.0.1:9700/abort"], "without a path"),
        (["--prometheus", "http://127.0.0.1:9", "--control", "http://127.0.0.1:9700"], "--prometheus: cannot reach"),
        (["--prometheus", "http://127.0.0.1:9", "--control", "http://127.0.0.1:9700", "--interval", "0s"], "--interval"),
    ]:
        res = peakload(*base, *args, timeout=60)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, (needle, res.stderr)


def test_thresholds_without_a_promql_form_are_listed_not_judged_live():
    ts = [
        parse_threshold("all", "p95 < 300ms", abort=True),
        parse_threshold("GET /api/home", "error_ratio < 1%", abort=True),
        parse_threshold("all", "max < 2s", abort=True),
        parse_threshold("business", "oversold == 0", abort=True),
        parse_threshold("all", "p99 < 1s"),  # not an abort threshold: the gate leaves it to the end of the run
    ]
    judged, not_live = live_queries(ts, match={"job": "fleet"})
    assert [q.threshold.metric for q in judged] == ["p95", "error_ratio"]
    assert judged[0].promql == 'histogram_quantile(0.95, sum by (le) (peakload_request_duration_seconds_bucket{job="fleet"}))'
    assert 'method="GET",name="/api/home"' in judged[1].promql
    assert [(t.metric, "histogram has no max" in why or "reconciliation" in why) for t, why in not_live] == [
        ("max", True),
        ("oversold", True),
    ]


# ---------------------------------------------------------------- the verdict without a breach


def test_nothing_judged_is_not_a_pass(tmp_path):
    """Two endpoints that run and finish, a Prometheus with no peakload series: exit 3, "not judged"."""
    profile = write_profile(tmp_path / "p.yaml", rate=10, seconds=5, pool=10, extra=ABORT_ON_ERRORS)
    servers = [_server(tmp_path) for _ in range(2)]
    try:
        with running_prometheus(tmp_path / "prom", jobs={}, scrape_interval="1s") as prom:
            gate = subprocess.Popen(
                [PY, "-m", "peakload", "fleet-gate", "--profile", str(profile), "--prometheus", prom.url,
                 *[a for s in servers for a in ("--control", s.url)], "--control-token-file", str(tmp_path / "fleet.token"),
                 "--interval", "500ms", "--until", "60s"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            for s in servers:
                s.running()
            wrong = tmp_path / "wrong.token"
            wrong.write_text("another-token-0123456789\n")
            refused = peakload("fleet-gate", "--profile", str(profile), "--prometheus", prom.url, "--control", servers[0].url,
                               "--control-token-file", str(wrong), "--until", "30s", timeout=60)  # fmt: skip
            assert refused.returncode == 2 and "refused the token" in refused.stderr, refused.stdout + refused.stderr
            time.sleep(1.5)  # the gate polls a few times while the shards "run" (it is bounded by --until either way)
            for s in servers:
                s.close(None)
                s.finish()
            out, err = gate.communicate(timeout=60)
    finally:
        for s in servers:
            s.stop()
    assert gate.returncode == 3, out + err
    assert "NOT JUDGED" in out and "not judged: all: error_ratio < 1%: no series matched" in out and "PASS" not in out


# ---------------------------------------------------------------- live: three shards, one gate

RATE, LEAD_S = 20.0, 10.0
ABORT_ON_ERRORS = 'thresholds:\n  all: [{expr: "error_ratio < 1%", abort: true, grace: 2s}]\n'


def _fleet(tmp_path: Path, *, shard_profiles: list[Path], gate_profile: Path) -> tuple[subprocess.CompletedProcess, list[Path], dict]:
    """Three ``peakload run --shard i/3 --control`` against the calibration target, one Prometheus scraping their
    exporters (1 s), and ``peakload fleet-gate``; (the gate's result, the shards' folders, requests the target served by route)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    token = _token_file(tmp_path)
    ports = free_ports(6)
    controls, metrics = ports[:3], ports[3:]
    scenario = Scenario(service_ms=(2.0, 5.0), stall=0.0, period=10.0)
    with calibration_target(workdir=tmp_path / "target", scenario=scenario) as target:
        jobs = {"peakload": [f"127.0.0.1:{p}" for p in metrics]}
        with running_prometheus(tmp_path / "prom", jobs=jobs, scrape_interval="1s") as prom:
            start_at = time.time() + LEAD_S
            shards = []
            for i in range(3):
                cmd = [PY, "-m", "peakload", "run", "--profile", str(shard_profiles[i]), "--target", target.url, "--quiet",
                       "--results", str(tmp_path / f"shard{i}"), "--shard", f"{i}/3", "--start-at", f"{start_at:.3f}",
                       "--metrics-port", str(metrics[i]), "--control", f"127.0.0.1:{controls[i]}",
                       "--control-token-file", str(token)]  # fmt: skip
                shards.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            try:
                gate = subprocess.run(
                    [PY, "-m", "peakload", "fleet-gate", "--profile", str(gate_profile), "--prometheus", prom.url,
                     *[a for p in controls for a in ("--control", f"http://127.0.0.1:{p}")],
                     "--control-token-file", str(token), "--interval", "1s", "--until", "120s"],
                    cwd=ROOT, capture_output=True, text=True, timeout=200,
                )  # fmt: skip
                results = [p.communicate(timeout=120) for p in shards]
            finally:
                for p in shards:
                    if p.poll() is None:
                        p.kill()
                        p.wait()
        served = target.stats()["requests"]
    print(gate.stdout)
    folders = []
    for i, (proc, (_out, err)) in enumerate(zip(shards, results)):
        (folder,) = list((tmp_path / f"shard{i}").iterdir())
        folders.append(folder)
        meta = json.loads((folder / "run.json").read_text())
        summary = json.loads((folder / "summary.json").read_text())
        print(f"shard {i}: exit {proc.returncode}, {summary['arrivals']['scheduled']} arrivals, "
              f"ended {meta['ended_ts'] - start_at:.1f}s after the start; {summary['reason']}")  # fmt: skip
        assert proc.returncode in (0, 1), f"shard {i}: exit {proc.returncode}: {err[-1500:]}"
    return gate, folders, served


@pytest.mark.load
def test_the_fleet_gate_stops_every_shard_on_one_breach(tmp_path):
    # every request fails (the calibration target answers 404 off its one route): error_ratio breaches at once
    seconds = 40.0  # planned: 800 arrivals; the abort comes within a few seconds
    shard_profile = write_profile(
        tmp_path / "shards.yaml", rate=RATE, seconds=seconds, pool=20, extra="thresholds:\n  all: [error_ratio < 1%]\n"
    )
    shard_profile.write_text(shard_profile.read_text().replace("  path: /\n", "  path: /missing\n"))
    gate_profile = tmp_path / "gate.yaml"  # the same profile, its threshold an abort one
    gate_profile.write_text(shard_profile.read_text().replace("[error_ratio < 1%]", '[{expr: "error_ratio < 1%", abort: true, grace: 2s}]'))
    gate, folders, served = _fleet(tmp_path, shard_profiles=[shard_profile] * 3, gate_profile=gate_profile)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert "ABORT: threshold 'all: error_ratio < 1%' breached" in gate.stdout and "observed 100% across the fleet" in gate.stdout
    assert "3/3 shard(s) stopped" in gate.stdout
    planned_share = RATE * seconds / 3
    for folder in folders:
        summary = json.loads((folder / "summary.json").read_text())
        outcome = json.loads((folder / "outcome.json").read_text())
        assert outcome["aborted"].startswith("aborted: threshold 'all: error_ratio < 1%' breached")
        assert outcome["aborted"].endswith("(from the fleet gate at 127.0.0.1)")
        assert summary["status"] == "failed" and summary["exit_code"] == 1 and summary["reason"] == outcome["aborted"]
        assert summary["decided_by"] == "aborted"
        # stopped early: far fewer arrivals than the shard's share of the schedule
        assert 0 < summary["arrivals"]["scheduled"] < planned_share / 2, summary["arrivals"]
    assert served["GET /missing"] == sum(
        json.loads((f / "summary.json").read_text())["requests"]["GET /missing"]["requests"] for f in folders
    )
    merged = peakload("merge", *map(str, folders), "--out", str(tmp_path / "merged"), timeout=120)
    assert merged.returncode == 1, merged.stdout + merged.stderr
    assert re.search(
        r"FAILED \(exit 1\) — shard 0/3 \(.*\): aborted: threshold 'all: error_ratio < 1%'.*from the fleet gate", merged.stdout
    )


@pytest.mark.load
def test_a_shard_that_aborts_itself_stops_the_others_and_a_quiet_fleet_passes(tmp_path):
    """Shard 0's own live gate aborts (p95 < 1 ms against 2-5 ms): the fleet gate passes its reason to shards 1 and 2.
    Then a fleet that breaches nothing: the gate exits 0 once every shard finished, naming what it could not judge."""
    seconds = 40.0
    quiet = write_profile(tmp_path / "quiet.yaml", rate=RATE, seconds=seconds, pool=20, extra=ABORT_ON_ERRORS)
    own = tmp_path / "own.yaml"
    own.write_text(quiet.read_text() + '  "GET /": [{expr: "p95 < 1ms", abort: true}]\n')
    gate, folders, _ = _fleet(tmp_path / "a", shard_profiles=[own, quiet, quiet], gate_profile=quiet)
    assert gate.returncode == 1, gate.stdout + gate.stderr
    assert re.search(r"ABORT: shard 0/3 \(run \S+\) aborted: threshold 'GET /: p95 < 1ms' breached", gate.stdout), gate.stdout
    reasons = [json.loads((f / "summary.json").read_text())["reason"] for f in folders]
    assert reasons[0].startswith("aborted: threshold 'GET /: p95 < 1ms' breached") and "fleet gate" not in reasons[0]
    for r in reasons[1:]:
        assert re.fullmatch(
            r"aborted: shard 0/3 \(run \S+\) aborted: threshold 'GET /: p95 < 1ms'.*\(from the fleet gate at 127\.0\.0\.1\)", r
        ), r
    for f in folders:
        assert json.loads((f / "summary.json").read_text())["arrivals"]["scheduled"] < RATE * seconds / 3 / 2

    short = write_profile(tmp_path / "short.yaml", rate=RATE, seconds=4, pool=20, extra=ABORT_ON_ERRORS)
    gate_profile = tmp_path / "gate.yaml"  # and a threshold on a step the single-request journey never sends
    gate_profile.write_text(short.read_text() + '  "step:checkout": [{expr: "p95 < 2s", abort: true}]\n')
    gate, folders, served = _fleet(tmp_path / "b", shard_profiles=[short] * 3, gate_profile=gate_profile)
    assert gate.returncode == 0, gate.stdout + gate.stderr
    assert "PASS: every shard finished without a breach" in gate.stdout
    assert "ok all: error_ratio < 1%: last observed 0%" in gate.stdout
    assert "not judged: step:checkout: p95 < 2000ms: no series matched" in gate.stdout
    summaries = [json.loads((f / "summary.json").read_text()) for f in folders]
    assert [s["status"] for s in summaries] == ["passed"] * 3
    assert served["GET /"] == sum(s["arrivals"]["scheduled"] for s in summaries) == 80  # the whole schedule, nothing stopped
