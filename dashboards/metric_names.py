"""Metric names of docs/contracts.md §7, as this room uses them in PromQL.

The load generator's names are the exporters room's own constants (imported,
never re-spelled); the storefront's are spelled here once, as the storefront
must not be imported by the suite.

Usage: ``f"rate({REQUESTS}[5m])"``
"""

from __future__ import annotations

__all__ = [
    "REQUESTS",
    "FAILURES",
    "DURATION",
    "USERS",
    "WORKERS",
    "TARGET_ARRIVAL_RATE",
    "ARRIVALS",
    "DROPPED_ARRIVALS",
    "ORDERS",
    "PAYMENTS",
    "FLASH_SALE_ATTEMPTS",
    "PRODUCT_VIEWS",
    "CART_ADDS",
    "RUN_INFO",
    "SF_REQUESTS",
    "SF_DURATION",
    "SF_DB_POOL_IN_USE",
    "SF_CACHE_REQUESTS",
    "SF_ORDERS",
    "SF_PAYMENTS",
    "SF_STOCKOUTS",
    "SF_OVERSELL_REJECTED",
    "SF_FLASH_SALE_STOCK",
    "SF_PRODUCT_VIEWS",
    "SF_CART_ADDS",
    "CLIENT_ERROR_TYPES_NOT_COUNTED",
]

# --- load generator (labels: name, method, status_class / error_type): owned by exporters/
from exporters.prometheus import (  # noqa: E402  (one spelling: the exporter's own constants)
    ARRIVALS_TOTAL as ARRIVALS,
)
from exporters.prometheus import (
    CART_ADDS_TOTAL as CART_ADDS,
)
from exporters.prometheus import (
    DROPPED_ARRIVALS_TOTAL as DROPPED_ARRIVALS,
)
from exporters.prometheus import (
    FLASH_SALE_ATTEMPTS_TOTAL as FLASH_SALE_ATTEMPTS,  # outcome: won|sold_out|error
)
from exporters.prometheus import (
    ORDERS_TOTAL as ORDERS,
)
from exporters.prometheus import (
    PAYMENTS_TOTAL as PAYMENTS,  # outcome: success|declined|error
)
from exporters.prometheus import (
    PRODUCT_VIEWS_TOTAL as PRODUCT_VIEWS,
)
from exporters.prometheus import (
    REQUEST_DURATION_SECONDS as DURATION,  # histogram: _bucket, _count, _sum
)
from exporters.prometheus import (
    REQUEST_FAILURES_TOTAL as FAILURES,
)
from exporters.prometheus import (
    REQUESTS_TOTAL as REQUESTS,
)
from exporters.prometheus import (
    RUN_INFO,  # run_id, profile
    USERS,
    WORKERS,
)
from exporters.prometheus import (
    TARGET_ARRIVALS_PER_SECOND as TARGET_ARRIVAL_RATE,
)

# --- storefront (labels: route, method, status_class, traffic)
SF_REQUESTS = "storefront_http_requests_total"
SF_DURATION = "storefront_http_request_duration_seconds"  # histogram
SF_DB_POOL_IN_USE = "storefront_db_pool_connections_in_use"
SF_CACHE_REQUESTS = "storefront_cache_requests_total"  # result: hit|miss
SF_ORDERS = "storefront_orders_total"
SF_PAYMENTS = "storefront_payments_total"  # outcome: success|declined|error
SF_STOCKOUTS = "storefront_stockouts_total"
SF_OVERSELL_REJECTED = "storefront_oversell_rejected_total"
SF_FLASH_SALE_STOCK = "storefront_flash_sale_stock"  # sku
SF_PRODUCT_VIEWS = "storefront_product_views_total"
SF_CART_ADDS = "storefront_cart_adds_total"

# A client-side availability SLI counts every failure except a 4xx answer: the
# server-side SLI counts only 5xx, and 4xx business outcomes (sold out) are not
# errors of the service. Timeouts, connection errors and body checks are.
CLIENT_ERROR_TYPES_NOT_COUNTED = ("http_4xx",)
