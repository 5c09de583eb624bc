"""Real Locust clients fail in four ways; prints each series' failure ``reasons`` from the bridge as JSON.

Run by test_exporter_reasons.py in a child process (it imports locust).
"""

import json

from gevent.pywsgi import WSGIServer
from probe_clients import probe_users, refused_port

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
    refused = refused_port()
    out = {}
    for base, user, env in probe_users(f"http://127.0.0.1:{server.server_port}", 2.0):
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
