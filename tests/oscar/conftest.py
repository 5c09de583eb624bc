"""Fixtures: one real django-oscar shop (tests/oscar/shop.py) for the whole test session, stopped at its end."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = Path(__file__).resolve().parents[2]
if str(_ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) from a fresh clone
    sys.path.insert(0, str(_ROOT))

from tests.oscar.shop import OscarShop  # noqa: E402


@pytest.fixture(scope="session")
def oscar_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OscarShop]:
    """A seeded shop (240 products, 8 categories, 400 users, FLASH-0001 with 20 units) under gunicorn, 2 workers.

    Shared by every test of the session: a test that needs a state (stock, order count) reads it
    first and asserts on the difference.
    """
    with OscarShop(tmp_path_factory.mktemp("oscar"), flash_stock=20) as shop:
        yield shop
