"""The full platform on one machine: PostgreSQL primary + standby, Redis, payment gateway,
storefront replicas behind HAProxy, a fault proxy, exporters and Prometheus — all on 127.0.0.1.

Usage::

    from chaos.platform import up, status, down, format_status
    up(Path(".peakload/platform"), replicas=3)
    print(format_status(status(Path(".peakload/platform"))))
    down(Path(".peakload/platform"))
"""

from chaos.platform.configs import db_url, gateway_url, redis_url, shop_url
from chaos.platform.core import current_primary, down, ensure_postgres, up
from chaos.platform.health import (
    ComponentHealth,
    format_status,
    haproxy_servers,
    primary_index,
    status,
)
from chaos.platform.layout import (
    DEFAULT_STATE_DIR,
    Layout,
    PlatformSpec,
    Ports,
    load_spec,
)

__all__ = [
    "DEFAULT_STATE_DIR",
    "ComponentHealth",
    "Layout",
    "PlatformSpec",
    "Ports",
    "current_primary",
    "db_url",
    "down",
    "ensure_postgres",
    "format_status",
    "gateway_url",
    "haproxy_servers",
    "load_spec",
    "primary_index",
    "redis_url",
    "shop_url",
    "status",
    "up",
]
