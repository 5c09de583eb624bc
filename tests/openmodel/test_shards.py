"""Shards: several masters (``--shard I/N``) share one arrival schedule, arrival for arrival.

The pure tests walk the schedules without Locust; the live one runs three
``peakload run --shard i/3 --start-at T`` at once against the calibration
target and counts what it served.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from peakload.core import ArrivalsSpec, ConfigError, load_profile
from peakload.core.records import RunMeta
from peakload.core.runenv import RunEnv
from peakload.core.shard import Shard, check_start_at, parse_shard, parse_start_at
from scenarios.schedule import RateCurve, arrival_times, arrivals_plan
from tests.openmodel.harness import ROOT, Scenario, calibration_target, write_profile

PY = sys.executable
CLIFF = {
    "start_rate": 50,
    "stages": [
        {"name": "before", "duration": "2s", "rate": 300},
        {"name": "midnight", "duration": "250ms", "rate": 4000},
        {"name": "peak", "duration": "1s", "rate": 4000},
    ],
}
WORKERS_PER_SHARD = (1, 2, 3)  # shard 0 has one worker, shard 1 two, shard 2 three


def shard_times(curve: RateCurve, *, kind: str, shard: Shard, workers: int, seed: int = 42) -> list[list[float]]:
    """Every local worker's arrival times on ``shard``, with the slots :meth:`Shard.slot` gives them."""
    out = []
    for w in range(workers):
        slot, of = shard.slot(worker=w, workers=workers)
        out.append(list(arrival_times(curve, kind=kind, slot=slot, of=of, seed=seed)))
    return out


# ---------------------------------------------------------------- the schedule (pure)


@pytest.mark.parametrize("kind", ["constant", "ramping"])
def test_three_shards_with_1_2_3_workers_are_the_global_schedule_arrival_for_arrival(kind):
    curve = RateCurve.from_spec(ArrivalsSpec.model_validate({"kind": kind, **CLIFF}))
    alone = list(arrival_times(curve, kind=kind))
    shards = [shard_times(curve, kind=kind, shard=Shard(index=i, of=3), workers=w) for i, w in enumerate(WORKERS_PER_SHARD)]
    union = sorted(t for shard in shards for worker in shard for t in worker)
    assert len(union) == len(alone) and union == alone  # the same multiset, float-equal
    per_shard = [sorted(t for worker in shard for t in worker) for shard in shards]
    assert max(map(len, per_shard)) - min(map(len, per_shard)) <= 1  # each shard its third, whatever its workers
    # shard i holds exactly the global arrivals k = i, i+3, i+6, ...
    for i, mine in enumerate(per_shard):
        assert mine == alone[i::3]
    # not in phase: shard 0's arrival k is never at the instant of shard 1's arrival k
    assert all(a != b for a, b in zip(per_shard[0], per_shard[1]))
    assert all(a < b < c for a, b, c in zip(*per_shard))
    # the plan run.json records: the global count, and each shard's share adds up to it
    plans = [arrivals_plan(curve, kind=kind, slot=i, of=3) for i in range(3)]
    assert {p.global_arrivals for p in plans} == {len(alone)} and [p.share for p in plans] == list(map(len, per_shard))


def test_without_shards_every_master_would_send_in_phase():
    """What --shard fixes: two masters each running the whole schedule send arrival k at the same instant."""
    curve = RateCurve([(2.0, 100.0, 100.0)])
    one, other = list(arrival_times(curve, kind="constant")), list(arrival_times(curve, kind="constant"))
    assert one == other
    assert list(arrival_times(curve, kind="constant", slot=0, of=2)) != list(arrival_times(curve, kind="constant", slot=1, of=2))


def test_poisson_shards_have_distinct_seeded_streams_and_superpose_to_the_global_rate():
    rate, seconds = 600.0, 40.0
    curve = RateCurve([(seconds, rate, rate)])
    streams = {
        (i, w): stream
        for i, workers in enumerate(WORKERS_PER_SHARD)
        for w, stream in enumerate(shard_times(curve, kind="poisson", shard=Shard(index=i, of=3), workers=workers, seed=7))
    }
    assert len(streams) == 6
    firsts = [s[:20] for s in streams.values()]
    assert len({tuple(f) for f in firsts}) == 6  # six (shard, worker) pairs, six different streams
    union = sorted(t for s in streams.values() for t in s)
    expected = rate * seconds
    assert abs(len(union) - expected) < 4 * expected**0.5  # the global rate within Poisson noise (4 sigma)
    # each shard carries a third of the rate, whatever its worker count
    for i, workers in enumerate(WORKERS_PER_SHARD):
        n = sum(len(streams[(i, w)]) for w in range(workers))
        assert abs(n - expected / 3) < 4 * (expected / 3) ** 0.5
    plan = arrivals_plan(curve, kind="poisson", slot=1, of=3)
    assert not plan.exact and plan.global_arrivals == expected and plan.share == pytest.approx(expected / 3)


def test_one_shard_of_one_is_the_unsharded_split():
    """0/1 gives the same slots a single master gives its workers (an old run's schedule does not move)."""
    assert [Shard(index=0, of=1).slot(worker=w, workers=4) for w in range(4)] == [(w, 4) for w in range(4)]
    assert Shard(index=2, of=3).slot(worker=1, workers=2) == (5, 6)


# ---------------------------------------------------------------- inputs


@pytest.mark.parametrize(
    "text, message",
    [
        ("3/2", "below the shard count"),
        ("0/0", "at least 1 shard"),
        ("a/b", "expected I/N"),
        ("0/10001", "at most 10000 shards"),
        ("3/3", "0-based"),
        ("-1/3", "expected I/N"),
        ("1/3/4", "expected I/N"),
    ],
)
def test_bad_shards_are_refused_in_one_line(text, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_shard(text)
    assert "\n" not in str(info.value)


def test_start_at_takes_iso_utc_or_epoch_and_refuses_the_past_and_tomorrow():
    assert parse_start_at("2026-12-03T10:50:00Z") == parse_start_at("2026-12-03T11:50:00+01:00") == 1796295000.0
    assert parse_start_at("1796295000.25") == 1796295000.25
    with pytest.raises(ValueError, match="with its zone"):
        parse_start_at("2026-12-03T10:50:00")
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_start_at("tomorrow")
    now = 1_800_000_000.0
    assert check_start_at(now - 0.5, now=now) == now - 0.5
    with pytest.raises(ValueError, match="in the past"):
        check_start_at(now - 5, now=now)
    with pytest.raises(ValueError, match="24 h"):
        check_start_at(now + 25 * 3600, now=now)


def test_the_environment_carries_the_shard_and_the_start_to_plain_locust():
    env = RunEnv(shard=Shard(index=1, of=3), start_at=1796295000.123456).to_environ()
    assert env == {"PEAKLOAD_SHARD": "1/3", "PEAKLOAD_START_AT": "1796295000.123456"}
    back = RunEnv.from_environ(env)
    assert back.shard == Shard(index=1, of=3) and back.start_at == 1796295000.123456
    with pytest.raises(ConfigError, match="PEAKLOAD_SHARD: shard indexes are 0-based"):
        RunEnv.from_environ({"PEAKLOAD_SHARD": "3/3"})


def test_plain_locust_settings_refuse_a_shard_without_a_start_or_on_a_shape(tmp_path):
    from scenarios.settings import read_settings

    open_profile = write_profile(tmp_path / "open.yaml", rate=30, seconds=10, pool=20)
    with pytest.raises(ConfigError, match="PEAKLOAD_START_AT"):
        read_settings({"PEAKLOAD_PROFILE": str(open_profile), "PEAKLOAD_SHARD": "0/3"})
    s = read_settings({"PEAKLOAD_PROFILE": str(open_profile), "PEAKLOAD_SHARD": "2/3", "PEAKLOAD_START_AT": "1796295000"})
    assert s.shard == Shard(index=2, of=3) and s.start_at == 1796295000.0
    with pytest.raises(ConfigError, match="closed-model"):
        read_settings({"PEAKLOAD_PROFILE": str(ROOT / "profiles" / "smoke.yaml"), "PEAKLOAD_SHARD": "0/2", "PEAKLOAD_START_AT": "1"})


def test_the_profile_names_its_shard_and_refuses_a_bad_one(tmp_path):
    ok = write_profile(tmp_path / "ok.yaml", rate=30, seconds=10, pool=20, extra="  shard: 1/3\n")
    assert load_profile(ok).arrivals.shard_of == Shard(index=1, of=3)
    bad = write_profile(tmp_path / "bad.yaml", rate=30, seconds=10, pool=20, extra="  shard: 3/3\n")
    with pytest.raises(ConfigError, match=r"arrivals\.shard.*0-based"):
        load_profile(bad)


def test_run_json_keeps_the_shard_and_drops_a_malformed_one():
    problems: list[str] = []
    meta = RunMeta.from_json({"run_id": "r", "shard": {"index": 1, "of": 3}, "start_at": 1796295000.5}, problems)
    assert meta is not None and meta.shard == {"index": 1, "of": 3} and meta.start_at == 1796295000.5 and problems == []
    meta = RunMeta.from_json({"run_id": "r", "shard": {"index": 3, "of": 3}}, problems)
    assert meta is not None and meta.shard is None and problems and "shard" in problems[0]


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "peakload", "run", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("shard", ["3/2", "0/0", "a/b", "0/10001", "3/3"])
def test_cli_refuses_a_bad_shard_in_one_line_exit_2(shard):
    res = _cli("--shard", shard)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "--shard" in res.stderr


def test_cli_refuses_a_shard_without_start_at_a_shape_profile_and_a_stale_start(tmp_path):
    profile = write_profile(tmp_path / "p.yaml", rate=30, seconds=10, pool=20)
    target = ["--target", "http://127.0.0.1:9"]
    for args, needle in [
        (["--profile", str(profile), *target, "--shard", "0/3"], "--start-at"),
        (["--profile", str(ROOT / "profiles" / "smoke.yaml"), "--shard", "0/3", "--start-at", f"{time.time() + 60:.0f}"], "closed-model"),
        (["--profile", str(profile), *target, "--shard", "0/3", "--start-at", "2020-01-01T00:00:00Z"], "in the past"),
        (["--profile", str(profile), *target, "--shard", "0/3", "--start-at", f"{time.time() + 2 * 86400:.0f}"], "24 h"),
    ]:
        res = _cli(*args, "--results", str(tmp_path / "results"))
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1 and needle in res.stderr, res.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_a_profiles_shard_also_needs_start_at_and_the_flag_overrides_it(tmp_path):
    profile = write_profile(tmp_path / "p.yaml", rate=30, seconds=10, pool=20, extra="  shard: 1/3\n")
    res = _cli("--profile", str(profile), "--target", "http://127.0.0.1:9", "--results", str(tmp_path / "results"))
    assert res.returncode == 2 and "arrivals.shard: 1/3" in res.stderr and "--start-at" in res.stderr, res.stderr
    from peakload.app.runner import RunOptions, plan

    ctx = plan(RunOptions(profile_path=profile, target="http://127.0.0.1:9", results_root=tmp_path / "r", start_at=time.time() + 60))
    assert ctx.shard == Shard(index=1, of=3) and ctx.arrivals_plan is not None and ctx.arrivals_plan.share == 100
    ctx = plan(
        RunOptions(
            profile_path=profile,
            target="http://127.0.0.1:9",
            results_root=tmp_path / "r",
            shard=Shard(index=0, of=2),
            start_at=time.time() + 60,
        )
    )
    assert ctx.shard == Shard(index=0, of=2) and ctx.arrivals_plan is not None and ctx.arrivals_plan.share == 150


_USERS_SCRIPT = """
import json
from locust.env import Environment
from scenarios.users import Shopper

class S(Shopper):
    weight = 1
    host = "http://127.0.0.1:9"

env = Environment(user_classes=[S], host=S.host)
env.create_local_runner()
print(json.dumps([[u.account, u.rng.random()] for u in [S(env) for _ in range(4)]]))
"""


def test_shoppers_on_different_shards_get_different_accounts_and_random_streams():
    """Three shards of one local runner each: 12 shoppers, 12 accounts, 12 streams (not three copies of one shard)."""
    seen = []
    for i in range(3):
        env = {**os.environ, "PEAKLOAD_PROFILE": str(ROOT / "tests" / "openmodel" / "profiles" / "open-shopper.yaml")}
        env.update(PEAKLOAD_SHARD=f"{i}/3", PEAKLOAD_START_AT="1796295000", PEAKLOAD_RESULTS_DIR="none")
        res = subprocess.run([PY, "-c", _USERS_SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-1500:]
        seen += json.loads(res.stdout.strip().splitlines()[-1])
    accounts, draws = [a for a, _ in seen], [r for _, r in seen]
    assert sorted(accounts) == list(range(1, 13))  # interleaved by global slot: shard i has i+1, i+4, ...
    assert len(set(draws)) == 12


# ---------------------------------------------------------------- live: three shards at once


RATE, SECONDS, LEAD_S = 30.0, 10.0, 10.0


def _shard_command(i: int, *, profile: Path, url: str, start_at: float, out: Path) -> tuple[list[str], dict[str, str]]:
    """Shard 0: ``peakload run`` (one local runner); shard 1: ``peakload run --workers 2``; shard 2: plain ``locust``."""
    if i == 2:
        env = {**os.environ, "PEAKLOAD_PROFILE": str(profile), "PEAKLOAD_RESULTS_DIR": str(out / "plain")}
        env.update(PEAKLOAD_SHARD=f"{i}/3", PEAKLOAD_START_AT=f"{start_at:.3f}")
        cmd = [PY, "-m", "locust", "-f", str(ROOT / "locustfile.py"), "--headless", "--host", url, "--only-summary"]
        return cmd + ["--loglevel", "WARNING", "--stop-timeout", "10", "--exit-code-on-error", "0"], env
    cmd = [PY, "-m", "peakload", "run", "--profile", str(profile), "--target", url, "--quiet", "--results", str(out)]
    cmd += ["--shard", f"{i}/3", "--start-at", f"{start_at:.3f}"] + (["--workers", "2"] if i == 1 else [])
    return cmd, dict(os.environ)


def test_three_live_shards_serve_the_global_schedule_exactly(tmp_path):
    gate = "thresholds:\n  business: [dropped_ratio < 1%]\n"  # judged: every shard passes only if it dropped nothing
    profile = write_profile(tmp_path / "shards.yaml", rate=RATE, seconds=SECONDS, pool=30, extra=gate)
    global_count = len(list(arrival_times(RateCurve([(SECONDS, RATE, RATE)]), kind="constant")))
    assert global_count == 300
    # a deterministic target (golden-ratio service times, 150-450 ms) so that two runs of one schedule see the same latencies
    scenario = Scenario(service_ms=(150.0, 450.0), stall=0.0, period=10.0)
    with calibration_target(workdir=tmp_path / "target", scenario=scenario) as target:
        start_at = time.time() + LEAD_S
        procs = []
        for i in range(3):
            cmd, env = _shard_command(i, profile=profile, url=target.url, start_at=start_at, out=tmp_path / f"shard{i}")
            procs.append(subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
        results = [p.communicate(timeout=LEAD_S + SECONDS + 40) for p in procs]
        served = target.stats()["requests"]["GET /"]
    folders = []
    for i, (proc, (_out, err)) in enumerate(zip(procs, results)):
        assert proc.returncode == 0, f"shard {i}: exit {proc.returncode}: {err[-1500:]}"
        (folder,) = (tmp_path / f"shard{i}").iterdir()
        folders.append(folder)
    # the plain Locust shard's folder is gated like any other
    gated = subprocess.run([PY, "-m", "peakload", "gate", str(folders[2])], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert gated.returncode == 0, gated.stdout[-1500:] + gated.stderr[-1500:]
    summaries = [json.loads((f / "summary.json").read_text()) for f in folders]
    metas = [json.loads((f / "run.json").read_text()) for f in folders]
    assert [m["launched_by"] for m in metas] == ["peakload run", "peakload run", "locust"]
    scheduled = [s["arrivals"]["scheduled"] for s in summaries]
    assert [s["arrivals"]["dropped"] for s in summaries] == [0, 0, 0]
    assert scheduled == [100, 100, 100]
    assert served == sum(scheduled) == global_count  # the target counted every arrival of the global schedule, once
    for i, meta in enumerate(metas):
        assert meta["shard"] == {"index": i, "of": 3}
        assert meta["start_at"] == pytest.approx(start_at, abs=1e-3)
        assert meta["arrivals_plan"] == {"global_arrivals": 300, "shard_arrivals": 100, "exact": True}
    starts = []
    for i, f in enumerate(folders):
        events = [json.loads(line) for line in (f / "events.jsonl").read_text().splitlines() if line.strip()]
        (start,) = [e for e in events if e.get("name") == "arrivals start"]
        assert f"shard {i} of 3" in start["detail"]
        starts.append(start["t"])
    assert starts == [pytest.approx(start_at, abs=1e-3)] * 3  # one instant for every shard

    # one master running the same global schedule against a fresh target of the same model: the merge of the three
    # shards gives its counts exactly and its percentiles within HDR precision (0.1 %) plus the generator's jitter (2 ms)
    merged = subprocess.run(
        [PY, "-m", "peakload", "merge", *map(str, folders), "--out", str(tmp_path / "merged")], cwd=ROOT, capture_output=True, text=True
    )
    assert merged.returncode == 0, merged.stdout + merged.stderr
    with calibration_target(workdir=tmp_path / "target-1", scenario=scenario) as target:
        single = subprocess.run(
            [PY, "-m", "peakload", "run", "--profile", str(profile), "--target", target.url, "--quiet", "--results", str(tmp_path / "one")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=SECONDS + 60,
        )
        served_single = target.stats()["requests"]["GET /"]
    assert single.returncode == 0, single.stdout + single.stderr[-1500:]
    (one,) = (tmp_path / "one").iterdir()
    fleet, alone = (json.loads((f / "summary.json").read_text())["requests"]["GET /"] for f in (tmp_path / "merged", one))
    assert fleet["requests"] == alone["requests"] == served_single == global_count
    for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms"):
        print(f"{key}: 3 shards merged {fleet[key]} ms, one master {alone[key]} ms")
        assert abs(fleet[key] - alone[key]) <= 0.001 * alone[key] + 2.0, (key, fleet, alone)
