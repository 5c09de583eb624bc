"""A generator that knows when it lies: its own lag is measured, merged, exported and judged.

Two live runs (real ``peakload run``, real Locust, the calibration target on
loopback, ~10 s each): a light one (100 arrivals/s, two workers) is valid and
reports a scheduler lateness far below the tolerance, with one lateness sample per
arrival merged exactly from both workers; an overloaded one — a greenlet in the
generator that burns the CPU 40 ms of every 100 ms (tests/openmodel/lag_hog_locustfile.py) —
is invalid (exit 3) with one line naming the figure, and its snapshots' histograms
show the lateness. Plus the store's exact merge and the /metrics families (no load).
The rule and its tolerance: reports/generator.py, docs/open-model.md.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporters.histogram import DEFAULT_BUCKETS, decode_hdr, new_hdr
from exporters.prometheus import GENERATOR_METRIC_NAMES, PeakloadCollector
from exporters.stats import StatsStore
from reports.generator import TOLERANCE_FLOOR_S, TOLERANCE_RATIO
from tests.command import peakload
from tests.openmodel.harness import Scenario, calibration_target, run_open, write_profile

LIGHT = Scenario(service_ms=(5.0, 15.0), stall=0.0, rate=100.0, seconds=8.0, pool=100)
THRESHOLD = 'thresholds:\n  "GET /":\n    - p95 < 5s\n'  # judged on the intended-start basis; passes on its own
HOG_BURN_MS, HOG_PERIOD_MS = 40, 100
HOG = Path(__file__).with_name("lag_hog_locustfile.py")


@pytest.mark.load
def test_a_light_run_is_valid_and_reports_a_small_lateness(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "light.yaml", rate=LIGHT.rate, seconds=LIGHT.seconds, pool=LIGHT.pool, extra=THRESHOLD)
    with calibration_target(workdir=tmp_path / "target", scenario=LIGHT) as target:
        run = run_open(target=target.url, profile=profile, results=tmp_path / "results", workers=2, timeout=120)
    s, gen = run.summary, run.summary["generator"]
    print(f"\nlight run: {json.dumps(gen)}")
    assert (run.proc.returncode, s["decided_by"]) == (0, "thresholds-passed"), run.proc.stdout
    # one lateness sample per arrival's first request, merged from both workers exactly
    assert (
        gen["scheduler_lateness"]["samples"] == s["requests"]["GET /"]["requests"] == s["arrivals"]["scheduled"] - s["arrivals"]["dropped"]
    )
    assert gen["response_handling_lag"]["samples"] > 0
    assert gen["scheduler_lateness"]["p99_ms"] < TOLERANCE_FLOOR_S * 1000
    (check,) = gen["checks"]
    assert check["within"] and check["lag_ms"] <= check["allowed_ms"] and check["metric"] == "p95"
    assert "Generator lag" in (run.run_dir / "summary.md").read_text()
    assert s["attribution"]["side"] == "neither", s["attribution"]  # a light run against an unsaturated target


@pytest.mark.load
def test_an_overloaded_generator_makes_the_run_invalid_naming_the_figure(tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "hog.yaml", rate=LIGHT.rate, seconds=LIGHT.seconds, pool=LIGHT.pool, extra=THRESHOLD)
    with calibration_target(workdir=tmp_path / "target", scenario=LIGHT) as target:
        proc = peakload(
            "run",
            "--profile",
            str(profile),
            "--locustfile",
            str(HOG),
            "--target",
            target.url,
            "--results",
            str(tmp_path / "results"),
            "--quiet",
            env={"HOG_BURN_MS": str(HOG_BURN_MS), "HOG_PERIOD_MS": str(HOG_PERIOD_MS), "HOG_MAX_S": "30"},
            timeout=120,
        )
    (run_dir,) = (tmp_path / "results").iterdir()
    s = json.loads((run_dir / "summary.json").read_text())
    gen = s["generator"]
    print(f"\noverloaded run: {proc.stdout.splitlines()[0] if proc.stdout else proc.stderr[-500:]}\n{json.dumps(gen)}")
    assert proc.returncode == 3 and s["decided_by"] == "generator-lag", proc.stdout + proc.stderr
    verdict = [line for line in proc.stdout.splitlines() if "INVALID (exit 3)" in line]
    assert len(verdict) == 1
    assert "the generator's own lag (scheduler lateness p95" in verdict[0] and "of the judged p95 of GET / (" in verdict[0]
    assert f"beyond {TOLERANCE_RATIO * 100:g} %" in verdict[0]
    (check,) = gen["checks"]
    assert not check["within"] and check["lag_ms"] > max(check["judged_ms"] * TOLERANCE_RATIO, TOLERANCE_FLOOR_S * 1000)
    # the burn blocks the loop 40 ms at a time: an arrival due meanwhile leaves up to 40 ms late
    assert gen["scheduler_lateness"]["p99_ms"] > HOG_BURN_MS / 2
    assert gen["response_handling_lag"]["p99_ms"] > HOG_BURN_MS / 2
    # ... and the per-interval histograms in the snapshots show it
    late = new_hdr()
    for line in (run_dir / "snapshots.jsonl").read_text().splitlines():
        row = json.loads(line).get("generator", {}).get("scheduler_lateness")
        if row:
            late.add(decode_hdr(row["hdr"]))
    assert late.get_total_count() == s["requests"]["GET /"]["requests"]
    assert late.get_value_at_percentile(99) / 1000 > HOG_BURN_MS / 2
    assert "Generator lag" in (run_dir / "report.html").read_text()
    # and the report names the generator as the side that saturated, with its lateness as the evidence
    assert s["attribution"]["side"] == "generator", s["attribution"]
    assert any(e.startswith("scheduler lateness p99") for e in s["attribution"]["evidence"]), s["attribution"]


def test_generator_lag_merges_exactly_and_is_exported() -> None:
    workers = [StatsStore(edges=DEFAULT_BUCKETS) for _ in range(2)]
    for i, store in enumerate(workers):
        for ms in range(1, 201):
            store.record_generator("scheduler_lateness", (ms + i * 200) / 1000)
        store.record_generator("response_handling_lag", 0.0003)
    master = StatsStore(edges=DEFAULT_BUCKETS)
    for store in workers:
        master.merge_delta(store.drain_delta())
    text = _exposition(master)
    delta = master.drain_delta()
    merged = decode_hdr(delta["generator"]["scheduler_lateness"]["hdr"])
    assert merged.get_total_count() == 400 and delta["generator"]["response_handling_lag"]["count"] == 2
    # 1..400 ms: p50 200 ms, max 400 ms (HDR: 3 significant digits)
    assert abs(merged.get_value_at_percentile(50) - 200_000) <= 200 and abs(merged.get_max_value() - 400_000) <= 400
    for name in GENERATOR_METRIC_NAMES:
        assert f"# TYPE {name} histogram" in text
    assert 'peakload_scheduler_lateness_seconds_bucket{le="0.3"} 300.0' in text  # an SLO edge: 300 of the 400 within
    assert 'peakload_response_handling_lag_seconds_bucket{le="0.0005"} 2.0' in text
    assert "peakload_scheduler_lateness_seconds_count 400.0" in text
    # the exposition after the drain is the same (totals kept)
    assert _exposition(master) == text
    # a store that took no sample exposes no generator family (as the target rate in a closed model)
    assert "peakload_scheduler_lateness_seconds" not in _exposition(StatsStore(edges=DEFAULT_BUCKETS))


def test_a_delta_with_bad_generator_lag_is_refused_whole() -> None:
    store = StatsStore(edges=DEFAULT_BUCKETS)
    store.record("/", "GET", 0.01, 200)
    store.record_generator("scheduler_lateness", 0.002)
    delta = store.drain_delta()
    delta["generator"]["scheduler_lateness"]["count"] += 1  # buckets no longer add up
    master = StatsStore(edges=DEFAULT_BUCKETS)
    with pytest.raises(ValueError, match="generator scheduler_lateness: count does not match its buckets"):
        master.merge_delta(delta)
    assert list(master.series_totals()) == []  # nothing merged
    with pytest.raises(ValueError, match="unknown generator lag"):
        store.record_generator("gc_pause", 0.1)


def _exposition(store: StatsStore) -> str:
    registry = CollectorRegistry()
    registry.register(PeakloadCollector(store, run_id="r", profile="p"))
    return generate_latest(registry).decode()
