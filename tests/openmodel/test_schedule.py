"""Arrival schedules: rates, cliffs and the distributed split are exact (pure functions, no load)."""

from __future__ import annotations

import statistics

import pytest

from peakload.core import ArrivalsSpec
from scenarios.schedule import RateCurve, arrival_times, count_until


def spec(**kw) -> ArrivalsSpec:
    return ArrivalsSpec.model_validate(kw)


def test_constant_rate_gives_exactly_rate_times_duration_evenly_spaced():
    times = list(arrival_times(RateCurve([(20.0, 200.0, 200.0)]), kind="constant"))
    assert len(times) == 4000
    gaps = {round(b - a, 9) for a, b in zip(times, times[1:])}
    assert gaps == {0.005}
    assert times[0] == pytest.approx(0.0025) and times[-1] == pytest.approx(19.9975)


@pytest.mark.parametrize("workers", [2, 3, 7])
@pytest.mark.parametrize("kind", ["constant", "ramping"])
def test_worker_shares_add_up_to_the_global_schedule_arrival_for_arrival(workers, kind):
    s = spec(kind=kind, start_rate=50, stages=[{"duration": "3s", "rate": 900}, {"duration": "250ms", "rate": 5000}])
    curve = RateCurve.from_spec(s)
    alone = list(arrival_times(curve, kind=kind))
    shares = [list(arrival_times(curve, kind=kind, slot=i, of=workers)) for i in range(workers)]
    assert sorted(t for share in shares for t in share) == alone
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # every worker gets its fair share
    assert sum(count_until(curve, 2.0, slot=i, of=workers) for i in range(workers)) == sum(1 for t in alone if t < 2.0)


def test_midnight_cliff_within_half_a_second_is_a_cliff():
    s = spec(
        kind="ramping",
        start_rate=1000,
        stages=[
            {"name": "before", "duration": "23.5s", "rate": 1000},
            {"name": "midnight", "duration": "500ms", "rate": 40000},
            {"name": "peak", "duration": "2s", "rate": 40000},
        ],
    )
    curve = RateCurve.from_spec(s)
    times = list(arrival_times(curve, kind="ramping"))
    assert curve.rate_at(23.4) == 1000 and curve.rate_at(23.75) == pytest.approx(20500) and curve.rate_at(24.1) == 40000
    in_cliff = sum(1 for t in times if 23.5 <= t < 24.0)
    assert in_cliff == pytest.approx((1000 + 40000) / 2 * 0.5, abs=1)
    assert sum(1 for t in times if 24.0 <= t < 24.1) == pytest.approx(4000, abs=1)  # the full peak 0.1 s after the cliff
    assert sum(1 for t in times if 23.0 <= t < 23.1) == pytest.approx(100, abs=1)


def test_step_curve_jumps_at_the_stage_boundary():
    curve = RateCurve.from_spec(spec(kind="constant", stages=[{"duration": "1s", "rate": 100}, {"duration": "1s", "rate": 1000}]))
    times = list(arrival_times(curve, kind="constant"))
    assert sum(1 for t in times if t < 1.0) == 100
    assert sum(1 for t in times if t >= 1.0) == 1000


def test_scale_and_duration_cap_follow_the_run_settings():
    curve = RateCurve.from_spec(spec(stages=[{"duration": "10s", "rate": 100}]), scale=2.5, duration=4.0)
    assert curve.duration == 4.0 and curve.rate_at(1.0) == 250
    assert len(list(arrival_times(curve, kind="constant"))) == 1000


def test_poisson_arrivals_have_the_rate_and_exponential_gaps_and_split_exactly_in_law():
    curve = RateCurve([(100.0, 200.0, 200.0)])
    times = list(arrival_times(curve, kind="poisson", seed=7))
    n = len(times)
    assert abs(n - 20000) < 4 * 20000**0.5  # Poisson count: within 4 sigma
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert statistics.mean(gaps) == pytest.approx(1 / 200, rel=0.03)
    assert statistics.pstdev(gaps) / statistics.mean(gaps) == pytest.approx(1.0, abs=0.05)  # exponential: CV = 1
    assert times == list(arrival_times(curve, kind="poisson", seed=7))  # reproducible
    assert times != list(arrival_times(curve, kind="poisson", seed=8))
    merged = sorted(t for i in range(4) for t in arrival_times(curve, kind="poisson", slot=i, of=4, seed=7))
    assert abs(len(merged) - 20000) < 4 * 20000**0.5
    mgaps = [b - a for a, b in zip(merged, merged[1:])]
    assert statistics.pstdev(mgaps) / statistics.mean(mgaps) == pytest.approx(1.0, abs=0.05)  # still Poisson


def test_poisson_on_a_linear_curve_follows_the_ramp():
    curve = RateCurve.from_spec(spec(kind="poisson", curve="linear", start_rate=0, stages=[{"duration": "40s", "rate": 1000}]))
    times = list(arrival_times(curve, kind="poisson", seed=3))
    first, second = sum(1 for t in times if t < 20), sum(1 for t in times if t >= 20)
    assert first == pytest.approx(5000, rel=0.05) and second == pytest.approx(15000, rel=0.05)


def test_zero_rate_stage_sends_nothing_then_resumes():
    curve = RateCurve.from_spec(
        spec(stages=[{"duration": "1s", "rate": 10}, {"duration": "1s", "rate": 0}, {"duration": "1s", "rate": 10}])
    )
    times = list(arrival_times(curve, kind="constant"))
    assert len(times) == 20 and not any(1.0 <= t < 2.0 for t in times)


def test_slot_out_of_range_is_refused():
    with pytest.raises(ValueError, match="slot must be within 0..1"):
        arrival_times(RateCurve([(1.0, 1.0, 1.0)]), kind="constant", slot=2, of=2)


@pytest.mark.parametrize("kind", ["constant", "ramping", "poisson"])
def test_skipping_unservable_arrivals_counts_exactly_what_walking_them_would(kind):
    from scenarios.schedule import ArrivalCursor

    curve = RateCurve([(1.0, 100.0, 100.0), (2.0, 100.0, 3000.0)])
    walked = list(arrival_times(curve, kind=kind, slot=1, of=3, seed=11))
    cur = ArrivalCursor(curve, kind=kind, slot=1, of=3, seed=11)
    seen, served = 0, []
    for t in (0.25, 0.5, 1.3, 1.31, 2.0, 2.9, 5.0):  # a scheduler waking up late, serving one arrival per wake-up
        u_now = curve.expected(t)
        if cur.u <= u_now:
            served.append(cur.time())
            cur.advance()
            seen += 1
        seen += cur.skip_through(u_now)
        assert seen == sum(1 for w in walked if w <= t + 1e-12)
    assert served == [w for w in walked if w in served] and cur.time() is None
