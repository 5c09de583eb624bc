"""Dashboard 2 — SLOs: error budget remaining over the SLO window and burn rates.

One row per SLO of the spec, read from the recording rules of
:mod:`dashboards.rules` (so the objective lives in one place: the spec). An SLO
that names only journey steps has no server-side SLI: its row shows the load
generator's view.

Usage: ``render_dashboard(slo_dashboard(to_model(validate(spec))))``
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as db

from dashboards.grafana_kit import (
    bar_gauge,
    new_dashboard,
    q,
    row,
    stat_panel,
    timeseries,
)
from dashboards.promql import format_number
from dashboards.slo_model import (
    PAGE_CONDITIONS,
    SLI_WINDOWS,
    TICKET_CONDITIONS,
    RulesModel,
    SLOModel,
)

__all__ = ["UID", "slo_dashboard"]

UID = "peakload-slo"
_BUDGET_STEPS = ((None, "red"), (0, "orange"), (0.25, "yellow"), (0.5, "green"))
_FACTOR_COLOURS = {1.0: "yellow", 3.0: "orange", 6.0: "orange", 14.4: "red"}


def _title(slo: SLOModel) -> str:
    what = "availability" if slo.kind == "availability" else f"latency < {slo.threshold_le}s"
    return f"{slo.name} — {what}, objective {format_number(slo.objective)}%"


def _covers(slo: SLOModel) -> str:
    parts = []
    if slo.steps:
        parts.append(f"Journey steps: {', '.join(slo.steps)}.")
    if slo.requests:
        parts.append(f"Requests: {', '.join(f'{method} {route}' for method, route in slo.requests)}.")
    return " ".join(parts)


def _client_row(board: db.Dashboard, slo: SLOModel, about: str) -> db.Dashboard:
    """An SLO without requests: no server-side SLI or alerts, only what the load generator saw."""
    sel = f'{{slo="{slo.name}"}}'
    return (
        board.with_row(row(_title(slo)))
        .with_panel(
            stat_panel(
                f"{slo.name}: burn rate now (5m, load generator)",
                [q(f"slo:client_current_burn_rate:ratio{sel}", "burn rate")],
                steps=((None, "green"), (1, "yellow"), (6, "orange"), (14.4, "red")),
                description=about + " Names no requests: no server-side SLI, no burn-rate alerts.",
                decimals=2,
                width=8,
            )
        )
        .with_panel(
            timeseries(
                f"{slo.name}: error ratio, load generator (5m)",
                [q(f"slo:client_sli_error:ratio_rate5m{sel}", "load generator (client)")],
                unit="percentunit",
                lines_at=((slo.budget, "red"),),
                min_value=0,
                width=16,
            )
        )
    )


def _slo_row(board: db.Dashboard, slo: SLOModel, model: RulesModel) -> db.Dashboard:
    sel = f'{{slo="{slo.name}"}}'
    about = (
        slo.description + " " if slo.description else ""
    ) + f"{_covers(slo)} Budget {format_number(slo.budget * 100)}% of requests over {model.window}."
    if slo.server is None:
        return _client_row(board, slo, about)
    factors = sorted({c.factor for c in (*PAGE_CONDITIONS, *TICKET_CONDITIONS)})
    return (
        board.with_row(row(_title(slo)))
        .with_panel(
            stat_panel(
                f"{slo.name}: error budget remaining ({model.window})",
                [q(f"slo:period_error_budget_remaining:ratio{sel}", "remaining")],
                unit="percentunit",
                steps=_BUDGET_STEPS,
                description=about,
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                f"{slo.name}: error ratio ({model.window})",
                [q(f"slo:sli_error:ratio_rate{model.window}{sel}", "error ratio")],
                unit="percentunit",
                steps=((None, "green"), (slo.budget, "red")),
                description=f"Server-side error ratio over the SLO window; red above the budget ({format_number(slo.budget * 100)}%).",
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                f"{slo.name}: burn rate now (5m)",
                [q(f"slo:current_burn_rate:ratio{sel}", "burn rate")],
                steps=((None, "green"), (1, "yellow"), (6, "orange"), (14.4, "red")),
                description="Error ratio over 5m divided by the budget: 1 spends the budget exactly over the window.",
                decimals=2,
                width=6,
            )
        )
        .with_panel(
            stat_panel(
                f"{slo.name}: alerts firing",
                [q(f'count(ALERTS{{slo="{slo.name}",alertstate="firing"}}) or vector(0)', "alerts")],
                steps=((None, "green"), (1, "red")),
                description=f"Firing {slo.alert_name} alerts (page and/or ticket).",
                width=6,
            )
        )
        .with_panel(
            timeseries(
                f"{slo.name}: burn rate by window",
                [q(f"slo:sli_error:ratio_rate{w}{sel} / {slo.budget_text}", w) for w in SLI_WINDOWS],
                description="Error ratio per window divided by the budget. Page: 1h&5m > 14.4 or 6h&30m > 6; ticket: 1d&2h > 3 or 3d&6h > 1.",
                lines_at=tuple((f, _FACTOR_COLOURS.get(f, "orange")) for f in factors),
                min_value=0,
                width=8,
            )
        )
        .with_panel(
            timeseries(
                f"{slo.name}: error budget remaining over time",
                [q(f"slo:period_error_budget_remaining:ratio{sel}", "remaining")],
                unit="percentunit",
                lines_at=((0, "red"),),
                width=8,
            )
        )
        .with_panel(
            timeseries(
                f"{slo.name}: error ratio, storefront vs load generator (5m)",
                [
                    q(f"slo:sli_error:ratio_rate5m{sel}", "storefront (server)"),
                    q(f"slo:client_sli_error:ratio_rate5m{sel}", "load generator (client)"),
                ],
                unit="percentunit",
                lines_at=((slo.budget, "red"),),
                min_value=0,
                description="The same SLI from both ends; a gap means errors the server never saw (network, timeouts) or vice versa.",
                width=8,
            )
        )
    )


def slo_dashboard(model: RulesModel) -> db.Dashboard:
    """Build the SLO dashboard for every SLO of ``model`` (pure; no I/O)."""
    board = new_dashboard(
        uid=UID,
        title="peakload · SLOs",
        description=f"Error budgets over {model.window} and multiwindow burn rates for service {model.service}, from the SLO spec's recording rules.",
        tags=["slo"],
    )
    board = (
        board.with_row(row("All SLOs"))
        .with_panel(
            bar_gauge(
                f"Error budget remaining ({model.window})",
                [q("slo:period_error_budget_remaining:ratio", "{{slo}}")],
                unit="percentunit",
                steps=_BUDGET_STEPS,
                min_value=0,
                max_value=1,
            )
        )
        .with_panel(
            timeseries(
                "Burn rate now (5m) by SLO",
                [q("slo:current_burn_rate:ratio", "{{slo}}")],
                lines_at=((1, "yellow"), (14.4, "red")),
                min_value=0,
            )
        )
    )
    for slo in model.slos:
        board = _slo_row(board, slo, model)
    return board
