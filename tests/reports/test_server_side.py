"""Server-side figures: computed from scrapes (peakload.core.serverside), sampled during real runs, judged by `server:` thresholds.

The unit tests feed the figure arithmetic expositions written by prometheus-client itself; the live ones run
`peakload run` against the embedded storefront and check the shop's own count against the client's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from peakload.core import load_profile
from peakload.core.serverside import FigureSpec, evaluate, parse_exposition, read_server
from tests.command import only_dir, peakload


class Shop:
    """A registry shaped like a shop's: requests by status class, a latency histogram, a pool gauge."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("shop_requests", "", ["status_class"], registry=self.registry)
        self.latency = Histogram("shop_latency_seconds", "", buckets=(0.1, 0.2, 0.4, 0.8), registry=self.registry)
        self.pool = Gauge("shop_pool_in_use", "", ["db"], registry=self.registry)
        self.pool_max = Gauge("shop_pool_max", "", registry=self.registry)

    def scrape(self) -> dict:
        return parse_exposition(generate_latest(self.registry).decode())


FIGURES = {
    "rps": FigureSpec(metric="shop_requests_total", kind="rate"),
    "errors": FigureSpec(metric="shop_requests_total", labels={"status_class": "5xx"}, kind="ratio", of="shop_requests_total"),
    "not_2xx": FigureSpec(metric="shop_requests_total", labels={"status_class": "~[345]xx"}, kind="ratio", of="shop_requests_total"),
    "p50": FigureSpec(metric="shop_latency_seconds", kind="quantile", q=0.5),
    "p90": FigureSpec(metric="shop_latency_seconds", kind="quantile", q=0.9),
    "pool_max_in_use": FigureSpec(metric="shop_pool_in_use", agg="max"),
    "pool_sum": FigureSpec(metric="shop_pool_in_use"),
    "pool_share": FigureSpec(metric="shop_pool_in_use", labels={"db": "a"}, kind="ratio", of="shop_pool_max"),
    "absent": FigureSpec(metric="nothing_total", kind="rate"),
}


def test_rates_ratios_quantiles_and_gauges_of_one_interval() -> None:
    shop = Shop()
    shop.requests.labels(status_class="2xx").inc(7)  # before the interval: not counted in it
    shop.latency.observe(5.0)
    before = shop.scrape()
    shop.requests.labels(status_class="2xx").inc(30)
    shop.requests.labels(status_class="5xx").inc(6)
    shop.requests.labels(status_class="4xx").inc(4)
    for v in [0.05] * 10 + [0.15] * 20 + [0.3] * 10:  # 40 observations in the interval
        shop.latency.observe(v)
    shop.pool.labels(db="a").set(3)
    shop.pool.labels(db="b").set(5)
    shop.pool_max.set(12)
    got = evaluate(FIGURES, before, shop.scrape(), seconds=4.0)
    assert got["rps"] == pytest.approx(40 / 4.0)
    assert got["errors"] == pytest.approx(6 / 40)
    assert got["not_2xx"] == pytest.approx(10 / 40)
    # histogram_quantile: rank 20 of 40 falls in (0.1, 0.2] holding ranks 11..30: 0.1 + 0.1 * (20 - 10) / 20
    assert got["p50"] == pytest.approx(0.15)
    # rank 36 in (0.2, 0.4] holding 31..40: 0.2 + 0.2 * (36 - 30) / 10 (the 5 s observation before is not in the interval)
    assert got["p90"] == pytest.approx(0.32)
    assert got["pool_max_in_use"] == 5 and got["pool_sum"] == 8
    assert got["pool_share"] == pytest.approx(3 / 12)
    assert got["absent"] is None  # a series the target does not have is n/a, never 0


def test_no_5xx_series_yet_is_a_ratio_of_0_and_no_traffic_is_n_a() -> None:
    shop = Shop()
    shop.requests.labels(status_class="2xx").inc(3)
    first = shop.scrape()
    shop.requests.labels(status_class="2xx").inc(10)
    got = evaluate(FIGURES, first, shop.scrape(), seconds=2.0)
    assert got["errors"] == 0.0  # the counter exists, no 5xx child: nothing failed
    again = shop.scrape()
    idle = evaluate(FIGURES, again, shop.scrape(), seconds=2.0)
    assert idle["rps"] == 0.0
    assert idle["errors"] is None and idle["p50"] is None  # nothing served in the interval: no ratio, no quantile


def test_a_counter_reset_counts_from_zero_and_the_first_interval_has_no_rate() -> None:
    shop = Shop()
    shop.requests.labels(status_class="2xx").inc(100)
    before = shop.scrape()
    restarted = Shop()  # the shop restarted: its counters start again
    restarted.requests.labels(status_class="2xx").inc(8)
    got = evaluate(FIGURES, before, restarted.scrape(), seconds=2.0)
    assert got["rps"] == pytest.approx(8 / 2.0)
    assert evaluate(FIGURES, None, restarted.scrape(), seconds=2.0)["rps"] is None


@pytest.mark.parametrize(
    ("server", "needle"),
    [
        ({"figures": {"x": {"metric": "a_total", "kind": "ratio"}}, "endpoints": ["http://127.0.0.1:1/m"]}, "needs `of`"),
        ({"figures": {"x": {"metric": "a", "kind": "quantile"}}, "endpoints": ["http://127.0.0.1:1/m"]}, "needs `q`"),
        ({"figures": {"x": {"metric": "a"}}}, "figures need endpoints"),
        ({"figures": {"x": {"metric": "a", "labels": {"s": "~[5"}}}, "endpoints": ["http://127.0.0.1:1/m"]}, "not a regular expression"),
        ({"interval": "100ms"}, "expected 0.5s to 1h"),
        ({"figures": {"Bad-Name": {"metric": "a"}}, "endpoints": ["http://127.0.0.1:1/m"]}, "server.figures"),
    ],
)
def test_a_bad_server_section_is_refused_naming_the_field(tmp_path: Path, server: dict, needle: str) -> None:
    body = {"version": "peakload/v1", "name": "bad-server", "slo": None, "shape": _shape(), "server": server}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(body))
    res = peakload("run", "--profile", str(path), "--results", str(tmp_path / "r"), "--quiet", timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert needle in res.stderr and "server" in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()


def _shape() -> dict:
    return {"stages": [{"name": "steady", "kind": "steady", "duration": "2s", "users": 1}]}


def _arrivals() -> dict:
    return {
        "kind": "constant",
        "stages": [{"name": "warm", "duration": "4s", "rate": 2}, {"name": "peak", "duration": "4s", "rate": 8}],
        "journey": "shopper",
        "pool": 40,
    }


def _write(tmp_path: Path, name: str, **extra: object) -> Path:
    body = {"version": "peakload/v1", "name": name, "slo": None, "embedded": {"skus": 200}, "arrivals": _arrivals(), **extra}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    load_profile(path)
    return path


@pytest.mark.load
def test_a_run_samples_the_shops_own_count_and_server_thresholds_judge_every_interval(tmp_path: Path) -> None:
    server = {
        "endpoints": ["{target}/metrics"],
        "figures": {
            "run_rps": {"metric": "storefront_http_requests_total", "kind": "rate", "labels": {"traffic": "shadow"}, "unit": "1/s"},
            "p95": {"metric": "storefront_http_request_duration_seconds", "kind": "quantile", "q": 0.95, "unit": "s"},
            "in_use": {"metric": "storefront_db_pool_connections_in_use", "agg": "max", "unit": "connections"},
        },
    }
    thresholds = {
        "all": ["error_ratio < 5%"],
        "server": [
            "p95 < 1ms",  # the shop's own p95 is above a millisecond in some interval: fails
            "in_use < 1000",
            {"expr": "run_rps > 1", "during": "peak"},  # the peak sends 8 visits/s of several requests each
            "run_rps < 100000",
        ],
    }
    profile = _write(tmp_path, "server-side", server=server, thresholds=thresholds)
    res = peakload("run", "--profile", str(profile), "--results", str(tmp_path / "r"), "--quiet", timeout=180)
    assert res.returncode == 1, res.stdout + res.stderr[-2000:]
    run = only_dir(tmp_path / "r")
    header, rows, problems = read_server(run / "server.jsonl")
    assert not problems and header["endpoints"][0].endswith("/metrics") and "{target}" not in header["endpoints"][0]
    s = json.loads((run / "summary.json").read_text())
    # every request of the run reached the shop, which counted it under the run's header (shadow traffic): the
    # sampled increases add up to the client's request count exactly
    served = sum(r["figures"]["run_rps"] * (r["t_end"] - r["t_start"]) for r in rows if r["figures"]["run_rps"] is not None)
    print(f"client requests {s['total']['requests']}, the shop's count from the sampled rates {served:.6f}, {len(rows)} intervals")
    assert s["total"]["requests"] > 50
    assert math.isclose(served, s["total"]["requests"], abs_tol=1e-3)
    # the lines sit on the snapshot boundaries (the same wall-clock multiples of the interval)
    snapshot_ends = {json.loads(x).get("t_end") for x in (run / "snapshots.jsonl").read_text().splitlines()}
    assert sum(r["t_end"] in snapshot_ends for r in rows) >= len(rows) - 2
    verdicts = {t["id"]: t for t in s["thresholds"] if t["scope"] == "server"}
    p95 = next(t for t in verdicts.values() if t["metric"] == "p95")
    assert (
        p95["passed"] is False and p95["unit"] == "s" and p95["observed"] == max(r["figures"]["p95"] for r in rows if r["figures"]["p95"])
    )
    assert "worst interval" in p95["message"]
    peak = next(t for t in verdicts.values() if t["window"] == "during peak")
    assert peak["passed"] is True and peak["observed"] > 1
    assert all(t["passed"] for t in verdicts.values() if t["metric"] in ("in_use",) or t["id"].endswith("< 100000"))
    fig = s["server"]["figures"]["run_rps"]
    assert fig["samples"] == len([r for r in rows if r["figures"]["run_rps"] is not None]) and fig["unit"] == "1/s"
    html = (run / "report.html").read_text()
    assert "id='server-side'" in html and "chart-server-" in html and "id='server-figures'" in html
    assert "### Server side" in (run / "summary.md").read_text()


@pytest.mark.load
def test_the_storefront_defaults_and_a_failing_endpoint_are_n_a_not_zero(tmp_path: Path) -> None:
    """Without a `server` section a run against the storefront samples its /metrics; an endpoint that answers 404
    leaves its figures n/a with the reason, and the run goes on."""
    profile = _write(tmp_path, "defaults", thresholds={"all": ["error_ratio < 5%"], "server": ["server_error_ratio < 1%"]})
    res = peakload("run", "--profile", str(profile), "--results", str(tmp_path / "a"), "--quiet", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    s = json.loads((only_dir(tmp_path / "a") / "summary.json").read_text())
    figs = s["server"]["figures"]
    assert s["server"]["source"] == "storefront defaults"
    assert {"server_rps", "server_error_ratio", "server_p95", "db_pool_in_use", "db_pool_utilisation", "cache_hit_ratio", "cpu"} <= set(
        figs
    )
    assert figs["server_rps"]["max"] > 1 and figs["cpu"]["max"] > 0 and figs["db_pool_utilisation"]["samples"] > 0
    (judged,) = [t for t in s["thresholds"] if t["scope"] == "server"]
    assert judged["passed"] is True and judged["observed"] == 0.0

    broken = _write(
        tmp_path,
        "broken-endpoint",
        server={
            "endpoints": ["{target}/no-such-metrics"],
            "figures": {"rps": {"metric": "storefront_http_requests_total", "kind": "rate"}},
        },
        thresholds={"all": ["error_ratio < 5%"], "server": ["rps > 0"]},
    )
    res = peakload("run", "--profile", str(broken), "--results", str(tmp_path / "b"), "--quiet", timeout=180)
    assert res.returncode == 1, res.stdout + res.stderr[-2000:]  # a figure asked for and never given fails, never passes
    s = json.loads((only_dir(tmp_path / "b") / "summary.json").read_text())
    assert s["server"]["figures"]["rps"]["samples"] == 0 and s["server"]["figures"]["rps"]["max"] is None
    assert any("HTTP 404" in e for e in s["server"]["errors"])
    (judged,) = [t for t in s["thresholds"] if t["scope"] == "server"]
    assert judged["passed"] is False and "n/a in every interval" in judged["message"]


@pytest.mark.parametrize(
    ("server", "thresholds", "needle"),
    [
        (None, {"server": ["nope < 1"]}, "no server figure 'nope'"),
        (None, {"server": [{"expr": "server_p95 < 1s", "abort": True}]}, "abort is not available"),
        ({"enabled": False}, {"server": ["server_p95 < 1s"]}, "samples no server-side figures"),
        ({"endpoints": ["http://10.1.2.3:9100/metrics"], "figures": {"x": {"metric": "a"}}}, {}, "server.endpoints[0]"),
        ({"prometheus": {"url": "http://192.0.2.1:9090", "queries": {"x": "up"}}}, {}, "server.prometheus.url"),
    ],
)
def test_bad_server_thresholds_and_endpoints_are_one_line_exit_2(
    tmp_path: Path, server: dict | None, thresholds: dict, needle: str
) -> None:
    extra: dict = {"thresholds": {"all": ["error_ratio < 5%"], **thresholds}}
    if server is not None:
        extra["server"] = server
    body = {"version": "peakload/v1", "name": "bad", "slo": None, "embedded": {"skus": 200}, "arrivals": _arrivals(), **extra}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    res = peakload("run", "--profile", str(path), "--results", str(tmp_path / "r"), "--quiet", timeout=120)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert needle in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.load
def test_figures_from_a_real_prometheus_by_promql_and_from_a_third_party_exporter(tmp_path: Path) -> None:
    """An exporter of the test's own (prometheus-client's HTTP server) ticks 20 times a second in two series; a real
    Prometheus scrapes it every second. The run asks Prometheus for the summed rate (PromQL) and scrapes the exporter
    directly; a query that leaves two series is n/a with the reason, never a silent pick of one."""
    import threading
    import time

    from prometheus_client import start_http_server

    from dashboards.prometheus import running_prometheus
    from peakload.core.net import free_port

    registry = CollectorRegistry()
    ticks = Counter("fixture_ticks", "", ["side"], registry=registry)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.1):  # 10 per second on each side: 20 per second in all
            ticks.labels(side="a").inc()
            ticks.labels(side="b").inc()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    try:
        with running_prometheus(tmp_path / "prom", jobs={"fixture": [f"127.0.0.1:{port}"]}) as prom:
            time.sleep(3)  # a few scrapes before the run
            server_section = {
                "endpoints": [f"http://127.0.0.1:{port}/metrics"],
                "figures": {"ticks_scraped": {"metric": "fixture_ticks_total", "kind": "rate", "unit": "1/s"}},
                "prometheus": {
                    "url": prom.url,
                    "queries": {"ticks_promql": "sum(rate(fixture_ticks_total[5s]))", "two_series": "rate(fixture_ticks_total[5s])"},
                    "units": {"ticks_promql": "1/s"},
                },
            }
            thresholds = {"all": ["error_ratio < 5%"], "server": ["ticks_promql > 5", "ticks_scraped < 40"]}
            profile = _write(tmp_path, "promql", server=server_section, thresholds=thresholds)
            res = peakload("run", "--profile", str(profile), "--results", str(tmp_path / "r"), "--quiet", timeout=180)
    finally:
        stop.set()
        server.shutdown()
    assert res.returncode == 0, res.stdout + res.stderr[-2000:]
    run = only_dir(tmp_path / "r")
    _header, rows, problems = read_server(run / "server.jsonl")
    assert not problems and len(rows) >= 4
    promql = [r["figures"]["ticks_promql"] for r in rows]
    scraped = [r["figures"]["ticks_scraped"] for r in rows[1:-1]]  # whole intervals (the first and last may be short)
    print(f"PromQL sum(rate) per interval {promql}; scraped rate {scraped}")
    # Prometheus gives a rate once its 5 s window holds two scrapes: n/a before that (never 0), then 20/s within jitter
    assert promql[-3:] and all(v is not None and 14 <= v <= 26 for v in promql[-3:]), promql
    assert all(v is None or v > 0 for v in promql), promql
    assert all(v is not None and 14 <= v <= 26 for v in scraped), scraped
    assert all(r["figures"]["two_series"] is None for r in rows)
    assert any("gives 2 series" in e for r in rows for e in r["errors"])
    s = json.loads((run / "summary.json").read_text())
    assert s["server"]["prometheus"] == prom.url and s["server"]["figures"]["ticks_promql"]["unit"] == "1/s"
    assert all(t["passed"] for t in s["thresholds"] if t["scope"] == "server")
