"""Metric names of docs/contracts.md §7, as this room uses them in PromQL.

The exporters room owns these names; until it exposes constants of its own
they are spelled here once, so a rename is a one-line change.

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

# --- load generator (labels: name, method, status_class / error_type)
REQUESTS = "peakload_requests_total"
FAILURES = "peakload_request_failures_total"
DURATION = "peakload_request_duration_seconds"  # histogram: _bucket, _count, _sum
USERS = "peakload_users"
WORKERS = "peakload_workers"
TARGET_ARRIVAL_RATE = "peakload_target_arrivals_per_second"
ARRIVALS = "peakload_arrivals_total"
DROPPED_ARRIVALS = "peakload_dropped_arrivals_total"
ORDERS = "peakload_orders_total"
PAYMENTS = "peakload_payments_total"  # outcome: success|declined|error
FLASH_SALE_ATTEMPTS = "peakload_flash_sale_attempts_total"  # outcome: won|sold_out|error
PRODUCT_VIEWS = "peakload_product_views_total"
CART_ADDS = "peakload_cart_adds_total"
RUN_INFO = "peakload_run_info"  # run_id, profile

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
