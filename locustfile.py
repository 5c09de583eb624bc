"""Plain-Locust entry point: the profile's shoppers and traffic shape.

Declarations only — users and shape live in ``scenarios/``; importing
``scenarios.instrumentation`` registers the metrics exporter and the snapshot
writer. Which profile, run id, seed, scale and duration: the ``PEAKLOAD_*``
environment variables (docs/contracts.md §3); defaults run profiles/smoke.yaml.

Usage::

    locust -f locustfile.py --host http://127.0.0.1:8080                 # web UI
    locust -f locustfile.py --headless --host http://127.0.0.1:8080 -t 20s
"""

import scenarios.instrumentation  # noqa: F401  (registers the exporter/snapshot listeners)
from scenarios.arrival_users import (  # open model (profiles with `arrivals`)
    ArrivalReplayer,
    ArrivalRequester,
    ArrivalShopper,
)
from scenarios.loadshape import ProfileShape
from scenarios.users import FlashBuyer, Shopper

__all__ = ["Shopper", "FlashBuyer", "ArrivalShopper", "ArrivalRequester", "ArrivalReplayer", "ProfileShape"]
