"""Bottleneck attribution (reports/attribution.py): which side saturated, and the evidence.

The rules on figures built by hand (each signal alone, and what wins when both sides show one), and one forced
live case: `peakload capacity` against an embedded storefront with a one-connection DB pool names the target at
its knee, with the evidence from the client (a p95 that multiplied) and from the shop (its CPU or its pool).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reports.attribution import WindowFigures, attribute
from tests.command import only_dir, peakload


def figs(**kw: object) -> WindowFigures:
    base: dict = dict(
        seconds=10.0,
        offered=10.0,
        completed_rps=100.0,
        p95_s=0.05,
        p95_by_name={"GET /api/home": (0.05, 500)},
        scheduled=100,
        dropped=0,
        cpu_warning=False,
        lateness_p99_s=0.001,
        server={"cpu": 0.2, "db_pool_utilisation": 0.1, "server_error_ratio": 0.0},
    )
    base.update(kw)
    return WindowFigures(**base)  # type: ignore[arg-type]


def test_a_light_step_after_a_lighter_one_is_neither() -> None:
    a = attribute(figs(), figs(offered=20.0, completed_rps=200.0, p95_by_name={"GET /api/home": (0.06, 1000)}))
    assert a.side == "neither" and a.evidence == [] and a.text == "no side saturated"


@pytest.mark.parametrize(
    ("high", "needle"),
    [
        (figs(offered=20.0, completed_rps=200.0, p95_by_name={"GET /api/home": (0.21, 1000)}), "GET /api/home p95 ×4.2"),
        (figs(offered=40.0, completed_rps=105.0), "completed rps flat (100.0 → 105.0/s while the offered load rose ×4.0)"),
        (figs(server={"cpu": 0.3, "db_pool_utilisation": 1.0}), "db pool 100 %"),
        (figs(server={"cpu": 0.97}), "shop CPU 0.97 cores"),
        (figs(server={"server_error_ratio": 0.2}), "server 5xx ratio 20 %"),
    ],
)
def test_each_target_signal_names_the_target(high: WindowFigures, needle: str) -> None:
    a = attribute(figs(), high)
    assert a.side == "target" and needle in a.evidence, a.evidence
    assert a.text.startswith("target saturated — ")


def test_too_few_samples_do_not_make_a_latency_rise() -> None:
    low = figs(p95_by_name={"POST /api/orders": (0.05, 10)})
    high = figs(p95_by_name={"POST /api/orders": (0.5, 10)})
    assert attribute(low, high).side == "neither"


@pytest.mark.parametrize(
    ("high", "needle"),
    [
        (figs(cpu_warning=True), "load generator CPU above 90 % (Locust's warning)"),
        (figs(lateness_p99_s=0.04, p95_s=0.1), "scheduler lateness p99 40 ms (beyond 5 ms)"),
        (figs(dropped=30, scheduled=100), "30 of 100 arrivals dropped while the shop was idle (shop CPU 0.20 cores, db pool 10 %)"),
    ],
)
def test_the_generators_own_figures_win_over_the_targets(high: WindowFigures, needle: str) -> None:
    # the target looks saturated too (p95 x10, pool full) except in the dropped case, where the shop must be idle
    if high.dropped == 0:
        high = WindowFigures(**{**high.__dict__, "p95_by_name": {"GET /api/home": (0.5, 500)}, "server": {"db_pool_utilisation": 1.0}})
    a = attribute(figs(), high)
    assert a.side == "generator" and needle in a.evidence, a.evidence


def test_dropped_arrivals_on_a_busy_shop_are_not_the_generators() -> None:
    a = attribute(figs(), figs(dropped=30, server={"cpu": 0.95, "db_pool_utilisation": 1.0}))
    assert a.side == "target"
    assert attribute(None, figs(dropped=30, server={})).side == "neither"  # the shop gave no figure: no idle shop to point at


@pytest.mark.load
def test_capacity_names_the_target_at_the_knee_of_a_shop_with_a_one_connection_pool(tmp_path: Path) -> None:
    profile = {
        "version": "peakload/v1",
        "name": "tiny-pool",
        "slo": None,
        "target": {"users": 1000},
        "embedded": {"skus": 500, "db_pool_size": 1, "gateway_latency_ms": 20, "gateway_failure_rate": 0},
        "arrivals": {"kind": "constant", "stages": [{"duration": "5s", "rate": 5}], "journey": "shopper", "pool": 600},
        "capacity": {"start_rate": 10, "factor": 2, "step": "6s", "max_steps": 5, "stop_on_drop": True},
        "journey": {
            "think_time": {"min": 0.05, "max": 0.2},
            "session_actions": {"min": 2, "max": 4},
            "ratios": {
                "search": 0.3,
                "view_to_cart": 0.6,
                "cart_edit": 0.1,
                "cart_to_checkout": 0.8,
                "checkout_to_pay": 0.9,
                "coupon": 0.2,
            },
        },
        "thresholds": {"all": ["error_ratio < 1%"], "POST /api/orders": ["p95 < 200ms"]},
    }
    path = tmp_path / "tiny-pool.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    res = peakload("capacity", "--profile", str(path), "--results", str(tmp_path / "r"), "--quiet", timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    cap = json.loads((only_dir(tmp_path / "r") / "capacity.json").read_text())
    print(cap["verdict"])
    assert cap["knee_rate"] is not None, cap["verdict"]
    why = cap["attribution"]
    assert why["side"] == "target", why
    assert any(" p95 ×" in e for e in why["evidence"]), why  # the client saw it
    assert any(e.startswith(("shop CPU", "db pool")) for e in why["evidence"]), why  # and the shop said why
    assert f"knee at {cap['knee_rate']:g} journeys/s: target saturated — " in cap["verdict"]
    html = (only_dir(tmp_path / "r") / "report.html").read_text()
    assert 'id="capacity-attribution"' in html and "<b>target</b>" in html
    # the run's own report says the same from its peak-load intervals against its lightest
    summary = json.loads((only_dir(tmp_path / "r") / "summary.json").read_text())
    assert summary["attribution"]["side"] == "target", summary["attribution"]
    assert "id='attribution'" in html


@pytest.mark.load
def test_capacity_and_the_report_name_the_generator_when_its_pool_drops_arrivals_on_an_idle_shop(tmp_path: Path) -> None:
    profile = {
        "version": "peakload/v1",
        "name": "tiny-generator-pool",
        "slo": None,
        "target": {"users": 200},
        "embedded": {"skus": 200},
        "arrivals": {"kind": "constant", "stages": [{"duration": "4s", "rate": 2}], "journey": "shopper", "pool": 3, "max_pool": 3},
        "capacity": {"start_rate": 2, "factor": 3, "step": "5s", "max_steps": 4, "stop_on_drop": True},
        "journey": {"think_time": {"min": 0.3, "max": 0.6}, "session_actions": {"min": 3, "max": 5}},
        "thresholds": {"all": ["error_ratio < 5%"]},
    }
    path = tmp_path / "tiny-generator-pool.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    res = peakload("capacity", "--profile", str(path), "--results", str(tmp_path / "r"), "--quiet", timeout=300)
    assert res.returncode in (0, 1), res.stdout + res.stderr[-2000:]
    run = only_dir(tmp_path / "r")
    cap = json.loads((run / "capacity.json").read_text())
    print(cap["verdict"])
    assert cap["first_failing_threshold"] == "dropped arrivals", cap["verdict"]
    assert cap["attribution"]["side"] == "generator", cap["attribution"]
    assert any("dropped while the shop was idle" in e for e in cap["attribution"]["evidence"])
    summary = json.loads((run / "summary.json").read_text())
    assert summary["attribution"]["side"] == "generator", summary["attribution"]
    assert "load generator saturated" in (run / "summary.md").read_text()
