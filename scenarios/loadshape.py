"""The profile's traffic shape as a Locust ``LoadTestShape``.

``locust -f locustfile.py`` picks :class:`ProfileShape` up and runs the stages
of the profile in ``PEAKLOAD_PROFILE`` (scaled by ``PEAKLOAD_SCALE``, capped by
``PEAKLOAD_DURATION``). ``--run-time``/``-t`` (or the web UI's run-time field)
caps it further; ``--users``/``--spawn-rate`` are ignored — the profile decides.

Open-model profiles (``arrivals``) keep the pool of users up from the start
until the arrival schedule (:mod:`scenarios.arrivals`) has run out, then stop;
the journeys in flight finish within Locust's ``--stop-timeout``.

Usage::

    PEAKLOAD_PROFILE=profiles/singles-day.yaml locust -f locustfile.py --headless --host URL -t 60s
"""

from __future__ import annotations

import time

from locust import LoadTestShape

from scenarios.arrivals import arrival_state
from scenarios.settings import get_settings
from scenarios.shapes import ShapePlan

__all__ = ["ProfileShape"]


class ProfileShape(LoadTestShape):
    """Ticks :class:`~scenarios.shapes.ShapePlan` with the shape's run time."""

    # Lets --run-time cap the shape (Locust otherwise ignores it for shapes).
    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        settings = get_settings()
        self.settings = settings
        shape = settings.profile.shape
        self.plan = ShapePlan(shape.stages, scale=settings.scale, duration=settings.duration) if shape is not None else None

    def _run_time_cap(self) -> float | None:
        runner = self.runner
        options = getattr(getattr(runner, "environment", None), "parsed_options", None)
        cap = getattr(options, "run_time", None)
        return float(cap) if cap else None

    def tick(self) -> tuple[int, float] | None:
        t = self.get_run_time()
        cap = self._run_time_cap()
        if cap is not None and t >= cap:
            return None
        if self.plan is None:
            return self._arrivals_tick(t)
        current = self.runner.user_count if self.runner is not None else None
        return self.plan.tick(t, current=current)

    def _arrivals_tick(self, t: float) -> tuple[int, float] | None:
        """The pool, spawned at once, until the schedule's end (or a generous cap if it never started)."""
        state = arrival_state(self.runner.environment) if self.runner is not None else None
        if state is None:
            return None
        if state.end is not None and time.time() >= state.end:
            return None
        if state.t0 is None and t > state.curve.duration + 120:  # the pool never finished spawning: give up rather than hang
            return None
        workers = getattr(self.runner, "worker_count", 1) or 1
        pool = max(state.pool_size, workers)
        return pool, float(max(pool * 4, 10))
