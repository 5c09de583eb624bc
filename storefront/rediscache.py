"""Redis backend for the :class:`storefront.cache.Cache` protocol (``--redis-url``).

Shared by all replicas in the full platform. When Redis fails the backend
raises, :class:`~storefront.cache.CachedLoader` serves from the database, and
a short circuit breaker stops every request from waiting on a dead Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

__all__ = ["RedisCache", "RedisUnavailable"]


class RedisUnavailable(ConnectionError):
    """Redis recently failed; the breaker is open, so the call was not attempted."""


class RedisCache:
    """Bytes cache in Redis with per-key TTL (``SET key value PX ms``).

    Usage: ``cache = RedisCache("redis://127.0.0.1:6379/0")``; ``await cache.aclose()`` at shutdown.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "storefront:",
        timeout_s: float = 0.25,
        breaker_s: float = 1.0,
        on_error: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            import redis.asyncio as redis_asyncio
        except ImportError:  # pragma: no cover - depends on the environment
            raise ValueError("--redis-url needs the 'redis' package (pip install 'redis>=5,<9')") from None
        self._client: Any = redis_asyncio.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry_on_timeout=False,
        )
        self._prefix = prefix
        self._breaker_s = breaker_s
        self._open_until = 0.0
        self._on_error = on_error or (lambda: None)
        self._clock = clock

    async def _call(self, fn: Callable[[], Any]) -> Any:
        if self._clock() < self._open_until:
            raise RedisUnavailable("redis failed recently; not retrying yet")
        try:
            return await fn()
        except Exception:
            self._open_until = self._clock() + self._breaker_s
            self._on_error()
            raise

    async def get(self, key: str) -> bytes | None:
        return await self._call(lambda: self._client.get(self._prefix + key))

    async def set(self, key: str, value: bytes, ttl_s: float) -> None:
        await self._call(lambda: self._client.set(self._prefix + key, value, px=max(1, int(ttl_s * 1000))))

    async def aclose(self) -> None:
        await self._client.aclose()
