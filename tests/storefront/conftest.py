"""Fixtures: real storefront / gateway processes on loopback, PostgreSQL clusters."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) from a fresh clone
    sys.path.insert(0, str(_ROOT))

from tests.pgserver import pg_cluster, pg_url  # noqa: E402,F401  (fixtures re-exported for this folder)
from tests.storefront.sfproc import (  # noqa: E402
    FAST_ARGS,
    ShopProcess,
    start_gateway_process,
    start_shop,
)


@pytest.fixture(scope="session")
def gateway_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShopProcess]:
    """A standalone gateway simulator (1 ms latency, no declines)."""
    proc = start_gateway_process(tmp_path_factory.mktemp("gateway"), "--latency-ms", "1", "--jitter-ms", "0", "--failure-rate", "0")
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.platform)])
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, gateway_proc: ShopProcess) -> Iterator[ShopProcess]:
    """One small storefront shared by the API tests (each test uses its own users/keys).

    Parametrised: every test using it runs against SQLite and against PostgreSQL.
    """
    tmp = tmp_path_factory.mktemp(f"shop-{request.param}")
    if request.param == "sqlite":
        db_url = f"sqlite:///{tmp / 'shop.db'}"
    else:
        cluster = request.getfixturevalue("pg_cluster")
        db_url = cluster.url(cluster.create_database())
    proc = start_shop(tmp, db_url, *FAST_ARGS, "--gateway-url", gateway_proc.url)
    try:
        yield proc
    finally:
        proc.stop()
