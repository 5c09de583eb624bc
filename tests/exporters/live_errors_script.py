"""Real Locust clients against a refused port and a stalled server; prints error types as JSON.

Run by test_exporter_live_errors.py in a child process (it imports locust).
"""

import json

import gevent
from gevent.server import StreamServer
from locust import FastHttpUser
from probe_clients import probe_users, refused_port

import scenarios.instrumentation as instrumentation


def stall(sock, _addr) -> None:
    gevent.sleep(5)  # never answers within the client's 0.5 s timeout
    sock.close()


def main() -> None:
    server = StreamServer(("127.0.0.1", 0), stall)
    server.start()
    refused = refused_port()
    out = {}
    for base, user, env in probe_users("http://127.0.0.1", 0.5):
        kwargs = {} if base is FastHttpUser else {"timeout": 0.5}
        user.client.get(f"http://127.0.0.1:{refused}/x", name="refused", **kwargs)
        user.client.get(f"http://127.0.0.1:{server.server_port}/x", name="stalled", **kwargs)
        store = instrumentation.instrumentation_of(env).store
        out[base.__name__] = {t.name: sorted(k for k, v in t.errors.items() if v) for t in store.series_totals()}
    server.stop()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
