"""Typed settings for one storefront process (all keyword-only, all defaulted)."""

from __future__ import annotations

import dataclasses
import re

__all__ = ["StorefrontConfig", "SeedConfig", "GatewayConfig", "parse_route_floats"]

# A header name per RFC 9110 "token"; keeps a typo from silently disabling shadow labelling.
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SeedConfig:
    """Size and randomness of the deterministic catalogue.

    Usage: ``SeedConfig(skus=500, seed=7)``
    """

    skus: int = 10_000
    categories: int = 20
    users: int = 200
    flash_skus: int = 3
    flash_stock: int = 50
    stock_min: int = 50
    stock_max: int = 500
    seed: int = 1111
    # Password every seeded user gets (``user00001`` ... ``userNNNNN``).
    user_password: str = "peakload"

    def __post_init__(self) -> None:
        for name in ("skus", "categories", "users", "flash_skus", "flash_stock", "stock_min"):
            if getattr(self, name) < 0:
                raise ValueError(f"seed {name} must be >= 0, got {getattr(self, name)}")
        if self.categories < 1:
            raise ValueError(f"seed categories must be >= 1, got {self.categories}")
        if self.stock_max < self.stock_min:
            raise ValueError(f"seed stock_max must be >= stock_min ({self.stock_min}), got {self.stock_max}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GatewayConfig:
    """Behaviour of the payment-gateway simulator.

    Usage: ``GatewayConfig(latency_ms=20, jitter_ms=10, failure_rate=0.02)``
    """

    latency_ms: float = 20.0
    jitter_ms: float = 10.0
    failure_rate: float = 0.02
    seed: int = 1111

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError(f"gateway latency/jitter must be >= 0 ms, got {self.latency_ms}/{self.jitter_ms}")
        if not 0.0 <= self.failure_rate <= 1.0:
            raise ValueError(f"gateway failure rate must be within 0..1, got {self.failure_rate}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class StorefrontConfig:
    """Everything :func:`storefront.app.create_app` needs.

    Usage: ``StorefrontConfig(db_url="sqlite:///shop.db", gateway_url="http://127.0.0.1:9000")``
    """

    db_url: str = "sqlite:///storefront.db"
    seed: SeedConfig = dataclasses.field(default_factory=SeedConfig)
    # None = the caller starts an embedded gateway and fills this in.
    gateway_url: str | None = None
    gateway_timeout_s: float = 5.0
    cache_ttl_s: float = 1.0
    # None = in-process cache; "redis://host:port/db" = shared Redis cache (falls back to the DB on errors).
    redis_url: str | None = None
    run_header: str = "X-Peakload-Run"
    db_pool_size: int = 10
    # Fault injection: canonical route template -> seconds / error ratio 0..1.
    inject_latency: dict[str, float] = dataclasses.field(default_factory=dict)
    inject_errors: dict[str, float] = dataclasses.field(default_factory=dict)
    password_iterations: int = 10_000
    # When set, /api/admin/* needs ``Authorization: Bearer <admin_token>``.
    admin_token: str | None = None
    reset: bool = False
    # Payments stuck in "pending" longer than this are re-driven every sweep interval (0 = no sweeper).
    pending_retry_after_s: float = 10.0
    sweep_interval_s: float = 2.0
    # combined-format access log (storefront/accesslog.py); None = off
    access_log: str | None = None

    def __post_init__(self) -> None:
        if not _HEADER_NAME.match(self.run_header):
            raise ValueError(f"run header must be an HTTP header name, got {self.run_header!r}")
        if self.redis_url is not None and not self.redis_url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"redis URL must start with redis://, rediss:// or unix://, got {self.redis_url!r}")
        if self.cache_ttl_s < 0:
            raise ValueError(f"cache TTL must be >= 0 s, got {self.cache_ttl_s}")
        if self.db_pool_size < 1:
            raise ValueError(f"db pool size must be >= 1, got {self.db_pool_size}")
        if self.pending_retry_after_s < 0 or self.sweep_interval_s < 0:
            raise ValueError(f"pending retry / sweep interval must be >= 0 s, got {self.pending_retry_after_s}/{self.sweep_interval_s}")
        if self.password_iterations < 1:
            raise ValueError(f"password iterations must be >= 1, got {self.password_iterations}")
        for route, seconds in self.inject_latency.items():
            if seconds < 0:
                raise ValueError(f"injected latency for {route} must be >= 0 s, got {seconds}")
        for route, ratio in self.inject_errors.items():
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"injected error ratio for {route} must be within 0..1, got {ratio}")


def parse_route_floats(items: list[str], *, what: str) -> dict[str, float]:
    """Parse ``["/api/products/{sku}=0.2", ...]`` into ``{route: 0.2}``.

    Usage: ``parse_route_floats(["/api/home=0.1"], what="latency")``
    """
    out: dict[str, float] = {}
    for item in items:
        route, sep, value = item.rpartition("=")
        if not sep or not route.startswith("/"):
            raise ValueError(f"{what} must look like ROUTE=NUMBER (route starting with /), got {item!r}")
        try:
            out[route] = float(value)
        except ValueError:
            raise ValueError(f"{what} for {route} must be a number, got {value!r}") from None
    return out
