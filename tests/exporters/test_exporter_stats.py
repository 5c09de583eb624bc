"""The stats store: merged worker deltas equal one store, HDR percentiles, SLO bucket edges, error types."""

from __future__ import annotations

import dataclasses
import json
import math
import random
import socket
from pathlib import Path

import pytest

from exporters.classify import classify_error
from exporters.histogram import (
    HDR_HIGHEST_US,
    HdrCounts,
    bucket_edges,
    decode_hdr,
    new_hdr,
)
from exporters.settings import ExporterSettings
from exporters.stats import BUSINESS_KEYS, StatsStore
from peakload.core import ConfigError, load_profile

REPO = Path(__file__).resolve().parents[2]
ROUTES = [("/api/home", "GET"), ("/api/products/{sku}", "GET"), ("/api/orders", "POST")]


def _samples(seed: int, n: int) -> list[tuple[str, str, float, int, str | None]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        name, method = rng.choice(ROUTES)
        seconds = rng.lognormvariate(math.log(0.08), 0.9)  # ~80 ms median, long tail
        roll = rng.random()
        if roll < 0.02:
            out.append((name, method, seconds, 503, "http_5xx"))
        elif roll < 0.03:
            out.append((name, method, seconds, None, "timeout"))
        else:
            out.append((name, method, seconds, 200, None))
    return out


def _record(store: StatsStore, samples) -> None:
    for name, method, seconds, status, err in samples:
        store.record(name, method, seconds, status, err)


def _wire(delta: dict) -> dict:
    # what crosses the process boundary: JSON-safe (Locust sends msgpack; JSON is stricter)
    return json.loads(json.dumps(delta, allow_nan=False))


def test_two_worker_deltas_merge_to_exactly_one_store(slo_spec) -> None:
    edges = bucket_edges(slo=slo_spec)
    a, b = _samples(1, 6000), _samples(2, 4000)
    single, w1, w2, master = (StatsStore(edges=edges) for _ in range(4))
    _record(single, a + b)
    # worker 1 reports twice, worker 2 once, interleaved as on a real master
    _record(w1, a[:2500])
    master.merge_delta(_wire(w1.drain_delta()))
    _record(w2, b)
    _record(w1, a[2500:])
    master.merge_delta(_wire(w2.drain_delta()))
    master.merge_delta(_wire(w1.drain_delta()))
    single.add_business("orders", 3)
    w2.add_business("orders", 3)
    master.merge_delta(_wire(w2.drain_delta()))

    merged_totals, single_totals = list(master.series_totals()), list(single.series_totals())
    assert [dataclasses.replace(t, sum_s=0.0) for t in merged_totals] == [dataclasses.replace(t, sum_s=0.0) for t in single_totals]
    for m, s in zip(merged_totals, single_totals, strict=True):
        assert m.sum_s == pytest.approx(s.sum_s, rel=1e-12)  # float addition order differs
    assert master.business_totals() == single.business_totals()
    merged, alone = master.drain_delta(), single.drain_delta()
    for m, s in zip(merged["requests"], alone["requests"], strict=True):
        assert (m["name"], m["count"], m["failures"], m["status"], m["errors"], m["buckets"]) == (
            s["name"], s["count"], s["failures"], s["status"], s["errors"], s["buckets"]
        )  # fmt: skip
        assert m["sum_s"] == pytest.approx(s["sum_s"], rel=1e-12)
        hm, hs = decode_hdr(m["hdr"]), decode_hdr(s["hdr"])
        assert hm.get_total_count() == hs.get_total_count() == s["count"]
        for p in (50, 90, 95, 99, 99.9, 100):
            assert hm.get_value_at_percentile(p) == hs.get_value_at_percentile(p)


def test_inline_hdr_counts_match_the_library() -> None:
    rng = random.Random(3)
    values = [0, 1, 2, 2047, 2048, 4095, 4096, 999_999, 1_000_000, HDR_HIGHEST_US]
    values += [int(rng.lognormvariate(10, 3)) % HDR_HIGHEST_US for _ in range(5000)]
    mine, lib = HdrCounts(), new_hdr()
    for v in values:
        mine.record_us(v)
        assert lib.record_value(v)
    ours = mine.to_histogram()
    assert list(ours.counts) == list(lib.counts)
    assert decode_hdr(mine.encode()).get_value_at_percentile(99) == lib.get_value_at_percentile(99)
    assert ours.get_total_count() == len(values)


def test_values_beyond_an_hour_are_kept_not_lost() -> None:
    store = StatsStore(edges=bucket_edges())
    store.record("/api/orders", "POST", 7200.0, None, "timeout")
    row = store.drain_delta()["requests"][0]
    assert decode_hdr(row["hdr"]).get_total_count() == 1
    assert row["buckets"][-1] == 1  # +Inf


def test_bucket_edges_include_every_slo_threshold(slo_spec) -> None:
    edges = bucket_edges(slo=slo_spec)
    thresholds = slo_spec.latency_thresholds()
    assert thresholds == [0.3, 2.0]  # profiles/slo.yaml; if this changes the assertion below still must hold
    assert set(thresholds) <= set(edges)
    assert list(edges) == sorted(set(edges))
    assert bucket_edges(extra=[0.42])[bucket_edges(extra=[0.42]).index(0.42)] == 0.42
    with pytest.raises(ValueError, match="finite and > 0"):
        bucket_edges(extra=[0.0])


def test_merge_refuses_a_worker_with_other_buckets() -> None:
    master = StatsStore(edges=(0.1, 0.3, 2.0))
    other = StatsStore(edges=(0.1, 0.25, 2.0))
    other.record("/api/home", "GET", 0.2, 200)
    with pytest.raises(ValueError, match="bucket edges differ"):
        master.merge_delta(other.drain_delta())
    assert list(master.series_totals()) == []


def test_unknown_business_key_is_named() -> None:
    store = StatsStore(edges=bucket_edges())
    with pytest.raises(ValueError, match="unknown business key 'order'.*'orders'"):
        store.add_business("order")
    for key in BUSINESS_KEYS:
        store.add_business(key)
    assert store.business_totals() == dict.fromkeys(BUSINESS_KEYS, 1)


def test_drain_resets_the_interval_but_not_the_totals() -> None:
    store = StatsStore(edges=bucket_edges())
    store.record("/api/home", "GET", 0.1, 200)
    assert store.drain_delta()["requests"][0]["count"] == 1
    assert store.drain_delta()["requests"] == []
    store.record("/api/home", "GET", 0.1, 200)
    (totals,) = store.series_totals()
    assert totals.count == 2 and totals.cumulative_buckets[-1] == 2


class CatchResponseError(Exception):
    """Same name as locust.exception.CatchResponseError (what resp.failure() raises)."""


class ReadTimeout(OSError):
    """Same name as requests' ReadTimeout."""


class RetriesExceeded(ConnectionError):
    """Like geventhttpclient's (FastHttpUser): wraps the real cause in ``original``."""

    def __init__(self, url: str, original: BaseException) -> None:
        super().__init__(url)
        self.original = original


@pytest.mark.parametrize(
    ("status", "exc", "expected"),
    [
        (404, RuntimeError("404 Client Error"), "http_4xx"),
        (409, CatchResponseError("sold out"), "http_4xx"),
        (503, CatchResponseError("HTTP 503"), "http_5xx"),
        (0, TimeoutError("timed out"), "timeout"),
        (None, ReadTimeout("read timed out"), "timeout"),
        (0, ConnectionRefusedError(111, "Connection refused"), "connection"),
        (0, ConnectionResetError(104, "reset by peer"), "connection"),
        (0, socket.gaierror(-2, "Name or service not known"), "connection"),
        (0, RetriesExceeded("http://x/", TimeoutError("timed out")), "timeout"),
        (0, RetriesExceeded("http://x/", ConnectionRefusedError(111, "refused")), "connection"),
        (200, CatchResponseError("orderId missing"), "body_check"),
        (200, "orderId missing", "body_check"),
        (200, ValueError("bad json"), "other"),
    ],
)
def test_error_types_are_bounded_and_sensible(status, exc, expected) -> None:
    assert classify_error(status, exc) == expected


def test_settings_from_the_smoke_profile_carry_its_slo_edges(slo_spec) -> None:
    profile = load_profile(REPO / "profiles" / "smoke.yaml")
    settings = ExporterSettings.from_profile(profile, run_id="r-1", metrics_port=9646)
    assert settings.profile_name == "smoke"
    assert set(slo_spec.latency_thresholds()) <= set(settings.edges)
    with pytest.raises(ConfigError, match="PEAKLOAD_METRICS_PORT: expected a port 0..65535 .*got 70000"):
        ExporterSettings.from_profile(profile, run_id="r-1", metrics_port=70000)
    with pytest.raises(ConfigError, match="PEAKLOAD_SNAPSHOT_INTERVAL"):
        ExporterSettings.from_profile(profile, run_id="r-1", snapshot_interval=0.01)


def _blob_of(n: int) -> str:
    h = HdrCounts()
    for i in range(n):
        h.record_us(1000 + i)
    return h.encode()


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda row, other: row.update(hdr=other["hdr"]), r"/api/orders: hdr: holds 1 values, expected the row's count 3"),
        (lambda row, other: row.update(hdr=row["hdr"][:-8]), r"/api/orders: hdr: not an encoded histogram"),
        (lambda row, other: row.update(hdr="bm90IGEgaGlzdG9ncmFt"), r"/api/orders: hdr: not an encoded histogram"),
        (lambda row, other: row.update(service_hdr=_blob_of(4)), r"/api/orders: service_hdr: holds 4 values, more than the row's count 3"),
    ],
    ids=["other-count", "truncated", "not-hdr", "service-more-than-count"],
)
def test_a_delta_whose_histogram_does_not_hold_its_row_is_refused_whole(spoil, message) -> None:
    """Every row's histograms are decoded and counted before anything merges: a bad last row leaves the store as it was."""
    worker = StatsStore(edges=bucket_edges())
    worker.record("/api/home", "GET", 0.05, 200, None, 0.04)
    for seconds in (0.1, 0.2, 0.3):
        worker.record("/api/orders", "POST", seconds, 201, None, seconds * 0.9)
    delta = _wire(worker.drain_delta())
    home, orders = delta["requests"]
    assert (home["name"], orders["name"]) == ("/api/home", "/api/orders")
    spoil(orders, home)
    master = StatsStore(edges=bucket_edges())
    with pytest.raises(ValueError, match=message):
        master.merge_delta(delta)
    assert master.drain_delta()["requests"] == []  # the good first row was not merged either
    assert list(master.series_totals()) == []
