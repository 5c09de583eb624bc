"""The orchestration: wires the rooms together for one command; owns no contract.

- :mod:`~peakload.app.runner` — ``peakload run``: target, pre-flight, Locust, reconciliation, reports;
- :mod:`~peakload.app.capacity` — ``peakload capacity``: arrival-rate steps up to the knee;
- :mod:`~peakload.app.drills` — ``peakload chaos run``: an experiment under a profile's load;
- :mod:`~peakload.app.target` — the allowlist, the pre-flight check, the embedded storefront;
- :mod:`~peakload.app.progress` — the live progress line.
"""

__all__: list[str] = []
