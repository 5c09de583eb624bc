"""Dashboard 1 — the load test as the load generator sees it.

RED per request name and per journey step, users/workers, target vs achieved arrival rate, latency
quantiles from the histogram, errors by type, business counters, and SLO burn
from the client's view (``slo:client_*`` recording rules). Filtered by run
(``peakload_run_info``) and request name.

Usage: ``render_dashboard(load_test_dashboard())``
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards import metric_names as m
from dashboards.grafana_kit import (
    RUN_JOIN,
    bar_gauge,
    new_dashboard,
    q,
    query_variable,
    row,
    stat_panel,
    timeseries,
)

__all__ = ["UID", "load_test_dashboard"]

UID = "peakload-load-test"
RI = "$__rate_interval"
NAME = 'name=~"$name"'
IN_STEP = 'step!=""'  # requests outside the journey (health probes, a user's own locustfile) have no step


def _rate(metric: str, by: str = "", match: str = "") -> str:
    """sum [by (...)] (rate(metric{match}[$__rate_interval]) joined to the chosen run)."""
    sel = f"{metric}{{{match}}}" if match else metric
    grouping = f" by ({by})" if by else ""
    return f"sum{grouping} (rate({sel}[{RI}]) {RUN_JOIN})"


def _gauge(metric: str) -> str:
    return f"sum ({metric} {RUN_JOIN})"


def _quantile(phi: float, by: str) -> str:
    return f"histogram_quantile({phi}, {_rate(m.DURATION + '_bucket', f'le, {by}' if by else 'le', NAME)})"


def _total(metric: str, match: str = "") -> str:
    sel = f"{metric}{{{match}}}" if match else metric
    return f"sum (increase({sel}[$__range]) {RUN_JOIN})"


def load_test_dashboard() -> db.Dashboard:
    """Build the load-test dashboard (pure; no I/O)."""
    board = new_dashboard(
        uid=UID,
        title="peakload · Load test",
        description="What the load generator sent and saw: rate, errors, duration per request name, arrivals, users, business outcomes.",
        tags=["load-test"],
    )
    board = board.with_variable(query_variable("run_id", "Run", f"label_values({m.RUN_INFO}, run_id)"))
    board = board.with_variable(query_variable("name", "Request", f"label_values({m.REQUESTS}, name)"))
    fail_excl = 'error_type!~"http_4xx"'

    board = (
        board.with_row(row("Run"))
        .with_panel(stat_panel("Users", [q(_gauge(m.USERS), "users")], description="Simulated shoppers running now."))
        .with_panel(
            stat_panel("Workers", [q(_gauge(m.WORKERS), "workers")], description="Locust worker processes (1 when running locally).")
        )
        .with_panel(stat_panel("Requests/s", [q(_rate(m.REQUESTS, match=NAME), "req/s")], unit="reqps"))
        .with_panel(
            stat_panel(
                "Error ratio",
                [q(f"(\n  {_rate(m.FAILURES, match=NAME)}\n  or vector(0)\n)\n/\n{_rate(m.REQUESTS, match=NAME)}", "errors")],
                unit="percentunit",
                steps=((None, "green"), (0.001, "orange"), (0.01, "red")),
                description="Failed requests / all requests (every failure type, 4xx included).",
            )
        )
        .with_panel(
            stat_panel(
                "Dropped arrivals",
                [q(_total(m.DROPPED_ARRIVALS), "dropped")],
                steps=((None, "green"), (1, "red")),
                description="Scheduled journey starts that found no free user in the time range: the generator fell behind the target rate.",
            )
        )
        .with_panel(
            stat_panel("p95 latency (all)", [q(_quantile(0.95, ""), "p95")], unit="s", steps=((None, "green"), (0.3, "orange"), (2, "red")))
        )
        .with_panel(
            timeseries(
                "Arrival rate: target vs achieved",
                [
                    q(_gauge(m.TARGET_ARRIVAL_RATE), "target"),
                    q(_rate(m.ARRIVALS), "achieved"),
                    q(_rate(m.DROPPED_ARRIVALS), "dropped"),
                ],
                unit="ops",
                description="Open model: journeys per second the shape asked for, started, and dropped.",
            )
        )
        .with_panel(timeseries("Users and workers", [q(_gauge(m.USERS), "users"), q(_gauge(m.WORKERS), "workers")]))
    )

    by = "method, name"
    legend = "{{method}} {{name}}"
    board = (
        board.with_row(row("RED per request name"))
        .with_panel(timeseries("Requests/s by request", [q(_rate(m.REQUESTS, by, NAME), legend)], unit="reqps"))
        .with_panel(timeseries("Failures/s by request", [q(_rate(m.FAILURES, by, NAME), legend)], unit="reqps"))
        .with_panel(
            timeseries(
                "Error ratio by request",
                [q(f"{_rate(m.FAILURES, by, NAME)}\n/\n{_rate(m.REQUESTS, by, NAME)}", legend)],
                unit="percentunit",
                min_value=0,
            )
        )
        .with_panel(
            timeseries(
                "Latency p50 / p95 / p99 (all requests)",
                [q(_quantile(0.5, ""), "p50"), q(_quantile(0.95, ""), "p95"), q(_quantile(0.99, ""), "p99")],
                unit="s",
                lines_at=((0.3, "orange"), (2, "red")),
            )
        )
        .with_panel(timeseries("Latency p50 by request", [q(_quantile(0.5, by), legend)], unit="s", width=8))
        .with_panel(timeseries("Latency p95 by request", [q(_quantile(0.95, by), legend)], unit="s", width=8))
        .with_panel(timeseries("Latency p99 by request", [q(_quantile(0.99, by), legend)], unit="s", width=8))
    )

    step_match = f"{NAME},{IN_STEP}"
    board = (
        board.with_row(row("By journey step"))
        .with_panel(
            timeseries(
                "Requests/s by journey step",
                [q(_rate(m.REQUESTS, "step", step_match), "{{step}}")],
                unit="reqps",
                description="The platform-neutral step of each request (home, product, checkout, ...), whatever the platform names its routes.",
            )
        )
        .with_panel(
            timeseries(
                "Latency p95 by journey step",
                [q(f"histogram_quantile(0.95, {_rate(m.DURATION + '_bucket', 'le, step', step_match)})", "{{step}}")],
                unit="s",
                lines_at=((0.3, "orange"), (2, "red")),
            )
        )
    )

    board = (
        board.with_row(row("Errors"))
        .with_panel(
            timeseries("Failures/s by error type", [q(_rate(m.FAILURES, "error_type", NAME), "{{error_type}}")], unit="reqps", stack=True)
        )
        .with_panel(
            timeseries(
                "Responses/s by status class", [q(_rate(m.REQUESTS, "status_class", NAME), "{{status_class}}")], unit="reqps", stack=True
            )
        )
        .with_panel(
            timeseries(
                "Availability failures/s (what the SLOs count)",
                [q(_rate(m.FAILURES, by, f"{NAME},{fail_excl}"), legend)],
                unit="reqps",
                description="Failures other than 4xx answers: 5xx, timeouts, connection errors, body checks.",
            )
        )
        .with_panel(
            timeseries(
                "SLO burn rate, client view (5m)",
                [q("slo:client_current_burn_rate:ratio", "{{slo}}")],
                description="Error ratio over 5m as the load generator saw it, divided by each SLO's error budget (1 = on budget).",
                lines_at=((1, "orange"), (14.4, "red")),
            )
        )
    )

    board = (
        board.with_row(row("Business"))
        .with_panel(timeseries("Orders/s", [q(_rate(m.ORDERS), "orders")], unit="ops", width=8))
        .with_panel(timeseries("Payments/s by outcome", [q(_rate(m.PAYMENTS, "outcome"), "{{outcome}}")], unit="ops", width=8, stack=True))
        .with_panel(
            timeseries(
                "Flash-sale attempts/s by outcome",
                [q(_rate(m.FLASH_SALE_ATTEMPTS, "outcome"), "{{outcome}}")],
                unit="ops",
                width=8,
                stack=True,
            )
        )
        .with_panel(
            timeseries(
                "Product views and cart adds per second",
                [q(_rate(m.PRODUCT_VIEWS), "product views"), q(_rate(m.CART_ADDS), "cart adds")],
                unit="ops",
            )
        )
        .with_panel(
            bar_gauge(
                "Journey funnel (time range)",
                [
                    q(_total(m.PRODUCT_VIEWS), "product views", instant=True),
                    q(_total(m.CART_ADDS), "cart adds", instant=True),
                    q(_total(m.ORDERS), "orders", instant=True),
                    q(_total(m.PAYMENTS, 'outcome="success"'), "paid", instant=True),
                ],
                description="Counts over the dashboard's time range as the shoppers saw them.",
            )
        )
    )
    return board
