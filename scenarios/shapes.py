"""Traffic shapes as pure functions of time (no Locust import).

A profile's ``shape.stages`` describe how many users should be active at each
moment of a run. :func:`users_at` is the ideal curve; :class:`ShapePlan` turns
it into what Locust's shape loop needs once a second: a target user count and a
spawn rate fast enough to follow the curve (a spike reaches its level within
its ``rise``), or ``None`` once the run is over.

Usage::

    plan = ShapePlan(profile.shape.stages, scale=0.5, duration=60)
    plan.tick(12.3)   # -> (users, spawn_rate) or None
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from peakload.core import Stage

__all__ = ["users_at", "level_at", "ShapePlan", "StageWindow", "MIN_SPAWN_RATE", "TICK_SECONDS"]

# Never ask Locust for less than one user per second: a slower rate only
# delays reaching a level the curve already wants.
MIN_SPAWN_RATE = 1.0
# Locust asks the shape about once a second.
TICK_SECONDS = 1.0
# A spike seen after (or right at the end of) its rise window still gets this
# much time to finish, so the rate stays finite.
_MIN_WINDOW_S = 0.1


@dataclass(frozen=True, slots=True)
class StageWindow:
    """One stage placed on the time axis: ``[start, end)`` and the level it starts from."""

    stage: Stage
    start: float
    end: float
    from_level: float


def _windows(stages: Sequence[Stage]) -> list[StageWindow]:
    out: list[StageWindow] = []
    t, level = 0.0, 0.0
    for stage in stages:
        out.append(StageWindow(stage=stage, start=t, end=t + stage.duration, from_level=level))
        t += stage.duration
        level = _stage_level(stage, level, stage.duration)
    return out


def _stage_level(stage: Stage, prev: float, dt: float) -> float:
    """Unscaled level ``dt`` seconds into ``stage`` that started at level ``prev``."""
    target = float(stage.users)
    if stage.kind == "ramp":
        frac = min(max(dt / stage.duration, 0.0), 1.0)
        return prev + (target - prev) * frac
    if stage.kind == "steady":
        return target
    if stage.kind == "spike":
        if stage.rise <= 0 or dt >= stage.rise:
            return target
        return prev + (target - prev) * max(dt, 0.0) / stage.rise
    # decay: exponential approach toward the target
    return target + (prev - target) * 0.5 ** (max(dt, 0.0) / stage.half_life)


def _find(windows: list[StageWindow], t: float) -> StageWindow | None:
    for w in windows:
        if w.start <= t < w.end:
            return w
    return None


def _round(x: float) -> int:
    # Half-up, not banker's rounding: 2.5 users means 3, the same on every run.
    return int(math.floor(x + 0.5))


def level_at(stages: Sequence[Stage], t: float, *, scale: float = 1.0) -> float:
    """The ideal (unrounded) number of users at ``t`` seconds into the run.

    Usage: ``level_at(profile.shape.stages, 3.5)``
    """
    windows = _windows(stages)
    if t < 0:
        return 0.0
    w = _find(windows, t)
    if w is None:  # after the end: the last level
        last = windows[-1]
        return _stage_level(last.stage, last.from_level, last.stage.duration) * scale
    return _stage_level(w.stage, w.from_level, t - w.start) * scale


def users_at(stages: Sequence[Stage], t: float, *, scale: float = 1.0) -> int:
    """Users the shape wants at ``t`` seconds (rounded half-up after scaling).

    Usage: ``users_at(profile.shape.stages, 42.0, scale=0.1)``
    """
    return _round(level_at(stages, t, scale=scale))


class ShapePlan:
    """The profile's shape as Locust ticks: ``tick(t) -> (users, spawn_rate) | None``.

    * ramp / decay follow the curve: each tick asks for the curve's value one
      tick ahead, at the curve's steepest slope in that stage;
    * steady asks for its level at once (within a second);
    * spike asks for its full level from its first second, at a rate that
      covers the whole jump in what is left of ``rise`` — the midnight cliff;
    * ``stage.spawn_rate`` overrides the computed rate;
    * after the last stage, or after ``duration`` seconds, ``None`` (stop).

    Usage::

        plan = ShapePlan(stages, scale=1.0, duration=None)
        while (step := plan.tick(clock())) is not None: ...
    """

    def __init__(self, stages: Sequence[Stage], *, scale: float = 1.0, duration: float | None = None) -> None:
        if not stages:
            raise ValueError("a shape needs at least one stage, got none")
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if duration is not None and duration <= 0:
            raise ValueError(f"duration cap must be > 0 seconds, got {duration}")
        self.stages = list(stages)
        self.scale = scale
        self._windows = _windows(self.stages)
        total = self._windows[-1].end
        self.total_seconds = total
        self.end = min(total, duration) if duration is not None else total

    def stage_at(self, t: float) -> StageWindow | None:
        """The stage running at ``t`` (None before 0 or at/after the end)."""
        if t < 0 or t >= self.end:
            return None
        return _find(self._windows, t)

    def users_at(self, t: float) -> int:
        """Users the curve wants at ``t`` (scaled, rounded)."""
        return users_at(self.stages, t, scale=self.scale)

    def tick(self, t: float, *, current: int | None = None) -> tuple[int, float] | None:
        """What Locust should run at ``t`` seconds into the run, or None to stop.

        ``current`` (the users running now, when known) raises the rate so a
        generator that fell behind catches up within a tick (or within what is
        left of a spike's ``rise``); it never lowers it.
        """
        t = max(t, 0.0)
        w = self.stage_at(t)
        if w is None:
            return None
        stage = w.stage
        dt = t - w.start
        delta = abs(stage.users - w.from_level) * self.scale
        window = TICK_SECONDS
        if stage.kind == "spike":
            users = _round(stage.users * self.scale)
            window = max(stage.rise - dt, _MIN_WINDOW_S)
            rate = delta / window
        elif stage.kind == "steady":
            users = _round(stage.users * self.scale)
            rate = delta / TICK_SECONDS
        else:
            # Ask for where the curve will be at the next tick, so the running
            # count follows the curve instead of trailing it by one tick.
            ahead = min(dt + TICK_SECONDS, stage.duration)
            users = _round(_stage_level(stage, w.from_level, ahead) * self.scale)
            if stage.kind == "ramp":
                rate = delta / stage.duration
            else:  # decay is steepest at its start: ln2/half_life of the gap
                rate = delta * math.log(2) / stage.half_life
        if stage.spawn_rate is not None:
            rate = stage.spawn_rate
        elif current is not None:
            rate = max(rate, abs(users - current) / window)
        return users, max(rate, MIN_SPAWN_RATE)
