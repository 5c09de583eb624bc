"""The round trip: a known profile against the storefront → its access log → `profile fit` → the fitted profile runs → fit again.

Real runs (`peakload run` on the embedded storefront with `embedded.access_log`),
real Locust, loopback only, about 70 s each. Tolerances (docs/traffic-models.md):
arrival rates within 5 %; funnel ratios within 0.03, or 3 standard errors where
the run is too small to resolve 0.03 (a run's own random decisions wander that
much: the report gives each ratio's standard error); the Zipf exponent within
0.05; session lengths exactly; think-time quantiles within 20 ms. Against the
run's own counters the fit is exact: product views, cart adds, orders and
payments are the journey's own business counts.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from tests.command import peakload

REPO = Path(__file__).resolve().parents[2]

KNOWN_PROFILE = REPO / "profiles" / "fit-demo.yaml"  # the worked example of docs/traffic-models.md
KNOWN = KNOWN_PROFILE.read_text()
RATIOS = ("search", "view_to_cart", "cart_edit", "cart_to_checkout", "checkout_to_pay")


def run_profile(profile: Path, results: Path) -> Path:
    res = peakload("run", "--profile", str(profile), "--results", str(results), "--quiet")
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    (run,) = [p for p in results.iterdir() if (p / "summary.json").is_file()]
    assert (run / "access.log").is_file()
    return run


def fit(log: Path, out: Path) -> tuple[dict, dict]:
    res = peakload("profile", "fit", str(log), "--out", str(out), "--entry", "home", "--catalogue", "3000", "--quiet")
    assert res.returncode == 0, res.stderr
    return yaml.safe_load(out.read_text()), json.loads(out.with_name(out.stem + ".fit.json").read_text())


def rate_at(stages: list[dict], t: float) -> float:
    from peakload.core import parse_duration

    at = 0.0
    for st in stages:
        d = parse_duration(st["duration"])
        if at <= t < at + d:
            return float(st["rate"])
        at += d
    raise AssertionError(f"no stage at {t}")


def close_ratio(got: dict, want: float, name: str, other_se: float = 0.0) -> None:
    se = math.hypot(got["stderr"], other_se)
    assert abs(got["value"] - want) <= max(0.03, 3 * se), (name, got, want)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("fit-roundtrip")
    (folder / "known.yaml").write_text(KNOWN)
    run = run_profile(folder / "known.yaml", folder / "results-1")
    profile, report = fit(run / "access.log", folder / "fitted.yaml")
    return {"folder": folder, "run": run, "profile": profile, "report": report, "summary": json.loads((run / "summary.json").read_text())}


def test_the_fit_of_a_known_run_finds_its_parameters(first: dict) -> None:
    known = yaml.safe_load(KNOWN)
    s, prof, rep = first["summary"], first["profile"], first["report"]
    assert s["arrivals"]["dropped"] == 0 and s["arrivals"]["scheduled"] == 1200, s["arrivals"]
    assert rep["sessions"]["fitted"] == s["arrivals"]["scheduled"]  # every arrival is one visit in the log
    at = 0.0
    for st in known["arrivals"]["stages"]:
        seconds = float(st["duration"].rstrip("s"))
        got = rate_at(prof["arrivals"]["stages"], at + seconds / 2)
        assert abs(got - st["rate"]) <= 0.05 * st["rate"], (at, prof["arrivals"]["stages"])
        at += seconds
    for name in RATIOS:
        close_ratio(rep["ratios"][name], known["journey"]["ratios"][name], name)
    assert abs(prof["journey"]["zipf_exponent"] - known["journey"]["zipf_exponent"]) <= 0.05
    sa, tt = prof["journey"]["session_actions"], prof["journey"]["think_time"]
    assert (sa["min"], sa["max"]) == (2, 5)
    for q in (10, 25, 50, 75, 90):  # uniform on 0.05..0.2
        assert abs(tt["quantiles"][f"p{q}"] - (0.05 + 0.15 * q / 100)) <= 0.02, tt
    assert "n/a" in rep["not_fitted"]["coupon"]


def test_the_fit_counts_exactly_what_the_shoppers_did(first: dict) -> None:
    b, counts = first["summary"]["business"], first["report"]["counts"]
    assert counts["product_views"] == b["product_views"]
    assert counts["cart_adds"] == b["cart_adds"]  # no cart request failed in this run
    assert counts["orders"] == b["orders"]
    assert counts["paid_orders"] == b["payments_success"] + b["payments_declined"] + b["payments_error"]


def test_the_fitted_profile_runs_as_written_and_fits_the_same_again(first: dict) -> None:
    folder = first["folder"]
    fitted = yaml.safe_load((folder / "fitted.yaml").read_text())
    fitted["embedded"]["access_log"] = True  # only to fit its log again; everything else as written
    (folder / "fitted-logged.yaml").write_text(yaml.safe_dump(fitted, sort_keys=False))
    run = run_profile(folder / "fitted-logged.yaml", folder / "results-2")
    second = json.loads((run / "summary.json").read_text())
    assert second["status"] == "passed" and second["arrivals"]["dropped"] == 0, second["arrivals"]
    prof2, rep2 = fit(run / "access.log", folder / "fitted-2.yaml")
    prof1, rep1 = first["profile"], first["report"]
    # the log shows when visits reached the shop: a generator sending late smears the curve (say how late)
    late = {k: second["requests"]["GET /api/home"][k] for k in ("p99_ms", "max_ms")}
    for t in (10.0, 30.0, 47.0):
        a, b = rate_at(prof1["arrivals"]["stages"], t), rate_at(prof2["arrivals"]["stages"], t)
        assert abs(a - b) <= 0.05 * a, (
            t,
            prof1["arrivals"]["stages"],
            prof2["arrivals"]["stages"],
            "first request from its scheduled instant",
            late,
        )
    for name in RATIOS:
        close_ratio(rep2["ratios"][name], rep1["ratios"][name]["value"], name, other_se=rep1["ratios"][name]["stderr"])
    assert abs(prof2["journey"]["zipf_exponent"] - prof1["journey"]["zipf_exponent"]) <= 0.05
    sa1, sa2 = prof1["journey"]["session_actions"], prof2["journey"]["session_actions"]
    assert (sa1["min"], sa1["max"]) == (sa2["min"], sa2["max"])
    q1, q2 = prof1["journey"]["think_time"]["quantiles"], prof2["journey"]["think_time"]["quantiles"]
    assert all(abs(q1[k] - q2[k]) <= 0.02 for k in ("p10", "p50", "p90")), (q1, q2)
