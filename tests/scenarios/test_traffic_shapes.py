"""Traffic shapes against a fake clock: what Locust will be asked for, second by second."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from peakload.core import Stage, load_profile
from scenarios.shapes import ShapePlan, level_at, users_at

PROFILES = Path(__file__).resolve().parents[2] / "profiles"


def st(kind: str, duration: float, users: int, **kw: float) -> Stage:
    return Stage(kind=kind, duration=duration, users=users, **kw)


class FakeRunner:
    """Moves the running user count toward the last tick's target at its spawn rate (like Locust)."""

    def __init__(self) -> None:
        self.users = 0.0
        self.target = 0
        self.rate = 1.0

    def apply(self, tick: tuple[int, float]) -> None:
        self.target, self.rate = tick

    def advance(self, dt: float) -> None:
        step = self.rate * dt
        if self.users < self.target:
            self.users = min(self.target, self.users + step)
        else:
            self.users = max(self.target, self.users - step)


def simulate(plan: ShapePlan, *, phase: float, until: float, dt: float = 0.01) -> dict[float, float]:
    """Ticks at ``phase + k`` seconds (Locust's 1 s cadence); returns user counts every ``dt``."""
    runner, seen = FakeRunner(), {}
    next_tick, t = phase, 0.0
    while t <= until + 1e-9:
        if t >= next_tick - 1e-9:
            tick = plan.tick(t, current=int(runner.users))
            if tick is None:
                break
            runner.apply(tick)
            next_tick += 1.0
        seen[round(t, 2)] = runner.users
        runner.advance(dt)
        t += dt
    return seen


def test_ramp_endpoints_and_midpoint() -> None:
    stages = [st("ramp", 10, 100), st("ramp", 10, 20)]
    assert users_at(stages, 0) == 0
    assert users_at(stages, 5) == 50
    assert users_at(stages, 9.99) == 100
    assert users_at(stages, 10) == 100  # the second ramp starts from the first one's level
    assert users_at(stages, 15) == 60
    assert users_at(stages, 20) == 20  # after the end: the last level


def test_steady_holds_and_ramp_from_nonzero() -> None:
    stages = [st("steady", 5, 30), st("ramp", 4, 10)]
    assert [users_at(stages, t) for t in (0, 4.9, 5, 7, 9)] == [30, 30, 30, 20, 10]


def test_spike_reaches_ten_times_within_rise_at_any_tick_phase() -> None:
    stages = [st("steady", 10, 20), st("spike", 10, 200, rise=2)]
    plan = ShapePlan(stages)
    for phase in (0.0, 0.3, 0.7, 0.95):
        seen = simulate(plan, phase=phase, until=19)
        assert seen[9.9] == pytest.approx(20)
        # the cliff: 10x the warm level no later than rise seconds after midnight
        assert seen[12.0] == pytest.approx(200), f"tick phase {phase}: {seen[12.0]} users at T0+rise"
        # and not before midnight (no pre-heating into the spike)
        assert seen[10.0] <= 20 + 1e-9


def test_spike_ideal_curve_and_tick_ask_for_full_level_from_the_first_second() -> None:
    stages = [st("steady", 10, 20), st("spike", 10, 200, rise=2)]
    assert users_at(stages, 11) == 110  # linear within the rise
    assert users_at(stages, 12) == 200
    users, rate = ShapePlan(stages).tick(10.0)
    assert users == 200 and rate == pytest.approx(90.0)  # 180 users in 2 s


def test_decay_half_life() -> None:
    stages = [st("steady", 5, 1000), st("decay", 60, 200, half_life=10)]
    assert users_at(stages, 5) == 1000
    assert users_at(stages, 15) == 600  # half the gap (800) closed after one half-life
    assert users_at(stages, 25) == 400
    assert level_at(stages, 35) == pytest.approx(200 + 800 / 8)


def test_scale_factor_scales_every_level_and_rate() -> None:
    stages = [st("ramp", 10, 100), st("spike", 5, 1000, rise=2)]
    assert users_at(stages, 5, scale=0.1) == 5
    assert users_at(stages, 13, scale=0.1) == 100
    full, tenth = ShapePlan(stages).tick(10.0), ShapePlan(stages, scale=0.1).tick(10.0)
    assert tenth[0] == 100 and full[0] == 1000
    assert tenth[1] == pytest.approx(full[1] / 10)


def test_duration_cap_stops_early_and_end_returns_none() -> None:
    stages = [st("ramp", 5, 20), st("steady", 20, 20)]
    plan = ShapePlan(stages)
    assert plan.tick(24.9) is not None
    assert plan.tick(25.0) is None
    capped = ShapePlan(stages, duration=8)
    assert capped.tick(7.9) == (20, pytest.approx(1.0))
    assert capped.tick(8.0) is None
    assert ShapePlan(stages, duration=100).tick(25.0) is None  # a cap past the end changes nothing


def test_ramp_ticks_follow_the_curve_within_a_user() -> None:
    stages = [st("ramp", 10, 100), st("steady", 5, 100)]
    seen = simulate(ShapePlan(stages), phase=0.0, until=14)
    for t in (2.0, 5.0, 8.0):
        assert abs(seen[t] - level_at(stages, t)) <= 1.0, (t, seen[t])
    assert seen[10.0] == pytest.approx(100)


def test_stage_spawn_rate_overrides() -> None:
    stages = [st("spike", 5, 100, rise=1, spawn_rate=7)]
    assert ShapePlan(stages).tick(0.5) == (100, 7)


def test_bad_plan_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="scale must be > 0"):
        ShapePlan([st("steady", 1, 1)], scale=0)
    with pytest.raises(ValueError, match="duration cap"):
        ShapePlan([st("steady", 1, 1)], duration=0)


@pytest.mark.parametrize("name", ["smoke", "singles-day", "flash-sale", "soak"])
def test_shipped_profiles_validate_and_end(name: str) -> None:
    profile = load_profile(PROFILES / f"{name}.yaml")
    plan = ShapePlan(profile.shape.stages)
    total = profile.shape.total_seconds
    assert plan.tick(0) is not None
    assert plan.tick(total) is None
    assert max(users_at(profile.shape.stages, t) for t in range(int(total))) > 0


def test_singles_day_midnight_cliff_is_about_ten_times_within_two_seconds() -> None:
    profile = load_profile(PROFILES / "singles-day.yaml")
    stages = profile.shape.stages
    spike_i = next(i for i, s in enumerate(stages) if s.kind == "spike")
    t0 = sum(s.duration for s in stages[:spike_i])
    before, after = users_at(stages, t0 - 0.01), users_at(stages, t0 + stages[spike_i].rise)
    assert stages[spike_i].rise <= 2
    assert 8 <= after / before <= 12
    assert 60 <= profile.shape.total_seconds <= 120
    assert math.isclose(users_at(stages, t0 + 2), stages[spike_i].users)
