"""Schema, engine and the read/write connection helpers (SQLAlchemy Core, async).

SQLite (aiosqlite) is the embedded default; PostgreSQL goes through asyncpg.
All database URL handling lives in :func:`engine_url` so multi-host /
``target_session_attrs`` support stays in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = [
    "metadata",
    "categories",
    "products",
    "users",
    "sessions",
    "cart_items",
    "orders",
    "order_items",
    "payments",
    "stock_movements",
    "engine_url",
    "Database",
]

metadata = sa.MetaData()

categories = sa.Table(
    "categories",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(64), nullable=False),
)

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("sku", sa.String(32), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("category_id", sa.Integer, sa.ForeignKey("categories.id"), nullable=False, index=True),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.Column("stock", sa.Integer, nullable=False),
    sa.Column("initial_stock", sa.Integer, nullable=False),
    sa.Column("is_flash", sa.Boolean, nullable=False, default=False),
    sa.CheckConstraint("stock >= 0", name="ck_products_stock_nonnegative"),
    sa.CheckConstraint("price_cents >= 0", name="ck_products_price_nonnegative"),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

cart_items = sa.Table(
    "cart_items",
    metadata,
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), primary_key=True),
    sa.Column("sku", sa.String(32), sa.ForeignKey("products.sku"), primary_key=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("quantity > 0", name="ck_cart_items_quantity_positive"),
)

orders = sa.Table(
    "orders",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
    sa.Column("idempotency_key", sa.String(128), nullable=False),
    # Fingerprint of the request body: the same key with another body is refused.
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(128), nullable=True, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("total_cents", sa.Integer, nullable=False),
    sa.Column("discount_cents", sa.Integer, nullable=False, default=0),
    sa.Column("coupon", sa.String(32), nullable=True),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_orders_user_idempotency_key"),
)

order_items = sa.Table(
    "order_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("order_id", sa.String(32), sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("sku", sa.String(32), sa.ForeignKey("products.sku"), nullable=False, index=True),
    sa.Column("quantity", sa.Integer, nullable=False),
    sa.Column("price_cents", sa.Integer, nullable=False),
    sa.CheckConstraint("quantity > 0", name="ck_order_items_quantity_positive"),
)

payments = sa.Table(
    "payments",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("order_id", sa.String(32), sa.ForeignKey("orders.id"), nullable=False, index=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("idempotency_key", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(128), nullable=True, index=True),
    # pending -> paid | declined; "pending" survives a gateway outage and is re-driven.
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("amount_cents", sa.Integer, nullable=False),
    sa.Column("gateway_charge_id", sa.String(64), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("user_id", "idempotency_key", name="uq_payments_user_idempotency_key"),
)

# At most one payment per order that is in flight or succeeded: two different
# idempotency keys racing for one order cannot both reach the gateway.
sa.Index(
    "uq_payments_one_active_per_order",
    payments.c.order_id,
    unique=True,
    sqlite_where=payments.c.status.in_(["pending", "paid"]),
    postgresql_where=payments.c.status.in_(["pending", "paid"]),
)

# Inventory ledger written in the same transaction as each decrement, so a
# run's stock movements can be reconciled even though stock is shared.
stock_movements = sa.Table(
    "stock_movements",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sku", sa.String(32), nullable=False, index=True),
    sa.Column("order_id", sa.String(32), nullable=False),
    sa.Column("run_id", sa.String(128), nullable=True, index=True),
    sa.Column("delta", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


def engine_url(url: str) -> str:
    """Turn a user-facing database URL into a SQLAlchemy async URL.

    ``sqlite:///PATH`` -> ``sqlite+aiosqlite:///PATH``;
    ``postgresql://u@h1:5432,h2:5433/db?target_session_attrs=read-write`` ->
    ``postgresql+asyncpg://u@/db?host=h1:5432&host=h2:5433&target_session_attrs=read-write``
    (asyncpg then tries the hosts in order and keeps the one matching the attrs).

    Usage: ``create_async_engine(engine_url("postgresql://app@127.0.0.1:5432/shop"))``
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("sqlite", "sqlite+aiosqlite"):
        return "sqlite+aiosqlite" + url[len(parts.scheme) :]
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg"):
        raise ValueError(f"database URL must start with sqlite:// or postgresql://, got {url.split(':', 1)[0]!r}")
    userinfo, _, hostlist = parts.netloc.rpartition("@")
    hosts = [h for h in hostlist.split(",") if h]
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    if len(hosts) > 1:
        missing = [h for h in hosts if ":" not in h.rsplit("]", 1)[-1]]
        # asyncpg needs a port per host; default the omitted ones.
        hosts = [h if h not in missing else f"{h}:5432" for h in hosts]
        query = [("host", h) for h in hosts] + query
        netloc = f"{userinfo}@" if userinfo else ""
    else:
        netloc = parts.netloc
    rebuilt = urllib.parse.urlunsplit(("postgresql+asyncpg", netloc, parts.path, urllib.parse.urlencode(query), ""))
    if not netloc:
        # urlunsplit drops the "//" when netloc is empty; asyncpg URLs need it.
        rebuilt = rebuilt.replace("postgresql+asyncpg:", "postgresql+asyncpg://", 1)
    return rebuilt


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL keeps readers concurrent with the single writer; busy_timeout covers
    # other processes (reconcile CLI, a second replica) holding the lock briefly.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Database:
    """An async engine plus the write discipline that fits its backend.

    SQLite allows one writer; in one process an ``asyncio.Lock`` serialises
    write transactions so they never meet "database is locked", while reads
    use other pooled connections concurrently (WAL). PostgreSQL writes run in
    parallel and rely on row locks and constraints.

    Usage::

        db = Database("sqlite:///shop.db")
        async with db.read() as conn: ...
        async with db.write() as conn: ...   # one transaction, committed on exit
    """

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        sa_url = engine_url(url)
        self.is_sqlite = sa_url.startswith("sqlite")
        in_memory = self.is_sqlite and (":memory:" in sa_url or sa_url.rstrip("/") == "sqlite+aiosqlite:")
        kwargs: dict[str, Any] = {}
        if not in_memory:  # in-memory SQLite uses one shared StaticPool connection
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_timeout=30)
        if not self.is_sqlite:
            # After a failover every pooled connection is dead; ping on checkout so
            # requests get a fresh connection to the new primary instead of an error.
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(sa_url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for SELECTs (no explicit transaction)."""
        async with self.engine.connect() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction; commits on success, rolls back on error."""
        if self._write_lock is None:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock:
            async with self.engine.begin() as conn:
                yield conn

    def connections_max(self) -> int:
        """How many connections the pool may hand out at once (pool size + overflow; 1 for a shared in-memory one)."""
        pool = self.engine.sync_engine.pool
        size, overflow = getattr(pool, "size", None), getattr(pool, "_max_overflow", 0)
        return int(size()) + max(int(overflow), 0) if callable(size) else 1

    def connections_in_use(self) -> int:
        """Pooled connections currently checked out (for the pool gauge)."""
        pool = self.engine.sync_engine.pool
        checkedout = getattr(pool, "checkedout", None)
        return int(checkedout()) if callable(checkedout) else 0

    async def create_schema(self, *, reset: bool = False) -> None:
        """Create missing tables (drop everything first when ``reset``)."""
        async with self.engine.begin() as conn:
            if reset:
                await conn.run_sync(metadata.drop_all)
            await conn.run_sync(metadata.create_all)

    async def dispose(self) -> None:
        await self.engine.dispose()
