"""Bare Locust for bench/generator.py: ``FastHttpUser``, ``constant(0)``, one GET in a loop, nothing else.

Not meant to be run by hand (``locust -f bench/generator_bare_locustfile.py --host URL`` works, though).
"""

from locust import FastHttpUser, constant, task

__all__ = ["BareUser"]


class BareUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def get_root(self) -> None:
        self.client.get("/")
