"""Dashboard 3 — the platform (storefront) from its own /metrics.

RED per route, DB pool, cache hit ratio, payments by outcome, flash-sale
stock, oversell guard, and the business funnel for real vs shadow traffic.

Usage: ``render_dashboard(platform_dashboard())``
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards import metric_names as m
from dashboards.grafana_kit import (
    bar_gauge,
    custom_variable,
    new_dashboard,
    q,
    query_variable,
    row,
    stat_panel,
    timeseries,
)

__all__ = ["UID", "platform_dashboard"]

UID = "peakload-platform"
RI = "$__rate_interval"
ROUTE = 'route=~"$route",traffic=~"$traffic"'
TRAFFIC = 'traffic=~"$traffic"'
FIVE_XX = 'status_class="5xx"'
HIT = 'result="hit"'
SUCCESS = 'outcome="success"'


def _rate(metric: str, by: str = "", match: str = "") -> str:
    sel = f"{metric}{{{match}}}" if match else metric
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({sel}[{RI}]))"


def _quantile(phi: float) -> str:
    return f"histogram_quantile({phi}, {_rate(m.SF_DURATION + '_bucket', 'le, method, route', ROUTE)})"


def _funnel(traffic: str) -> list:
    t = f'traffic="{traffic}"'
    return [
        q(f"sum (increase({m.SF_PRODUCT_VIEWS}{{{t}}}[$__range]))", "product views", instant=True),
        q(f"sum (increase({m.SF_CART_ADDS}{{{t}}}[$__range]))", "cart adds", instant=True),
        q(f"sum (increase({m.SF_ORDERS}{{{t}}}[$__range]))", "orders", instant=True),
        q(f"sum (increase({m.SF_PAYMENTS}{{{t},{SUCCESS}}}[$__range]))", "paid", instant=True),
    ]


def platform_dashboard() -> db.Dashboard:
    """Build the platform dashboard (pure; no I/O)."""
    board = new_dashboard(
        uid=UID,
        title="peakload · Platform (storefront)",
        description="The shop under load, from its own /metrics: RED per route, resources, business outcomes; real vs shadow (load-test) traffic.",
        tags=["platform"],
    )
    board = board.with_variable(custom_variable("traffic", "Traffic", ["real", "shadow"]))
    board = board.with_variable(query_variable("route", "Route", f"label_values({m.SF_REQUESTS}, route)"))
    legend = "{{method}} {{route}}"

    board = (
        board.with_row(row("RED per route"))
        .with_panel(timeseries("Requests/s by route", [q(_rate(m.SF_REQUESTS, "method, route", ROUTE), legend)], unit="reqps"))
        .with_panel(
            timeseries(
                "5xx ratio by route",
                [
                    q(
                        f"(\n  {_rate(m.SF_REQUESTS, 'method, route', f'{ROUTE},{FIVE_XX}')}\n"
                        f"  or\n  0 * {_rate(m.SF_REQUESTS, 'method, route', ROUTE)}\n)\n/\n{_rate(m.SF_REQUESTS, 'method, route', ROUTE)}",
                        legend,
                    )
                ],
                unit="percentunit",
                min_value=0,
                description="Server errors / all requests per route (4xx answers such as sold-out are not errors).",
            )
        )
        .with_panel(
            timeseries(
                "Responses/s by status class",
                [q(_rate(m.SF_REQUESTS, "status_class", ROUTE), "{{status_class}}")],
                unit="reqps",
                stack=True,
            )
        )
        .with_panel(
            timeseries(
                "Requests/s by traffic",
                [q(_rate(m.SF_REQUESTS, "traffic", ROUTE), "{{traffic}}")],
                unit="reqps",
                stack=True,
                description="real = shoppers; shadow = requests carrying the run header (the load test).",
            )
        )
        .with_panel(timeseries("Latency p50 by route", [q(_quantile(0.5), legend)], unit="s", width=8))
        .with_panel(
            timeseries("Latency p95 by route", [q(_quantile(0.95), legend)], unit="s", width=8, lines_at=((0.3, "orange"), (2, "red")))
        )
        .with_panel(
            timeseries("Latency p99 by route", [q(_quantile(0.99), legend)], unit="s", width=8, lines_at=((0.3, "orange"), (2, "red")))
        )
    )

    board = (
        board.with_row(row("Resources"))
        .with_panel(timeseries("DB pool connections in use", [q(f"sum by (instance) ({m.SF_DB_POOL_IN_USE})", "{{instance}}")], width=12))
        .with_panel(
            timeseries(
                "Cache hit ratio",
                [q(f"{_rate(m.SF_CACHE_REQUESTS, match=HIT)}\n/\n{_rate(m.SF_CACHE_REQUESTS)}", "hit ratio")],
                unit="percentunit",
                min_value=0,
                width=12,
            )
        )
    )

    board = (
        board.with_row(row("Business"))
        .with_panel(
            timeseries(
                "Payments/s by outcome",
                [q(_rate(m.SF_PAYMENTS, "outcome, traffic", TRAFFIC), "{{outcome}} ({{traffic}})")],
                unit="ops",
                width=8,
            )
        )
        .with_panel(
            timeseries(
                "Orders/s and stock-outs/s",
                [
                    q(_rate(m.SF_ORDERS, "traffic", TRAFFIC), "orders ({{traffic}})"),
                    q(_rate(m.SF_STOCKOUTS, "traffic", TRAFFIC), "stock-outs ({{traffic}})"),
                ],
                unit="ops",
                width=8,
            )
        )
        .with_panel(timeseries("Flash-sale stock", [q(f"sum by (sku) ({m.SF_FLASH_SALE_STOCK})", "{{sku}}")], width=8, min_value=0))
        .with_panel(
            stat_panel(
                "Oversell attempts rejected (time range)",
                [q(f"sum (increase({m.SF_OVERSELL_REJECTED}{{{TRAFFIC}}}[$__range]))", "rejected")],
                steps=((None, "green"), (1, "orange")),
                description="Stock decrements the atomic SQL guard refused after the pre-check passed: contention the guard absorbed (oversold units would be a bug).",
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Stock-outs (time range)",
                [q(f"sum (increase({m.SF_STOCKOUTS}{{{TRAFFIC}}}[$__range]))", "stock-outs")],
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Payment success ratio",
                [q(f"{_rate(m.SF_PAYMENTS, match=f'{TRAFFIC},{SUCCESS}')}\n/\n{_rate(m.SF_PAYMENTS, match=TRAFFIC)}", "success")],
                unit="percentunit",
                steps=((None, "red"), (0.95, "orange"), (0.98, "green")),
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                "Orders (time range)",
                [q(f"sum (increase({m.SF_ORDERS}{{{TRAFFIC}}}[$__range]))", "orders")],
                width=6,
            )
        )
    )

    board = (
        board.with_row(row("Funnel: real vs shadow traffic"))
        .with_panel(bar_gauge("Funnel — real shoppers (time range)", _funnel("real"), width=8))
        .with_panel(bar_gauge("Funnel — shadow / load test (time range)", _funnel("shadow"), width=8))
        .with_panel(
            timeseries(
                "Funnel per second by traffic",
                [
                    q(_rate(m.SF_PRODUCT_VIEWS, "traffic", TRAFFIC), "views ({{traffic}})"),
                    q(_rate(m.SF_CART_ADDS, "traffic", TRAFFIC), "cart adds ({{traffic}})"),
                    q(_rate(m.SF_ORDERS, "traffic", TRAFFIC), "orders ({{traffic}})"),
                    q(_rate(m.SF_PAYMENTS, "traffic", f"{TRAFFIC},{SUCCESS}"), "paid ({{traffic}})"),
                ],
                unit="ops",
                width=8,
            )
        )
    )
    return board
