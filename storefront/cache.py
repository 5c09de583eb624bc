"""Short-TTL response cache with single-flight loading.

:class:`Cache` is the backend protocol (``get``/``set`` of bytes); the
in-process :class:`MemoryCache` is the default and a Redis backend can be
plugged in later by implementing the same two methods.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Protocol

__all__ = ["Cache", "MemoryCache", "CachedLoader"]


class Cache(Protocol):
    """A bytes cache; ``get`` returns None on a miss. Errors may be raised: callers fall back to the DB."""

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl_s: float) -> None: ...


class MemoryCache:
    """Bounded in-process TTL cache (least recently stored entries go first).

    Usage: ``c = MemoryCache(max_entries=50_000); await c.set("k", b"v", 1.0)``
    """

    def __init__(self, *, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get(self, key: str) -> bytes | None:
        return self.get_now(key)

    def get_now(self, key: str) -> bytes | None:
        """Synchronous lookup (the hot path skips an await)."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._data.pop(key, None)
            return None
        return entry[1]

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        self._data[key] = (self._clock() + ttl_s, value)
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)


class CachedLoader:
    """``get_or_load`` over a :class:`Cache`, counting hits and misses.

    Concurrent misses for one key share a single load (no thundering herd on
    a hot product when its entry expires). A failing backend counts as a miss
    and the value is loaded from the database.

    Usage: ``body = await loader.get_or_load("product:SKU-1", load_fn)``
    """

    def __init__(self, backend: Cache, *, ttl_s: float, on_result: Callable[[str], None]) -> None:
        self.backend = backend
        self.ttl_s = ttl_s
        self._on_result = on_result
        self._inflight: dict[str, asyncio.Future[bytes]] = {}
        self._fast = backend.get_now if isinstance(backend, MemoryCache) else None

    def peek(self, key: str) -> bytes | None:
        """Synchronous hit check for the in-process backend (counts only hits).

        The hot path uses it to skip a coroutine; on None call :meth:`get_or_load`.
        """
        if self._fast is None or self.ttl_s <= 0:
            return None
        cached = self._fast(key)
        if cached is not None:
            self._on_result("hit")
        return cached

    async def get_or_load(self, key: str, load: Callable[[], Awaitable[bytes]]) -> bytes:
        if self.ttl_s > 0:
            if self._fast is not None:
                cached = self._fast(key)
            else:
                try:
                    cached = await self.backend.get(key)
                except Exception:  # noqa: BLE001 - a cache outage must not fail the request
                    cached = None
            if cached is not None:
                self._on_result("hit")
                return cached
        self._on_result("miss")
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
        except asyncio.CancelledError:
            future.set_exception(ConnectionAbortedError(f"loading {key} was cancelled"))
            future.exception()  # mark retrieved: no "exception never retrieved" log
            raise
        except Exception as exc:
            future.set_exception(exc)
            future.exception()
            raise
        finally:
            self._inflight.pop(key, None)
        future.set_result(value)
        if self.ttl_s > 0:
            try:
                await self.backend.set(key, value, self.ttl_s)
            except Exception:  # noqa: BLE001
                pass
        return value
