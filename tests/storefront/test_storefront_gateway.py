"""The payment-gateway simulator on a real socket: idempotent charges, declines, outages."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from storefront import GatewayConfig, GatewaySimulator, start_gateway
from tests.storefront.sfproc import run


async def _with_gateway(cfg: GatewayConfig, fn: Any) -> Any:
    runner, url = await start_gateway(cfg)
    try:
        async with aiohttp.ClientSession() as http:
            return await fn(http, url)
    finally:
        await runner.cleanup()


async def _charge(
    http: aiohttp.ClientSession, url: str, key: str, order_id: str = "o1", amount: int = 500, run_id: str | None = None
) -> tuple[int, dict]:
    async with http.post(
        f"{url}/charges", json={"order_id": order_id, "amount_cents": amount, "run_id": run_id}, headers={"Idempotency-Key": key}
    ) as resp:
        return resp.status, await resp.json()


def test_overlapping_requests_with_one_key_charge_once() -> None:
    async def body(http: aiohttp.ClientSession, url: str) -> None:
        results = await asyncio.gather(*[_charge(http, url, "key-1") for _ in range(20)])
        assert {b["charge_id"] for _, b in results} and len({b["charge_id"] for _, b in results}) == 1
        assert sorted(s for s, _ in results) == [200] * 19 + [201]
        assert sum(1 for _, b in results if not b["replayed"]) == 1
        async with http.get(f"{url}/charges", params={"order_id": "o1"}) as resp:
            listing = await resp.json()
        assert listing["succeeded"] == 1 and len(listing["charges"]) == 1
        status, err = await _charge(http, url, "key-1", amount=999)
        assert (status, err["error"]) == (422, "idempotency_key_reused")

    run(_with_gateway(GatewayConfig(latency_ms=20, jitter_ms=5, failure_rate=0), body))


def test_declines_are_remembered_and_counted_per_run() -> None:
    async def body(http: aiohttp.ClientSession, url: str) -> None:
        first = await _charge(http, url, "d-1", order_id="o2", run_id="r1")
        again = await _charge(http, url, "d-1", order_id="o2", run_id="r1")
        assert first[1]["status"] == again[1]["status"] == "declined"
        await _charge(http, url, "d-2", order_id="o3", run_id="r2")
        async with http.get(f"{url}/charges/summary", params={"run_id": "r1"}) as resp:
            assert await resp.json() == {
                "run_id": "r1",
                "succeeded": 0,
                "declined": 1,
                "duplicate_charges": 0,
                "orders_with_duplicate_charges": 0,
            }
        async with http.get(f"{url}/charges/summary") as resp:
            assert (await resp.json())["declined"] == 2

    run(_with_gateway(GatewayConfig(latency_ms=0, jitter_ms=0, failure_rate=1.0), body))


def test_live_config_outage_and_bad_requests() -> None:
    async def body(http: aiohttp.ClientSession, url: str) -> None:
        async with http.put(f"{url}/admin/config", json={"outage": True}) as resp:
            assert resp.status == 200
        assert (await _charge(http, url, "x"))[0] == 503
        async with http.put(f"{url}/admin/config", json={"outage": False, "failure_rate": 2}) as resp:
            assert resp.status == 400
        async with http.put(f"{url}/admin/config", json={"outage": False}) as resp:
            assert resp.status == 200
        assert (await _charge(http, url, "x"))[0] == 201
        async with http.post(f"{url}/charges", json={"order_id": "o", "amount_cents": 1}) as resp:
            assert resp.status == 400  # no Idempotency-Key
        async with http.post(f"{url}/charges", data=b"nope", headers={"Idempotency-Key": "y"}) as resp:
            assert resp.status == 400
        assert (await _charge(http, url, "z", amount=-1))[0] == 400

    run(_with_gateway(GatewayConfig(latency_ms=0, jitter_ms=0, failure_rate=0), body))


def test_decline_decision_is_a_function_of_seed_and_key() -> None:
    async def decisions(seed: int) -> list[str]:
        sim = GatewaySimulator(GatewayConfig(latency_ms=0, jitter_ms=0, failure_rate=0.5, seed=seed))
        return [(await sim.charge(key=f"k{i}", order_id=f"o{i}", amount_cents=1))[0].status for i in range(200)]

    a, b, c = run(decisions(1)), run(decisions(1)), run(decisions(2))
    assert a == b and a != c
    assert 60 < a.count("declined") < 140  # about half, by construction of the hash
