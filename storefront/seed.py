"""Deterministic catalogue/users seed and database initialisation."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

import sqlalchemy as sa

from . import db as schema
from .auth import hash_password
from .config import SeedConfig
from .db import Database

__all__ = ["generate_catalogue", "generate_users", "init_database", "flash_sku", "product_sku", "username_for"]

_CATEGORY_NAMES = [
    "Phones",
    "Laptops",
    "Headphones",
    "Cameras",
    "Watches",
    "Shoes",
    "Jackets",
    "Skincare",
    "Snacks",
    "Toys",
    "Books",
    "Kitchen",
    "Furniture",
    "Sports",
    "Bags",
    "Jewelry",
    "Pet Supplies",
    "Baby",
    "Tea",
    "Home Appliances",
]
_ADJECTIVES = [
    "Classic",
    "Smart",
    "Ultra",
    "Compact",
    "Deluxe",
    "Eco",
    "Pro",
    "Lite",
    "Premium",
    "Vintage",
    "Wireless",
    "Portable",
    "Silk",
    "Golden",
    "Crystal",
    "Urban",
    "Cozy",
    "Turbo",
    "Mini",
    "Grand",
]
_NOUNS = [
    "Edition",
    "Set",
    "Pack",
    "Bundle",
    "Series",
    "Collection",
    "Kit",
    "Model",
    "Gift Box",
    "Special",
]
_COLOURS = ["Red", "Blue", "Black", "White", "Green", "Pink", "Grey", "Silver", "Navy", "Beige"]
# Any advisory-lock key works as long as every replica uses the same one.
_PG_SEED_LOCK = 7_431_111


def product_sku(n: int) -> str:
    """SKU of the n-th (1-based) regular product: ``SKU-000001``."""
    return f"SKU-{n:06d}"


def flash_sku(n: int) -> str:
    """SKU of the n-th (1-based) flash-sale product: ``FLASH-0001``."""
    return f"FLASH-{n:04d}"


def username_for(n: int) -> str:
    """Username of the n-th (1-based) seeded user: ``user00001``."""
    return f"user{n:05d}"


def generate_catalogue(cfg: SeedConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Category and product rows; the same ``cfg`` always gives the same rows.

    Usage: ``cats, prods = generate_catalogue(SeedConfig(skus=100, seed=1))``
    """
    rng = random.Random(cfg.seed)
    cats = [{"id": i + 1, "name": _CATEGORY_NAMES[i] if i < len(_CATEGORY_NAMES) else f"Category {i + 1}"} for i in range(cfg.categories)]
    rows: list[dict[str, Any]] = []
    for n in range(1, cfg.skus + 1):
        cat = cats[(n - 1) % len(cats)]
        stock = rng.randint(cfg.stock_min, cfg.stock_max)
        name = f"{rng.choice(_ADJECTIVES)} {cat['name']} {rng.choice(_NOUNS)} {rng.choice(_COLOURS)} {n}"
        rows.append(
            {
                "id": n,
                "sku": product_sku(n),
                "name": name,
                "category_id": cat["id"],
                "price_cents": rng.randint(99, 99_999),
                "stock": stock,
                "initial_stock": stock,
                "is_flash": False,
            }
        )
    for k in range(1, cfg.flash_skus + 1):
        cat = cats[(k - 1) % len(cats)]
        rows.append(
            {
                "id": cfg.skus + k,
                "sku": flash_sku(k),
                "name": f"Flash Deal {cat['name']} {k}",
                "category_id": cat["id"],
                "price_cents": rng.randint(100, 9_999),
                "stock": cfg.flash_stock,
                "initial_stock": cfg.flash_stock,
                "is_flash": True,
            }
        )
    return cats, rows


def generate_users(cfg: SeedConfig, *, password_iterations: int) -> list[dict[str, Any]]:
    """Seeded user rows ``user00001``.. with password ``cfg.user_password``.

    They share one salted hash (hashing thousands of fixture users one by one
    would make seeding slow); users who register get their own salt.
    """
    pw_hash = hash_password(cfg.user_password, iterations=password_iterations, salt=b"peakload-seed-%d" % cfg.seed)
    now = dt.datetime.now(dt.UTC)
    return [{"id": n, "username": username_for(n), "password_hash": pw_hash, "created_at": now} for n in range(1, cfg.users + 1)]


async def init_database(database: Database, cfg: SeedConfig, *, password_iterations: int, reset: bool = False) -> bool:
    """Create the schema and seed it when the catalogue is empty.

    Returns True when it seeded. Replicas sharing one PostgreSQL database take
    an advisory lock so only one of them creates and seeds.

    Usage: ``await init_database(Database(url), SeedConfig(skus=500), password_iterations=1000)``
    """
    if database.is_sqlite:
        await database.create_schema(reset=reset)
        return await _seed_if_empty(database, cfg, password_iterations=password_iterations)
    async with database.engine.connect() as lock_conn:
        await lock_conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": _PG_SEED_LOCK})
        try:
            await database.create_schema(reset=reset)
            return await _seed_if_empty(database, cfg, password_iterations=password_iterations)
        finally:
            await lock_conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_SEED_LOCK})
            await lock_conn.commit()


async def _seed_if_empty(database: Database, cfg: SeedConfig, *, password_iterations: int) -> bool:
    async with database.read() as conn:
        existing = (await conn.execute(sa.select(sa.func.count()).select_from(schema.products))).scalar_one()
    if existing:
        return False
    cats, prods = generate_catalogue(cfg)
    users = generate_users(cfg, password_iterations=password_iterations)
    async with database.write() as conn:
        await conn.execute(schema.categories.insert(), cats)
        for start in range(0, len(prods), 5000):
            await conn.execute(schema.products.insert(), prods[start : start + 5000])
        if users:
            await conn.execute(schema.users.insert(), users)
        if not database.is_sqlite and users:
            # Explicit ids bypass the sequence; move it past them for registrations.
            await conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('users', 'id'), (SELECT MAX(id) FROM users))"))
    return True
