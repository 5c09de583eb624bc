"""The command line: serve/gateway/reconcile, flag errors, fault injection, seed size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.storefront.sfproc import (
    ROOT,
    Client,
    metric_value,
    run,
    start_gateway_process,
    start_shop,
)


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "storefront", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "args",
    [
        ["serve", "--port", "notaport"],
        ["serve", "--port", "70000"],
        ["serve", "--skus", "-5"],
        ["serve", "--db", "mysql://x/y"],
        ["serve", "--gateway-failure-rate", "1.5"],
        ["serve", "--inject-latency", "/api/home"],
        ["serve", "--inject-latency", "/api/home=slow"],
        ["serve", "--run-header", "bad header"],
        ["reconcile"],
        ["frobnicate"],
    ],
)
def test_bad_flags_exit_2_with_an_error_line(args: list[str]) -> None:
    proc = _cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert "error:" in proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr


def test_default_serve_seeds_10k_skus_and_port_file(tmp_path: Path) -> None:
    db = tmp_path / "default.db"
    shop = start_shop(tmp_path, f"sqlite:///{db}")  # all defaults: 10,000 SKUs, 20 categories
    try:

        async def body() -> tuple[int, int, list]:
            async with Client(shop.url) as c:
                _, home = await c.get("/api/home")
                total = 0
                for cat in home["categories"]:
                    status, page = await c.get(f"/api/categories/{cat['id']}/products", params={"size": "1"})
                    total += page["total"]
                await c.login("user00200")  # the default 200 seeded users exist
                return len(home["categories"]), total, home["flash_sale"]

        n_categories, n_products, flash = run(body())
    finally:
        shop.stop()
    assert n_categories == 20
    assert n_products == 10_000 + 3  # regular SKUs + flash SKUs
    assert [(p["sku"], p["stock"]) for p in flash] == [("FLASH-0001", 50), ("FLASH-0002", 50), ("FLASH-0003", 50)]
    assert not list(tmp_path.glob("*.url")), "the port file is removed on clean shutdown"
    assert shop.proc.returncode == 0


def test_reseed_is_deterministic_and_reset_starts_over(tmp_path: Path) -> None:
    def catalogue(db: Path, *extra: str) -> list:
        shop = start_shop(tmp_path, f"sqlite:///{db}", "--skus", "50", "--users", "1", "--seed", "7", *extra)
        try:

            async def body() -> list:
                async with Client(shop.url) as c:
                    items = []
                    for cat in range(1, 21):
                        _, page = await c.get(f"/api/categories/{cat}/products", params={"size": "100"})
                        items += [p for p in page["items"] if not p["is_flash"]]
                    return sorted(items, key=lambda p: p["sku"])

            return run(body())
        finally:
            shop.stop()

    first = catalogue(tmp_path / "a.db")
    assert len(first) == 50 and first == catalogue(tmp_path / "b.db")
    assert first != catalogue(tmp_path / "c.db", "--seed", "8")
    # An existing database is not re-seeded; --reset rebuilds it.
    assert catalogue(tmp_path / "a.db", "--skus", "10") == first
    assert len(catalogue(tmp_path / "a.db", "--skus", "10", "--reset")) == 10


def test_reconcile_cli_matches_endpoint(tmp_path: Path) -> None:
    db = tmp_path / "rec.db"
    gateway = start_gateway_process(tmp_path, "--latency-ms", "1", "--failure-rate", "0")
    shop = start_shop(
        tmp_path, f"sqlite:///{db}", "--skus", "30", "--users", "3", "--password-iterations", "1", "--gateway-url", gateway.url
    )
    try:

        async def body() -> dict:
            async with Client(shop.url, run_id="cli-run") as c:
                await c.login("user00001")
                _, order = await c.checkout(items=[{"sku": "SKU-000003", "quantity": 2}])
                assert (await c.pay(order["order_id"]))[1]["status"] == "paid"
                return (await c.get("/api/admin/reconciliation", params={"run_id": "cli-run"}))[1]

        endpoint = run(body())
        proc = _cli("reconcile", "--db", f"sqlite:///{db}", "--run-id", "cli-run", "--gateway-url", gateway.url)
        offline = _cli("reconcile", "--db", f"sqlite:///{db}", "--run-id", "cli-run")  # no gateway: own records
    finally:
        shop.stop()
        gateway.stop()
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == endpoint
    assert endpoint["orders_paid"] == endpoint["charges_at_gateway"] == 1 and endpoint["consistent"] is True
    assert endpoint["gateway_checked"] is True
    # Without the gateway's ledger nobody checked the charges: the same shop figures, but not "consistent".
    assert offline.returncode == 0, offline.stderr
    assert json.loads(offline.stdout) == {**endpoint, "gateway_checked": False, "consistent": False}


def test_injected_latency_and_errors(tmp_path: Path) -> None:
    shop = start_shop(
        tmp_path,
        f"sqlite:///{tmp_path / 'f.db'}",
        "--skus",
        "20",
        "--users",
        "1",
        "--inject-latency",
        "/api/products/{sku}=0.2",
        "--inject-errors",
        "/api/search=1.0",
    )
    try:

        async def body() -> tuple[list[int], int, str, dict]:
            async with Client(shop.url) as c:
                codes = [(await c.get("/api/products/SKU-000001"))[0] for _ in range(3)]
                status, err = await c.get("/api/search", params={"q": "x"})
                assert err["error"] == "injected_fault"
                _, text = await c.get("/metrics")
                # Faults can be changed live (chaos drills): switch them off.
                status_put, faults = await c.put("/api/admin/faults", {"latency": {}, "errors": {}})
                assert status_put == 200
                assert (await c.get("/api/search", params={"q": "x"}))[0] == 200
                return codes, status, text, faults

        codes, search_status, text, faults = run(body())
    finally:
        shop.stop()
    assert codes == [200, 200, 200]
    assert search_status == 503
    assert faults == {"latency": {}, "errors": {}}
    # A 0.2 s sleep cannot finish faster than 0.2 s: every product request lands above the 0.1 s bucket.
    labels = {"route": "/api/products/{sku}", "method": "GET", "traffic": "real"}
    assert metric_value(text, "storefront_http_request_duration_seconds_count", **labels) == 3
    assert metric_value(text, "storefront_http_request_duration_seconds_bucket", le="0.1", **labels) == 0
    assert metric_value(text, "storefront_http_requests_total", route="/api/search", status_class="5xx") == 1


def test_admin_token_protects_admin_routes(tmp_path: Path) -> None:
    shop = start_shop(tmp_path, f"sqlite:///{tmp_path / 'adm.db'}", "--skus", "5", "--users", "1", "--admin-token", "t0p-secret")
    try:

        async def body() -> list[int]:
            async with aiohttp.ClientSession() as http:
                out = []
                for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer t0p-secret"}):
                    async with http.get(f"{shop.url}/api/admin/reconciliation", headers=headers) as resp:
                        out.append(resp.status)
                return out

        assert run(body()) == [401, 401, 200]
    finally:
        shop.stop()


def test_exit_with_parent_leaves_no_orphan(tmp_path: Path) -> None:
    """An orchestrator killed with SIGKILL cannot stop its shop; --exit-with-parent makes the shop notice."""
    port_file = tmp_path / "orphan.url"
    launcher = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, '-m', 'storefront', 'serve', '--port', '0', '--port-file', "
        f"{str(port_file)!r}, '--db', 'sqlite:///{tmp_path / 'o.db'}', '--skus', '5', '--users', '1', "
        "'--exit-with-parent'])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    parent = subprocess.Popen([sys.executable, "-c", launcher], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())  # type: ignore[union-attr]
        deadline = time.monotonic() + 60
        while not port_file.exists():
            assert time.monotonic() < deadline, "the shop never started"
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait(10)
    deadline = time.monotonic() + 30
    while _alive(child):
        assert time.monotonic() < deadline, f"storefront pid {child} outlived its killed parent"
        time.sleep(0.05)
    assert not port_file.exists()  # it shut down cleanly, not by being killed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # An exited child of the dead launcher is reaped by init; a zombie also counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False
