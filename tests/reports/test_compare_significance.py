"""`peakload compare` knows noise: runs written by the real stats store and snapshot writer, latencies
drawn from a known log-normal, compared through the real reports and CLI.

- the same distribution twice (20 seeds, 0..19): no figure is called a regression in at least 19;
- every latency ×1.2 (a 20 % slowdown), enough samples: p95 and p99 are significant regressions;
- ~30 requests a run: inconclusive, with the requests per run that would decide it, exit 3;
- an error ratio of 1 % → 3 %: a regression by the two-proportion test; throughput -30 %: a regression;
- a real end-to-end `peakload compare` of `peakload run` folders against the calibration target (service
  20-40 ms, and 24-48 ms for the slow build): the slow build is a regression, the same build is not.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import jsonschema
import pytest

from exporters.histogram import DEFAULT_BUCKETS
from exporters.stats import StatsStore
from peakload.cli import main
from peakload.core import CompareSpec
from peakload.core.records import RunMeta
from peakload.core.snapshots import SnapshotWriter
from reports.build import write_reports
from reports.compare import compare, samples_of, verdict_of
from reports.results import load_results

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "reports" / "summary.schema.json").read_text())
INTERVAL = 2.0
T0 = 1_764_000_000.0


def write_run(folder: Path, *, seed: int, requests: int, slowdown: float = 1.0, error_ratio: float = 0.0, seconds: float = 20.0) -> Path:
    """A finished results folder: ``requests`` latencies ~ lognormal(median 50 ms, sigma 0.5) × ``slowdown``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    store = StatsStore(edges=DEFAULT_BUCKETS)
    header = {"run_id": folder.name, "interval_s": INTERVAL, "bucket_edges": list(DEFAULT_BUCKETS), "latency_basis": "response"}
    writer = SnapshotWriter(folder / "snapshots.jsonl", header=header)
    n_iv = max(1, int(seconds / INTERVAL))
    # arrivals per interval vary as a Poisson count would (normal approximation), about ``requests`` in all
    per = [max(0, round(rng.gauss(requests / n_iv, math.sqrt(requests / n_iv)))) for _ in range(n_iv)]
    for i, n in enumerate(per):
        for _ in range(n):
            v = rng.lognormvariate(math.log(0.05), 0.5) * slowdown
            failed = rng.random() < error_ratio
            store.record("/api/product/{sku}", "GET", v, 503 if failed else 200, "http_5xx" if failed else None)
        t = T0 + i * INTERVAL
        writer.write_interval(store.drain_delta(), t_start=t, t_end=t + INTERVAL, users=10, workers=0, target_rate=None, cpu_warning=False)
    writer.close(reason="completed")
    meta = RunMeta(run_id=folder.name, profile="p", started_ts=T0, ended_ts=T0 + n_iv * INTERVAL, launched_by="locust")
    (folder / "run.json").write_text(json.dumps({k: v for k, v in meta.to_json().items() if v is not None}))
    write_reports(folder, [])
    return folder


def _rows(cur: Path, base: Path):
    cs, bs = (json.loads((d / "summary.json").read_text()) for d in (cur, base))
    rows = compare(cs, bs, CompareSpec(), current_samples=samples_of(load_results(cur)), baseline_samples=samples_of(load_results(base)))
    return {r.metric: r for r in rows}, verdict_of(cs, bs, rows)


def test_two_runs_of_the_same_code_are_no_regression(tmp_path: Path) -> None:
    seeds = range(20)
    flagged, verdicts, exits = [], [], []
    for s in seeds:
        base = write_run(tmp_path / f"base{s}", seed=1000 + s, requests=5000)
        cur = write_run(tmp_path / f"cur{s}", seed=2000 + s, requests=5000)
        rows, (code, rule, _) = _rows(cur, base)
        if any(r.regression for r in rows.values()):
            flagged.append(s)
        verdicts.append({m: r.verdict for m, r in rows.items()})
        exits.append(code)
        for r in rows.values():  # every figure carries its interval, around its change
            assert r.ci is not None and r.ci[0] <= r.change <= r.ci[1] and 0 < r.p_value <= 1, r
    assert len(flagged) <= 1, (flagged, verdicts)
    # 5,000 requests a run decide it: most comparisons pass outright (none is a regression, few undecided)
    assert exits.count(0) >= 16 and 1 not in [c for s, c in zip(seeds, exits, strict=True) if s not in flagged], (exits, verdicts)


def test_a_20_percent_slowdown_is_a_significant_regression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_run(tmp_path / "base", seed=1, requests=5000)
    slow = write_run(tmp_path / "slow", seed=2, requests=5000, slowdown=1.2)
    rows, (code, rule, _) = _rows(slow, base)
    assert (code, rule) == (1, "regression")
    for metric in ("p95_ms", "p99_ms"):
        r = rows[metric]
        assert r.verdict == "regression" and r.ci[0] > 0 and r.p_value < 0.05, r
        assert abs(r.change - 0.2) < r.ci[1] - r.ci[0], r  # the interval is about the true +20 %
    assert rows["rps"].verdict == "no change" and rows["error_ratio"].verdict == "no change"
    capsys.readouterr()
    assert main(["compare", str(slow), str(base)]) == 1
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "p95_ms" in x)
    assert line.split()[0] == "regression" and "[+" in line and "p=" in line, line
    assert "decided by: regression" in out


def test_a_tiny_sample_is_inconclusive_with_the_sample_needed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_run(tmp_path / "base", seed=1, requests=30, seconds=10)
    cur = write_run(tmp_path / "cur", seed=2, requests=30, seconds=10, slowdown=1.2)  # even a real slowdown cannot be told
    rows, (code, rule, reason) = _rows(cur, base)
    assert (code, rule) == (3, "inconclusive") and "requests per run" in reason
    for metric in ("p95_ms", "p99_ms", "error_ratio"):
        assert rows[metric].verdict == "inconclusive" and rows[metric].needed is not None and rows[metric].needed > 30, rows[metric]
    assert rows["p99_ms"].needed >= 1000 and rows["p95_ms"].needed >= 200  # 10 requests above the percentile, at least
    capsys.readouterr()
    assert main(["compare", str(cur), str(base)]) == 3
    out = capsys.readouterr().out
    assert "decided by: inconclusive" in out and "needs ≈" in out
    # the report with --baseline says so too, in summary.json, summary.md and junit.xml
    assert main(["report", str(cur), "--baseline", str(base)]) == 0
    summary = json.loads((cur / "summary.json").read_text())
    jsonschema.validate(summary, SCHEMA)
    b = summary["baseline"]
    assert b["exit_code"] == 3 and b["decided_by"] == "inconclusive" and b["inconclusive"] >= 3
    row = next(r for r in b["rows"] if r["metric"] == "p95_ms")
    assert row["verdict"] == "inconclusive" and row["needed"] == rows["p95_ms"].needed and len(row["ci"]) == 2
    assert not summary["problems"], summary["problems"]
    assert "requests needed" in (cur / "summary.md").read_text() and "inconclusive" in (cur / "report.html").read_text()
    assert '<testcase classname="baseline"' in (cur / "junit.xml").read_text() and "<skipped" in (cur / "junit.xml").read_text()


def test_an_error_ratio_rise_is_a_regression_by_the_two_proportion_test(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", seed=1, requests=5000, error_ratio=0.01)
    cur = write_run(tmp_path / "cur", seed=2, requests=5000, error_ratio=0.03)
    rows, (code, _, _) = _rows(cur, base)
    r = rows["error_ratio"]
    assert code == 1 and r.verdict == "regression" and r.ci[0] > 0 and r.p_value < 0.001, r
    assert rows["p95_ms"].verdict == "no change"


def test_a_throughput_drop_is_a_regression_judged_on_intervals(tmp_path: Path) -> None:
    base = write_run(tmp_path / "base", seed=1, requests=5000, seconds=40)
    cur = write_run(tmp_path / "cur", seed=2, requests=3500, seconds=40)  # 20 intervals each, 30 % fewer requests
    rows, (code, _, _) = _rows(cur, base)
    r = rows["rps"]
    assert code == 1 and r.verdict == "regression" and r.ci[1] < -0.1 and r.test == "intervals", r
    short = write_run(tmp_path / "short", seed=3, requests=3500, seconds=10)  # 5 intervals: too few to judge a rate
    rows, _ = _rows(short, base)
    assert rows["rps"].verdict == "inconclusive" and "snapshot intervals" in rows["rps"].test, rows["rps"]


@pytest.mark.load
def test_end_to_end_compare_of_real_runs(tmp_path: Path) -> None:
    """Three 10 s open-model runs (150 arrivals/s) through `peakload run`, compared through `peakload compare`."""
    from tests.command import peakload
    from tests.openmodel.harness import Scenario, calibration_target, run_open, write_profile

    profile = write_profile(tmp_path / "p.yaml", rate=150, seconds=10, pool=40)
    runs = {}
    for build, service in (("same", (20.0, 40.0)), ("slow", (24.0, 48.0))):
        with calibration_target(workdir=tmp_path / build, scenario=Scenario(service_ms=service, stall=0.0)) as target:
            for name in ("base", "same") if build == "same" else ("slow",):
                runs[name] = run_open(target=target.url, profile=profile, results=tmp_path / name).run_dir
    slow = peakload("compare", str(runs["slow"]), str(runs["base"]))
    assert slow.returncode == 1 and "decided by: regression" in slow.stdout, slow
    for metric in ("p95_ms", "p99_ms"):
        line = next(x for x in slow.stdout.splitlines() if f" {metric} " in x)
        assert line.split()[0] == "regression" and " p=" in line and "[+" in line, line
    same = peakload("compare", str(runs["same"]), str(runs["base"]))
    assert same.returncode in (0, 3) and "0 regression(s)" in same.stdout, same  # 3 only for an undecided figure
    for metric in ("p95_ms", "p99_ms"):
        line = next(x for x in same.stdout.splitlines() if f" {metric} " in x)
        assert line.strip().startswith("no change"), same.stdout
    if same.returncode == 3:
        assert "decided by: inconclusive" in same.stdout and "requests per run" in same.stdout
