"""Runs ShopClient calls in a child process (Locust monkey-patches whatever imports it).

stdin: {"url": ..., "target": {...TargetSpec...}, "run_id": ..., "token": ... | null,
        "calls": [{"call": "product", "args": [...], "kwargs": {...}}, ...]}
stdout: {"results": [repr of each return value], "requests": [one dict per Locust request event]}
"""

from __future__ import annotations

import json
import sys

from locust.contrib.fasthttp import FastHttpSession
from locust.event import Events

from peakload.core import TargetSpec
from peakload.core.steps import STEP_KEY
from scenarios.client import ShopClient


def main() -> None:
    spec = json.load(sys.stdin)
    events = Events()
    seen: list[dict] = []

    def on_request(request_type, name, response, exception, url, context=None, **_kw):  # noqa: ANN001
        seen.append(
            {
                "step": (context or {}).get(STEP_KEY),
                "method": request_type,
                "name": name,
                "url": url,
                "status": getattr(response, "status_code", None),
                "failure": None if exception is None else str(exception),
                "exception_type": None if exception is None else type(exception).__name__,
            }
        )

    events.request.add_listener(on_request)
    http = FastHttpSession(spec["url"], request_event=events.request, user=None, network_timeout=5.0, connection_timeout=2.0)
    shop = ShopClient(http, target=TargetSpec(**spec.get("target", {})), run_id=spec["run_id"])
    shop.token = spec.get("token")
    results = []
    for call in spec["calls"]:
        value = getattr(shop, call["call"])(*call.get("args", []), **call.get("kwargs", {}))
        results.append(repr(value))
    json.dump({"results": results, "requests": seen, "token": shop.token}, sys.stdout)


if __name__ == "__main__":
    main()
