"""The locustfile ``peakload run --locustfile FILE`` loads before ``FILE``: everything but the users.

Locust runs ``-f scenarios/plugin.py,FILE``: this file brings the metrics
exporter and snapshot writer (:mod:`scenarios.instrumentation`), the open
model (:mod:`scenarios.arrivals`) and the profile's traffic shape
(:class:`~scenarios.loadshape.ProfileShape`); ``FILE`` brings the user
classes, adopted on ``events.init`` by :func:`scenarios.custom.adopt` (run
header, arrivals pool). It defines no user class of its own.

Usage (what ``peakload run`` does; by hand the same works with plain Locust)::

    PEAKLOAD_PROFILE=profiles/smoke.yaml locust -f scenarios/plugin.py,my_locustfile.py --headless --host URL
"""

from typing import Any

from locust import events
from locust.env import Environment

import scenarios.arrivals  # noqa: F401  (the open model's scheduler, for profiles with arrivals)
import scenarios.instrumentation  # noqa: F401  (exporter, /metrics, snapshots, results folder)
from scenarios.custom import adopt
from scenarios.loadshape import ProfileShape

__all__ = ["ProfileShape"]


@events.init.add_listener
def _adopt_user_classes(environment: Environment, **_kw: Any) -> None:
    adopt(environment)
