"""Application factory and the one middleware every request passes through."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
from aiohttp import web
from sqlalchemy.exc import DBAPIError

from . import admin, auth, cart, catalog, orders, payments, reconcile
from .cache import Cache, CachedLoader, MemoryCache
from .config import StorefrontConfig
from .db import Database
from .errors import ApiError
from .metrics import StorefrontMetrics
from .seed import init_database
from .state import STATE, State, error_response, json_response

__all__ = ["create_app"]

log = logging.getLogger("storefront")
_RUN_ID = re.compile(r"^[A-Za-z0-9._:@+-]{1,128}$")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _route_of(request: web.Request) -> str:
    # Canonical template ("/api/products/{sku}"), so the label set stays bounded.
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _http_exception_response(exc: web.HTTPException) -> web.Response:
    code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(exc.status, "http_error")
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return json_response({"error": code, "detail": exc.reason}, status=exc.status, headers=headers)


def _make_middleware(st: State, run_header: str) -> Callable[..., Awaitable[web.StreamResponse]]:
    metrics = st.metrics

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Traffic labelling, fault injection, JSON errors and request metrics in one pass."""
        start = time.perf_counter()
        route = _route_of(request)
        traffic = "real"
        try:
            run_id = request.headers.get(run_header)
            if run_id is not None:
                traffic = "shadow"
                request["traffic"] = "shadow"
                if not _RUN_ID.match(run_id):
                    raise ApiError(400, "invalid_run_id", f"{run_header} must be 1..128 of A-Z a-z 0-9 . _ : @ + -")
                request["run_id"] = run_id
            if st.inject_latency or st.inject_errors:
                await _inject(st, route)
            response = await handler(request)
        except ApiError as exc:
            response = error_response(exc)
        except web.HTTPException as exc:
            response = _http_exception_response(exc)
        except asyncio.CancelledError:
            # The client went away: count it as 499-like 4xx, and let aiohttp unwind.
            metrics.observe_request(route, request.method, 499, traffic, time.perf_counter() - start)
            raise
        except Exception as exc:
            if isinstance(exc, ConnectionResetError) and request.transport is None:
                # The client hung up mid-request (e.g. while its body was still arriving): nobody is
                # left to answer, and it is not the database's fault. Counted like a cancellation.
                metrics.observe_request(route, request.method, 499, traffic, time.perf_counter() - start)
                return web.Response(status=499)
            if _database_unavailable(exc):
                # The database is restarting, failing over or unreachable: retryable, not a bug.
                log.warning("database unavailable on %s %s: %s", request.method, route, exc.__class__.__name__)
                response = json_response({"error": "db_unavailable", "detail": "database unavailable, retry shortly"}, status=503)
                response.headers["Retry-After"] = "1"
                response.headers["X-Content-Type-Options"] = "nosniff"
                metrics.observe_request(route, request.method, 503, traffic, time.perf_counter() - start)
                return response
            log.exception("unhandled error on %s %s", request.method, route)
            metrics.unhandled.labels(route=route).inc()
            response = json_response({"error": "internal", "detail": "unexpected server error"}, status=500)
        response.headers["X-Content-Type-Options"] = "nosniff"
        metrics.observe_request(route, request.method, response.status, traffic, time.perf_counter() - start)
        return response

    return observe


# SQLSTATEs that mean "the database is not there right now": connection exceptions (class 08),
# admin shutdown / crash / cannot connect now (57P0x), and writing to a standby after a failover (25006).
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "25006")


def _database_unavailable(exc: BaseException) -> bool:
    """True for connection-level database failures (retryable), False for real bugs (e.g. a missing table)."""
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    for err in (exc.orig, getattr(exc.orig, "__cause__", None)):
        code = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
        if isinstance(code, str) and code.startswith(_UNAVAILABLE_SQLSTATES):
            return True
        if isinstance(err, (ConnectionError, OSError)) or type(err).__name__ == "ConnectionDoesNotExistError":
            return True
    return False


async def _inject(st: State, route: str) -> None:
    delay = st.inject_latency.get(route)
    if delay:
        await asyncio.sleep(delay)
    ratio = st.inject_errors.get(route)
    if ratio and st.fault_rng.random() < ratio:
        raise ApiError(503, "injected_fault", f"fault injected on {route}")


def create_app(config: StorefrontConfig, *, metrics: StorefrontMetrics | None = None) -> web.Application:
    """Build the storefront; the database is created/seeded on startup.

    ``config.gateway_url`` must point at a running gateway for payments to work.

    Usage: ``web.run_app(create_app(StorefrontConfig(db_url="sqlite:///shop.db", gateway_url=url)))``
    """
    database = Database(config.db_url, pool_size=config.db_pool_size)
    metrics = metrics or StorefrontMetrics()
    metrics.bind_pool(database.connections_in_use, database.connections_max)
    backend: Cache
    if config.redis_url:
        from .rediscache import RedisCache  # optional dependency: only with --redis-url

        backend = RedisCache(config.redis_url, on_error=metrics.cache_errors.inc)
    else:
        backend = MemoryCache()
    st = State(
        config=config,
        db=database,
        metrics=metrics,
        cache=CachedLoader(backend, ttl_s=config.cache_ttl_s, on_result=_cache_counter(metrics)),
        gateway_url=config.gateway_url.rstrip("/") if config.gateway_url else None,
        inject_latency=dict(config.inject_latency),
        inject_errors=dict(config.inject_errors),
    )
    app = web.Application(middlewares=[_make_middleware(st, config.run_header)], client_max_size=64 * 1024)
    app[STATE] = st
    for module in (admin, catalog, auth, cart, orders, payments, reconcile):
        app.add_routes(module.routes())
    app.cleanup_ctx.append(_lifecycle)
    return app


def _cache_counter(metrics: StorefrontMetrics) -> Callable[[str], None]:
    children = {result: metrics.cache.labels(result=result) for result in ("hit", "miss")}
    return lambda result: children[result].inc()


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    st = app[STATE]
    cfg = st.config
    seeded = await init_database(st.db, cfg.seed, password_iterations=cfg.password_iterations, reset=cfg.reset)
    if seeded:
        log.info("seeded %d SKUs, %d flash SKUs, %d users", cfg.seed.skus, cfg.seed.flash_skus, cfg.seed.users)
    await admin.refresh_flash_stock(app)
    st.http = aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=cfg.gateway_timeout_s),
        connector=aiohttp.TCPConnector(limit=200),
    )
    sweeper = None
    if cfg.sweep_interval_s > 0:
        sweeper = asyncio.create_task(payments.run_sweeper(st, interval_s=cfg.sweep_interval_s, older_than_s=cfg.pending_retry_after_s))
    try:
        yield
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await st.http.close()
        aclose = getattr(st.cache.backend, "aclose", None)
        if aclose is not None:
            await aclose()
        await st.db.dispose()
