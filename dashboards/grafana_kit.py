"""Shared building blocks for the dashboards (grafana-foundation-sdk builders).

Every panel reads from the ``${datasource}`` variable; every query is a
Prometheus target. Panel ids are assigned at render time, in layout order.

Usage::

    board = new_dashboard(uid="peakload-x", title="peakload · X", description="...")
    board.with_row(row("Traffic")).with_panel(timeseries("Requests/s", [q("sum(rate(x[$__rate_interval]))", "all")], unit="reqps"))
    text = render_dashboard(board)
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from grafana_foundation_sdk.builders import bargauge, stat
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus as prom
from grafana_foundation_sdk.builders import timeseries as ts
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm

__all__ = [
    "DATASOURCE_UID",
    "DATASOURCE",
    "RUN_JOIN",
    "q",
    "new_dashboard",
    "row",
    "timeseries",
    "stat_panel",
    "bar_gauge",
    "query_variable",
    "custom_variable",
    "thresholds",
    "render_dashboard",
]

DATASOURCE_UID = "peakload-prometheus"  # the provisioned datasource (provisioning/datasources/peakload.yaml)
DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")

# Keep only series scraped from the exporter of the chosen run(s): the run id is
# a label of peakload_run_info only (never of the request metrics).
RUN_JOIN = '* on (job, instance) group_left () peakload_run_info{run_id=~"$run_id"}'

_REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class _Query:
    """A Prometheus target before its refId is known."""

    def __init__(self, expr: str, legend: str, *, instant: bool) -> None:
        self.expr, self.legend, self.instant = expr, legend, instant

    def build(self, ref_id: str) -> prom.Dataquery:
        target = prom.Dataquery().expr(self.expr).legend_format(self.legend).ref_id(ref_id).datasource(DATASOURCE)
        return target.instant() if self.instant else target.range()


def q(expr: str, legend: str = "__auto", *, instant: bool = False) -> _Query:
    """One target: PromQL text and its legend (``{{label}}`` templates allowed)."""
    return _Query(expr, legend, instant=instant)


def _targets(queries: Sequence[_Query]) -> list[prom.Dataquery]:
    if not queries or len(queries) > len(_REF_IDS):
        raise ValueError(f"a panel takes 1..{len(_REF_IDS)} queries, got {len(queries)}")
    return [query.build(_REF_IDS[i]) for i, query in enumerate(queries)]


def thresholds(*steps: tuple[float | None, str]) -> db.ThresholdsConfig:
    """``thresholds((None, "green"), (0.8, "red"))`` — the first step's value must be None (base)."""
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps([dm.Threshold(value=v, color=c) for v, c in steps])


def new_dashboard(*, uid: str, title: str, description: str, tags: Sequence[str] = ()) -> db.Dashboard:
    """A dashboard with the datasource variable, 5s refresh and the last 30 minutes shown."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["peakload", *tags])
        .editable()
        .refresh("5s")
        .time("now-30m", "now")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(
            db.DatasourceVariable("datasource")
            .label("Data source")
            .type("prometheus")
            .current(dm.VariableOption(selected=True, text=DATASOURCE_UID, value=DATASOURCE_UID))
        )
    )


def row(title: str) -> db.Row:
    return db.Row(title)


def timeseries(
    title: str,
    queries: Sequence[_Query],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    lines_at: Sequence[tuple[float, str]] = (),
    stack: bool = False,
    min_value: float | None = None,
) -> ts.Panel:
    """A time series panel; ``lines_at`` draws dashed threshold lines (e.g. burn-rate factors)."""
    panel = (
        ts.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .fill_opacity(10)
        .line_width(1)
        .legend(cb.VizLegendOptions().display_mode(cm.LegendDisplayMode.LIST).placement(cm.LegendPlacement.BOTTOM).show_legend(True))
        .tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    )
    if min_value is not None:
        panel = panel.min(min_value)
    if stack:
        panel = panel.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL))
    if lines_at:
        panel = panel.thresholds(thresholds((None, "transparent"), *lines_at)).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
        )
    return panel


def stat_panel(
    title: str,
    queries: Sequence[_Query],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 4,
    height: int = 4,
    steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
    decimals: float | None = None,
) -> stat.Panel:
    """A single big number (last value), coloured by ``steps``."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .graph_mode(cm.BigValueGraphMode.AREA)
        .color_mode(cm.BigValueColorMode.VALUE)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(*steps))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def bar_gauge(
    title: str,
    queries: Sequence[_Query],
    *,
    unit: str = "short",
    description: str = "",
    width: int = 12,
    height: int = 8,
    steps: Sequence[tuple[float | None, str]] = ((None, "blue"),),
    min_value: float | None = None,
    max_value: float | None = None,
) -> bargauge.Panel:
    """Horizontal bars, one per series (funnels, budgets per SLO)."""
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets(_targets(queries))
        .unit(unit)
        .span(width)
        .height(height)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .display_mode(cm.BarGaugeDisplayMode.GRADIENT)
        .reduce_options(cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .thresholds(thresholds(*steps))
    )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def query_variable(name: str, label: str, query: str, *, include_all: bool = True, multi: bool = True) -> db.QueryVariable:
    """A variable filled from Prometheus (``label_values(metric, label)``); "All" means ``.*``."""
    var = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
    )
    return var.all_value(".*") if include_all else var


def custom_variable(name: str, label: str, values: Sequence[str]) -> db.CustomVariable:
    """A fixed list of values, multi-select with "All" (``.*``)."""
    return (
        db.CustomVariable(name)
        .label(label)
        .values(",".join(values))
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(dm.VariableOption(selected=True, text="All", value="$__all"))
        .options([dm.VariableOption(selected=False, text=v, value=v) for v in values])
    )


def render_dashboard(board: db.Dashboard) -> str:
    """Build and serialise deterministically: ids 1..n in layout order, sorted keys, trailing newline."""
    model = board.build()
    next_id = 1
    for panel in model.panels or []:
        panel.id_val = next_id
        next_id += 1
        for inner in getattr(panel, "panels", None) or []:
            inner.id_val = next_id
            next_id += 1
    return json.dumps(model, cls=JSONEncoder, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
