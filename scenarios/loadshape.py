"""The profile's traffic shape as a Locust ``LoadTestShape``.

``locust -f locustfile.py`` picks :class:`ProfileShape` up and runs the stages
of the profile in ``PEAKLOAD_PROFILE`` (scaled by ``PEAKLOAD_SCALE``, capped by
``PEAKLOAD_DURATION``). ``--run-time``/``-t`` (or the web UI's run-time field)
caps it further; ``--users``/``--spawn-rate`` are ignored — the profile decides.

Usage::

    PEAKLOAD_PROFILE=profiles/singles-day.yaml locust -f locustfile.py --headless --host URL -t 60s
"""

from __future__ import annotations

from locust import LoadTestShape

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
        self.plan = ShapePlan(settings.profile.shape.stages, scale=settings.scale, duration=settings.duration)

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
        current = self.runner.user_count if self.runner is not None else None
        return self.plan.tick(t, current=current)
