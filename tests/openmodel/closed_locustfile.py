"""Plain Locust, closed model, for contrast: ``FastHttpUser`` paced with ``constant_throughput``.

This is how a Locust user would try to send a fixed rate: N users, each at
most ``CLOSED_RATE_PER_USER`` requests/s. When the target stalls the users
wait, so the load drops and the stall is under-sampled (coordinated omission).

Usage::

    CLOSED_RATE_PER_USER=2 locust -f tests/openmodel/closed_locustfile.py --headless -u 100 -r 100 -t 20s --host URL
"""

import os

from locust import constant_throughput, task
from locust.contrib.fasthttp import FastHttpUser

__all__ = ["PacedUser"]


class PacedUser(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("CLOSED_RATE_PER_USER", "10")))
    network_timeout = 30.0

    @task
    def get_root(self) -> None:
        self.client.get("/")
