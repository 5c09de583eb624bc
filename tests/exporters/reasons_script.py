"""Real Locust clients fail in four ways; prints each series' failure ``reasons`` from the bridge as JSON.

Run by test_exporter_reasons.py in a child process (it imports locust).
"""

import json
import socket

from gevent.pywsgi import WSGIServer
from locust import FastHttpUser, HttpUser, constant, events, task
from locust.env import Environment

import scenarios.instrumentation as instrumentation


def app(environ, start_response):  # type: ignore[no-untyped-def]
    if environ["PATH_INFO"] == "/boom":
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [b'{"error": "unavailable"}']
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"status": "degraded"}']


def main() -> None:
    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        refused = s.getsockname()[1]  # closed again: nothing listens there
    out = {}
    for base in (FastHttpUser, HttpUser):

        class Probe(base):
            host = f"http://127.0.0.1:{server.server_port}"
            network_timeout = connection_timeout = 2.0
            wait_time = constant(0)

            @task
            def noop(self) -> None:
                pass

        env = Environment(events=events, user_classes=[Probe])
        env.events.init.fire(environment=env, runner=None, web_ui=None)
        user = Probe(env)
        for _ in range(3):
            user.client.get("/boom", name="boom")
            user.client.get(f"http://127.0.0.1:{refused}/x", name="refused")
            with user.client.get("/order", name="body", catch_response=True) as resp:
                if "orderId" not in resp.json():
                    resp.failure("orderId   missing\n in the answer")  # whitespace is collapsed
            user.client.get("/order", name="ok")
        delta = instrumentation.instrumentation_of(env).store.drain_delta()
        out[base.__name__] = {row["name"]: {"failures": row["failures"], "reasons": row.get("reasons")} for row in delta["requests"]}
    server.stop()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
