"""Issue 3 end to end: a real load, a real Prometheus with the generated rules, every dashboard panel answered.

The storefront runs for the whole test (so its server-side counts can be read
after the load); `peakload run` drives the smoke profile at it with the
exporter on a known port; Prometheus scrapes both every second.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

from dashboards import DASHBOARD_FILES
from dashboards.prometheus import (
    panel_queries,
    query,
    running_prometheus,
    wait_for_data,
)
from peakload.core.net import free_port
from tests.e2e.conftest import REPO

pytestmark = [
    pytest.mark.load,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed (make test installs it)"),
]


def _parse_counts(text: str, family: str, key_labels: tuple[str, ...], where: dict[str, str] | None = None) -> dict[tuple, float]:
    out: dict[tuple, float] = {}
    for line in text.splitlines():
        if not line.startswith(family + "{"):
            continue
        labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', line[line.index("{") : line.rindex("}")]))
        if where and any(labels.get(k) != v for k, v in where.items()):
            continue
        key = tuple(labels.get(k, "") for k in key_labels)
        out[key] = out.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return out


def _scrape_while_running(port: int, proc: subprocess.Popen) -> str:
    """The load generator's /metrics while the load runs (polled until requests show up)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            if "peakload_requests_total{" in text:
                return text
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError("the exporter never served request metrics during the run")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("pipeline")
    port_file = tmp / "shop.url"
    shop = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "storefront",
            "serve",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            "--db",
            f"sqlite:///{tmp / 'shop.sqlite'}",
            "--gateway-failure-rate",
            "0",
            "--exit-with-parent",
        ],
        cwd=REPO,
        stdout=open(tmp / "shop.log", "wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not (port_file.exists() and port_file.read_text().strip()):
        assert shop.poll() is None and time.monotonic() < deadline, (tmp / "shop.log").read_text()
        time.sleep(0.1)
    shop_url = port_file.read_text().strip()
    metrics_port = free_port()
    try:
        with running_prometheus(
            tmp / "prom",
            jobs={"peakload": [f"127.0.0.1:{metrics_port}"], "storefront": [shop_url.split("//")[1]]},
            rule_files=[REPO / "dashboards/generated/slo.rules.yaml"],
        ) as prom:
            results = tmp / "results"
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "peakload",
                    "run",
                    "--profile",
                    "profiles/smoke.yaml",
                    "--target",
                    shop_url,
                    "--metrics-port",
                    str(metrics_port),
                    "--results",
                    str(results),
                    "--quiet",
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            live = _scrape_while_running(metrics_port, proc)
            out, _ = proc.communicate(timeout=240)
            assert proc.returncode == 0, out
            (run_dir,) = list(results.iterdir())
            shop_metrics = urllib.request.urlopen(shop_url + "/metrics", timeout=10).read().decode()
            yield {
                "live_metrics": live,
                "prom": prom,
                "run_dir": run_dir,
                "summary": json.loads((run_dir / "summary.json").read_text()),
                "shop_metrics": shop_metrics,
                "end": time.time(),
            }
    finally:
        shop.terminate()
        shop.wait(20)


def test_live_metrics_of_a_running_load_pass_promtool_check_metrics(pipeline) -> None:
    text = pipeline["live_metrics"]
    assert "peakload_request_duration_seconds_bucket{" in text and "peakload_run_info{" in text
    res = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stdout + res.stderr


def test_client_counts_equal_storefront_server_counts(pipeline) -> None:
    summary = pipeline["summary"]
    server = _parse_counts(pipeline["shop_metrics"], "storefront_http_requests_total", ("method", "route"), {"traffic": "shadow"})
    client = {tuple(k.split(" ", 1)): float(v["requests"]) for k, v in summary["requests"].items()}
    # the isolation probe's tagged requests before the load (run.json) reached the shop as shadow traffic too
    probe = json.loads((pipeline["run_dir"] / "run.json").read_text())["preflight_requests"]
    assert probe, "the storefront's isolation probe sent nothing"
    for key, n in probe.items():
        k = tuple(key.split(" ", 1))
        client[k] = client.get(k, 0.0) + n
    assert client == server, {k: (client.get(k), server.get(k)) for k in set(client) | set(server) if client.get(k) != server.get(k)}


def test_every_panel_query_returns_data_from_the_real_run(pipeline) -> None:
    prom, end = pipeline["prom"], pipeline["end"]
    run_id = pipeline["summary"]["run_id"]
    at = end - 2  # inside the last scrape window; the exporter is gone once the run ended
    empty, checked = [], 0
    for name in DASHBOARD_FILES:
        board = json.loads((REPO / "dashboards/generated" / name).read_text())
        for title, expr in panel_queries(board, {"run_id": run_id, "name": ".*", "route": ".*", "traffic": ".*"}):
            checked += 1
            if not query(prom.url, expr.replace("[30s]", "[1m]"), at=at):
                empty.append(f"{name} / {title}: {expr}")
    # The smoke profile is a closed model: it has no target arrival rate, so that one
    # series is absent (the open-model tests cover it); every other panel must answer.
    open_model_only = [e for e in empty if "peakload_target_arrivals_per_second" in e]
    assert len(open_model_only) <= 1
    missing = [e for e in empty if e not in open_model_only]
    assert checked > 50 and not missing, "\n".join(missing)


def test_prometheus_p95_lies_in_the_bucket_of_the_suites_p95(pipeline) -> None:
    prom, summary = pipeline["prom"], pipeline["summary"]
    row = summary["requests"]["GET /api/products/{sku}"]
    ours = row["p95_ms"] / 1000
    window = f"{math.ceil(summary['duration_s']) + 30}s"
    expr = f'histogram_quantile(0.95, sum by (le) (increase(peakload_request_duration_seconds_bucket{{name="/api/products/{{sku}}",method="GET"}}[{window}])))'
    (sample,) = wait_for_data(prom.url, expr, timeout=5)
    theirs = float(sample["value"][1])
    edges = sorted(
        {
            float(s["metric"]["le"])
            for s in query(prom.url, "peakload_request_duration_seconds_bucket", at=pipeline["end"] - 2)
            if s["metric"]["le"] != "+Inf"
        }
    )
    lo = max([e for e in edges if e < ours], default=0.0)
    hi = min(e for e in edges if e >= ours)
    # increase() starts at the first scrape, so Prometheus sees all but the run's first second: when the
    # suite's p95 sits within 5 % of a bucket edge the two may straddle that edge (seen: 5.147 ms vs 4.998 ms
    # around 5 ms). Then the two buckets beside that edge are accepted — a wrong unit, edge set or merge
    # still lands elsewhere and fails.
    edge = min(edges, key=lambda e: abs(ours - e))
    if abs(ours - edge) <= 0.05 * edge:
        lo = max([e for e in edges if e < edge], default=0.0)
        hi = min([e for e in edges if e > edge], default=edge)
    assert lo <= theirs <= hi, (ours, theirs, lo, hi)
