"""locustfile.py against the real storefront: every journey step, business counts vs. the shop's books.

Each run is a short headless Locust process (≤ ~10 s of load on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.load

ROOT = Path(__file__).resolve().parents[2]
Storefront = Any  # the ``storefront`` fixture's object (tests/scenarios/conftest.py)

JOURNEY_STEPS = {
    ("GET", "/api/home"),
    ("GET", "/api/categories/{category_id}/products"),
    ("GET", "/api/search"),
    ("GET", "/api/products/{sku}"),
    ("POST", "/api/sessions"),
    ("PUT", "/api/cart/items/{sku}"),
    ("DELETE", "/api/cart/items/{sku}"),
    ("GET", "/api/cart"),
    ("POST", "/api/orders"),
    ("POST", "/api/orders/{order_id}/payment"),
    ("GET", "/api/orders/{order_id}"),
}


def write_profile(path: Path, sf: Storefront, **overrides: Any) -> Path:
    profile: dict[str, Any] = {
        "version": "peakload/v1",
        "name": "scenario-test",
        "seed": 5,
        "slo": None,
        "target": {"categories": 20, "sku_format": "SKU-{n:06d}", "users": sf.users, "password": sf.password},
        "shape": {
            "stages": [
                {"kind": "ramp", "duration": "2s", "users": 10},
                {"kind": "steady", "duration": "8s", "users": 10},
            ]
        },
        "users": {"shopper": 1},
        "journey": {
            "think_time": {"min": 0.05, "max": 0.2},
            "session_actions": {"min": 2, "max": 4},
            "ratios": {
                "search": 0.4,
                "view_to_cart": 0.6,
                "cart_edit": 0.4,
                "cart_to_checkout": 0.9,
                "checkout_to_pay": 1.0,
                "coupon": 0.5,
            },
        },
    }
    profile.update(overrides)
    path.write_text(yaml.safe_dump(profile))
    return path


def run_locust(tmp: Path, sf: Storefront, profile: Path, run_id: str, *, timeout: float = 90) -> dict[str, Any]:
    env = {
        **os.environ,
        "PEAKLOAD_PROFILE": str(profile),
        "PEAKLOAD_RUN_ID": run_id,
        "PEAKLOAD_RESULTS_DIR": str(tmp / "results"),
        "PEAKLOAD_SNAPSHOT_INTERVAL": "1",
    }
    proc = subprocess.run(
        # --stop-timeout: users finish the request in flight when the shape ends, so
        # what the generator counted and what the shop booked can be compared exactly.
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "locustfile.py",
            "--headless",
            "--host",
            sf.url,
            "--json-file",
            str(tmp / "stats"),
            "--stop-timeout",
            "10s",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert (tmp / "stats.json").exists(), proc.stderr[-3000:]
    rows = json.loads((tmp / "stats.json").read_text())
    stats = {(r["method"], r["name"]): (r["num_requests"], r["num_failures"]) for r in rows}
    business: dict[str, int] = {}
    users_seen = []
    for line in open(tmp / "results" / "snapshots.jsonl"):
        obj = json.loads(line)
        for k, v in obj.get("business", {}).items():
            business[k] = business.get(k, 0) + v
        if "users" in obj:
            users_seen.append(obj["users"])
    with urllib.request.urlopen(f"{sf.url}/api/admin/reconciliation?run_id={run_id}", timeout=10) as resp:
        books = json.load(resp)
    return {"proc": proc, "stats": stats, "business": business, "books": books, "users": users_seen}


def test_every_journey_step_runs_and_business_counts_match_the_shop(storefront: Storefront, tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "p.yaml", storefront)
    out = run_locust(tmp_path, storefront, profile, "scn-journeys-1")
    proc, stats, business, books = out["proc"], out["stats"], out["business"], out["books"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    missing = JOURNEY_STEPS - set(stats)
    assert not missing, f"journey steps never ran: {sorted(missing)}"
    requests = sum(n for n, _ in stats.values())
    failures = sum(f for _, f in stats.values())
    assert failures / requests < 0.01, {k: v for k, v in stats.items() if v[1]}
    # the shape ended the run by itself, after reaching its level
    assert max(out["users"]) == 10
    # what the load generator counted is what the shop booked for this run
    assert business["orders"] == books["orders_created"] > 0
    assert business["payments_success"] == books["payments_succeeded"]
    assert business["payments_declined"] == books["payments_declined"]
    assert books["consistent"] is True and books["oversold_units"] == 0
    assert business["product_views"] == stats[("GET", "/api/products/{sku}")][0] - stats[("GET", "/api/products/{sku}")][1]
    assert business["cart_adds"] > 0


def test_flash_sale_sells_exactly_the_stock_once(storefront: Storefront, tmp_path: Path) -> None:
    buyers = 40
    profile = write_profile(
        tmp_path / "flash.yaml",
        storefront,
        shape={"stages": [{"kind": "ramp", "duration": "2s", "users": buyers}, {"kind": "steady", "duration": "6s", "users": buyers}]},
        users={"flash_buyer": 1},
        flash_sale={"sku": "FLASH-0002", "at": "4s", "retries": 2},
    )
    out = run_locust(tmp_path, storefront, profile, "scn-flash-1")
    proc, stats, business, books = out["proc"], out["stats"], out["business"], out["books"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert business["flash_won"] == storefront.flash_stock
    assert business["flash_sold_out"] == buyers - storefront.flash_stock
    assert business["flash_error"] == 0
    assert stats[("POST", "/api/orders")] == (buyers, 0)  # sold-out answers are not failures
    assert books["oversold_units"] == 0 and books["duplicate_orders"] == 0 and books["duplicate_charges"] == 0
    assert [s["units_sold"] for s in books["skus"] if s["sku"] == "FLASH-0002"] == [storefront.flash_stock]
    assert business["payments_success"] + business["payments_declined"] == storefront.flash_stock


def test_run_time_flag_caps_the_profile_shape(storefront: Storefront, tmp_path: Path) -> None:
    profile = write_profile(
        tmp_path / "long.yaml",
        storefront,
        shape={"stages": [{"kind": "steady", "duration": "10m", "users": 2}]},
        journey={"think_time": {"min": 0.2, "max": 0.5}},
    )
    env = {**os.environ, "PEAKLOAD_PROFILE": str(profile), "PEAKLOAD_RUN_ID": "scn-cap-1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "locustfile.py",
            "--headless",
            "--host",
            storefront.url,
            "-t",
            "3s",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # a 10-minute profile stops at --run-time instead of hanging until the subprocess timeout
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert any(row["name"] == "/api/products/{sku}" and row["num_requests"] > 0 for row in json.loads(proc.stdout))


def test_single_user_debug_entry_point_prints_requests(storefront: Storefront, tmp_path: Path) -> None:
    profile = write_profile(tmp_path / "p.yaml", storefront)
    env = {**os.environ, "PEAKLOAD_PROFILE": str(profile), "PEAKLOAD_RUN_ID": "scn-single-1", "PYTHONUNBUFFERED": "1"}
    out_path = tmp_path / "single.out"
    with open(out_path, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scenarios.users", "--host", storefront.url], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while "/api/products/{sku}" not in out_path.read_text():
            assert proc.poll() is None, out_path.read_text()[-3000:]
            assert time.monotonic() < deadline, out_path.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(10)
    text = out_path.read_text()
    assert "/api/sessions" in text and "/api/home" in text


def test_web_ui_swarm_uses_the_profile_shape(storefront: Storefront, tmp_path: Path) -> None:
    import socket
    import urllib.parse

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        web_port = sock.getsockname()[1]
    profile = write_profile(tmp_path / "p.yaml", storefront)
    env = {**os.environ, "PEAKLOAD_PROFILE": str(profile), "PEAKLOAD_RUN_ID": "scn-web-1", "PEAKLOAD_RESULTS_DIR": "none"}
    log = open(tmp_path / "web.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "locustfile.py",
            "--host",
            storefront.url,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(web_port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{web_port}"

    def get_json(path: str) -> Any:
        with urllib.request.urlopen(base + path, timeout=5) as resp:
            return json.load(resp)

    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "web.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(base + "/", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "web UI did not come up within 60 s"
                time.sleep(0.1)
        form = urllib.parse.urlencode({"user_count": 1, "spawn_rate": 1, "host": storefront.url}).encode()
        with urllib.request.urlopen(base + "/swarm", data=form, timeout=5) as resp:
            answer = json.load(resp)
        assert answer["success"] and "ProfileShape" in answer["message"]
        deadline = time.monotonic() + 60
        while True:
            stats = get_json("/stats/requests")
            views = sum(s["num_requests"] for s in stats["stats"] if s["name"] == "/api/products/{sku}")
            if stats["user_count"] == 10 and views > 0:
                break  # the profile's 10 users, not the form's 1
            assert time.monotonic() < deadline, stats
            time.sleep(0.2)
        urllib.request.urlopen(urllib.request.Request(base + "/stop", method="POST"), timeout=5).close()
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
