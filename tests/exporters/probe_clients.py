"""Shared by the exporter's child scripts: a closed port, and one instrumented user per Locust client kind.

Imported only in child processes (it imports locust).
"""

import socket
from collections.abc import Iterator

from locust import FastHttpUser, HttpUser, User, constant, events, task
from locust.env import Environment


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def probe_users(host: str, timeout: float) -> Iterator[tuple[type[User], User, Environment]]:
    """A FastHttpUser, then an HttpUser, each in its own environment with the instrumentation installed (init fired)."""
    for base in (FastHttpUser, HttpUser):

        class Probe(base):  # type: ignore[valid-type, misc]
            network_timeout = connection_timeout = timeout
            wait_time = constant(0)

            @task
            def noop(self) -> None:
                pass

        Probe.host = host
        env = Environment(events=events, user_classes=[Probe])
        env.events.init.fire(environment=env, runner=None, web_ui=None)
        yield base, Probe(env), env
