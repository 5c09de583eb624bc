"""Who the shoppers are and how many arrive.

Pure parts (no Locust import, safe anywhere): :mod:`scenarios.shapes`,
:mod:`scenarios.schedule` (open-model arrival schedules), :mod:`scenarios.zipf`,
:mod:`scenarios.settings`. Locust parts (importing them monkey-patches the
process with gevent): :mod:`scenarios.client`, :mod:`scenarios.users`,
:mod:`scenarios.arrivals`, :mod:`scenarios.probe`, :mod:`scenarios.loadshape`,
:mod:`scenarios.instrumentation` (the exporter plugin: :mod:`scenarios.bridge`
for every role and the worker, :mod:`scenarios.aggregator` for master/local).

Usage: ``from scenarios import ShapePlan, users_at, ZipfSampler, RateCurve, arrival_times``
"""

from scenarios.schedule import ArrivalCursor, RateCurve, arrival_times
from scenarios.shapes import ShapePlan, users_at
from scenarios.zipf import ZipfSampler

__all__ = ["ShapePlan", "users_at", "ZipfSampler", "RateCurve", "ArrivalCursor", "arrival_times"]
