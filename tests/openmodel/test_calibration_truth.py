"""The calibration target's analytic truth agrees with a simulation of the same latency model."""

from __future__ import annotations

import random

import pytest

from storefront.calibration import (
    CalibrationConfig,
    CalibrationTarget,
    latency_cdf,
    truth_percentiles,
)


def simulate(*, a: float, b: float, stall: float, period: float, n: int = 400_000, seed: int = 5) -> list[float]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        u = rng.uniform(0, period)
        out.append((stall - u if u < stall else 0.0) + rng.uniform(a, b))
    return sorted(out)


@pytest.mark.parametrize("a, b, stall, period", [(0.1, 0.5, 1.0, 10.0), (0.005, 0.005, 1.0, 10.0), (0.02, 0.08, 0.5, 2.0)])
def test_truth_matches_a_monte_carlo_of_the_model(a, b, stall, period):
    truth = truth_percentiles(
        service_min=a, service_max=b, stall=stall, period=period, percentiles=(50, 95, 99, 99.9)
    )  # p90 of the constant case sits on the atom
    samples = simulate(a=a, b=b, stall=stall, period=period)
    for p, value in truth.items():
        empirical = samples[int(p / 100 * len(samples))]
        assert empirical == pytest.approx(value, rel=0.01, abs=0.001), p


def test_the_feasibility_figures_for_a_1s_stall_every_10s():
    # FEASIBILITY.md: "for open arrivals the truth is p95 ≈ 0.5 s, p99 ≈ 0.9 s" (5 ms service time)
    t = truth_percentiles(service_min=0.005, service_max=0.005, stall=1.0, period=10.0)
    assert t[95] == pytest.approx(0.505, abs=1e-6) and t[99] == pytest.approx(0.905, abs=1e-6) and t[50] == pytest.approx(0.005)
    assert latency_cdf(10.0, service_min=0.005, service_max=0.005, stall=1.0, period=10.0) == 1.0


def test_target_service_times_are_uniform_and_stalls_end_on_time():
    target = CalibrationTarget(CalibrationConfig(service_min=0.1, service_max=0.5, stall=1.0, period=10.0, epoch=1000.0))
    xs = sorted(target.service_time() for _ in range(10_000))
    assert xs[0] >= 0.1 and xs[-1] <= 0.5
    assert xs[5000] == pytest.approx(0.3, abs=0.002) and xs[9500] == pytest.approx(0.48, abs=0.002)
    assert target.stall_wait(1000.25) == pytest.approx(0.75)
    assert target.stall_wait(1011.0) == 0.0 and target.stall_wait(1020.999) == pytest.approx(0.001)


def test_bad_latency_model_is_refused():
    with pytest.raises(ValueError, match="expected 0 <= stall < period"):
        CalibrationConfig(stall=10, period=10)
    with pytest.raises(ValueError, match="expected 0 <= min <= max"):
        CalibrationConfig(service_min=0.5, service_max=0.1)
