"""The target's own figures during a run: what is scraped, how each figure is computed, and the file they go to.

Usage::

    spec = ServerSpec(endpoints=["http://127.0.0.1:8080/metrics"], figures={"db_pool_in_use": FigureSpec(metric="...")})
    scrape = parse_exposition(text)                       # {sample name: [(labels, value), ...]}
    figures = evaluate(spec.figures, previous, scrape, seconds=2.0)   # {"db_pool_in_use": 3.0, ...}; None = n/a

A figure is one number per snapshot interval, computed from two scrapes of
Prometheus-format endpoints (the interval's start and end) or from a PromQL
query to a Prometheus server at the interval's end:

- ``gauge``: the sample's value at the end (series matching ``labels`` combined
  by ``agg``: sum, max, min or avg);
- ``rate``: the counter's increase over the interval ÷ its seconds (a counter
  reset counts from 0, as Prometheus does);
- ``ratio``: ``metric`` ÷ ``of`` — increases when both are counters (names
  ending ``_total``, ``_count``, ``_sum``, ``_bucket``), values otherwise; n/a
  when the denominator is 0;
- ``quantile``: the ``q`` quantile of a histogram's observations in the
  interval (``metric`` is the histogram's name; its ``_bucket`` increases summed
  by ``le``, linear inside the bucket, as ``histogram_quantile`` does).

``labels`` select series by exact value, or by a full regular expression
when the value starts with ``~`` (``{status_class: "~5.."}``).

The file (``server.jsonl``, docs/contracts.md): a header line naming the
figures and their units, then one line per interval ``{"t_start", "t_end",
"figures": {name: number | null}, "errors": [...]}``, aligned on the same
wall-clock boundaries as ``snapshots.jsonl``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from peakload.core.fields import Duration, Model

__all__ = [
    "SERVER_JSONL",
    "FigureSpec",
    "PrometheusSource",
    "ServerSpec",
    "STOREFRONT_FIGURES",
    "Scrape",
    "parse_exposition",
    "evaluate",
    "FIGURE_NAME",
    "read_server",
    "unit_of",
]

SERVER_JSONL = "server.jsonl"
FIGURE_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_METRIC_NAME = r"^[a-zA-Z_:][a-zA-Z0-9_:]{0,199}$"
_COUNTER_SUFFIXES = ("_total", "_count", "_sum", "_bucket")
MAX_FIGURES = 50
MAX_ENDPOINTS = 20
MAX_SCRAPE_BYTES = 8 << 20  # one exposition; a node exporter's is ~100 KiB

Labels = dict[Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]{0,99}$")], Annotated[str, Field(max_length=200)]]


class FigureSpec(Model):
    """One figure from scraped samples (see the module's docstring for the kinds)."""

    metric: str = Field(pattern=_METRIC_NAME)
    kind: Literal["gauge", "rate", "ratio", "quantile"] = "gauge"
    labels: Labels = {}
    agg: Literal["sum", "max", "min", "avg"] = "sum"
    of: str | None = Field(default=None, pattern=_METRIC_NAME)  # ratio: the denominator's sample name
    of_labels: Labels = {}
    q: float | None = Field(default=None, gt=0, lt=1)  # quantile
    unit: str = Field(default="", max_length=20)  # shown beside the value: "s", "ratio", "1/s", "connections"

    @model_validator(mode="after")
    def _kind_fields(self) -> FigureSpec:
        if self.kind == "ratio" and self.of is None:
            raise ValueError("kind ratio needs `of` (the denominator's sample name)")
        if self.kind == "quantile" and self.q is None:
            raise ValueError("kind quantile needs `q` (0 < q < 1)")
        if self.kind != "ratio" and (self.of is not None or self.of_labels):
            raise ValueError("`of`/`of_labels` only go with kind ratio")
        if self.kind != "quantile" and self.q is not None:
            raise ValueError("`q` only goes with kind quantile")
        for name, value in [*self.labels.items(), *self.of_labels.items()]:
            if value.startswith("~"):
                try:
                    re.compile(value[1:])
                except re.error as exc:
                    raise ValueError(f"labels.{name}: {value!r} is not a regular expression ({exc})") from None
        return self


class PrometheusSource(Model):
    """A Prometheus server: one PromQL instant query per figure at each interval's end."""

    url: str = Field(min_length=1, max_length=2000)
    queries: dict[Annotated[str, Field(pattern=FIGURE_NAME)], Annotated[str, Field(min_length=1, max_length=4000)]] = Field(
        min_length=1, max_length=MAX_FIGURES
    )
    units: dict[str, Annotated[str, Field(max_length=20)]] = {}


class ServerSpec(Model):
    """The profile's ``server`` section: which server-side figures a run records.

    Without it, a run against the storefront (embedded or not) scrapes the
    shop's ``/metrics`` for :data:`STOREFRONT_FIGURES`; other dialects record
    none unless endpoints or a Prometheus are given.
    """

    enabled: bool = True
    interval: Duration | None = None  # default: the snapshot interval (lines align)
    endpoints: list[Annotated[str, Field(min_length=1, max_length=2000)]] = Field(default=[], max_length=MAX_ENDPOINTS)
    figures: dict[Annotated[str, Field(pattern=FIGURE_NAME)], FigureSpec] = Field(default={}, max_length=MAX_FIGURES)
    prometheus: PrometheusSource | None = None

    @field_validator("interval")
    @classmethod
    def _interval(cls, v: float | None) -> float | None:
        if v is not None and not 0.5 <= v <= 3600:
            raise ValueError(f"expected 0.5s to 1h, got {v:g}s")
        return v

    @model_validator(mode="after")
    def _sources(self) -> ServerSpec:
        if self.figures and not self.endpoints:
            raise ValueError("figures need endpoints to scrape (or use prometheus.queries)")
        if self.prometheus is not None:
            both = set(self.figures) & set(self.prometheus.queries)
            if both:
                raise ValueError(f"figure {sorted(both)[0]!r} is both scraped and queried: name one source")
        return self


# The storefront's own series (storefront/metrics.py), for a run against it.
STOREFRONT_FIGURES: dict[str, FigureSpec] = {
    "server_rps": FigureSpec(metric="storefront_http_requests_total", kind="rate", unit="1/s"),
    "server_error_ratio": FigureSpec(
        metric="storefront_http_requests_total",
        labels={"status_class": "5xx"},
        kind="ratio",
        of="storefront_http_requests_total",
        unit="ratio",
    ),
    "server_p95": FigureSpec(metric="storefront_http_request_duration_seconds", kind="quantile", q=0.95, unit="s"),
    "server_p99": FigureSpec(metric="storefront_http_request_duration_seconds", kind="quantile", q=0.99, unit="s"),
    "db_pool_in_use": FigureSpec(metric="storefront_db_pool_connections_in_use", agg="max", unit="connections"),
    "db_pool_utilisation": FigureSpec(
        metric="storefront_db_pool_connections_in_use", kind="ratio", of="storefront_db_pool_connections_max", unit="ratio"
    ),
    "cache_hit_ratio": FigureSpec(
        metric="storefront_cache_requests_total", labels={"result": "hit"}, kind="ratio", of="storefront_cache_requests_total", unit="ratio"
    ),
    "cpu": FigureSpec(metric="process_cpu_seconds_total", kind="rate", unit="cores"),
}

Scrape = dict[str, list[tuple[dict[str, str], float]]]


def parse_exposition(text: str) -> Scrape:
    """Prometheus text exposition → samples by name (prometheus_client's parser; ValueError on bad text)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def _matches(labels: Mapping[str, str], want: Mapping[str, str]) -> bool:
    for key, value in want.items():
        got = labels.get(key, "")
        if value.startswith("~"):
            if re.fullmatch(value[1:], got) is None:
                return False
        elif got != value:
            return False
    return True


def _select(scrape: Scrape, name: str, labels: Mapping[str, str]) -> list[tuple[dict[str, str], float]]:
    return [(lab, v) for lab, v in scrape.get(name, []) if _matches(lab, labels)]


def _key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def _increase(prev: Scrape, cur: Scrape, name: str, labels: Mapping[str, str]) -> float | None:
    """Summed increase of the matching counter series between two scrapes (None when the series are absent)."""
    if name not in cur:
        return None  # no such series at all: n/a
    now = _select(cur, name, labels)  # none matching (no 5xx answered yet): an increase of 0
    before = {_key(lab): v for lab, v in _select(prev, name, labels)}
    total = 0.0
    for lab, v in now:
        was = before.get(_key(lab), 0.0)  # a series born in the interval counts from 0
        total += v - was if v >= was else v  # a reset counts from 0
    return total


def _combine(values: Iterable[float], agg: str) -> float | None:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return None
    if agg == "max":
        return max(vals)
    if agg == "min":
        return min(vals)
    if agg == "avg":
        return sum(vals) / len(vals)
    return sum(vals)


def _is_counter(name: str) -> bool:
    return name.endswith(_COUNTER_SUFFIXES)


def _amount(prev: Scrape, cur: Scrape, name: str, labels: Mapping[str, str], agg: str) -> float | None:
    if _is_counter(name):
        return _increase(prev, cur, name, labels)
    return _combine((v for _, v in _select(cur, name, labels)), agg)


def _quantile(prev: Scrape, cur: Scrape, name: str, labels: Mapping[str, str], q: float) -> float | None:
    buckets: dict[float, float] = {}
    now = _select(cur, name + "_bucket", labels)
    before = {_key(lab): v for lab, v in _select(prev, name + "_bucket", labels)}
    for lab, v in now:
        try:
            le = float(lab.get("le", "nan"))
        except ValueError:
            continue
        if math.isnan(le):
            continue
        was = before.get(_key(lab), 0.0)
        buckets[le] = buckets.get(le, 0.0) + (v - was if v >= was else v)
    if not buckets or math.inf not in buckets:
        return None
    edges = sorted(buckets)
    total = buckets[math.inf]
    if total <= 0:
        return None
    rank = q * total
    lower_edge, lower_count = 0.0, 0.0
    for edge in edges:
        count = buckets[edge]
        if count >= rank:
            if math.isinf(edge):
                return lower_edge  # beyond the last finite bucket: its edge, as histogram_quantile does
            if count == lower_count:
                return edge
            return lower_edge + (edge - lower_edge) * (rank - lower_count) / (count - lower_count)
        lower_edge, lower_count = edge, count
    return None


def evaluate(figures: Mapping[str, FigureSpec], prev: Scrape | None, cur: Scrape, *, seconds: float) -> dict[str, float | None]:
    """Every figure for the interval between the scrapes ``prev`` and ``cur`` (None: n/a)."""
    out: dict[str, float | None] = {}
    for name, f in figures.items():
        value: float | None
        if f.kind == "gauge":
            value = _combine((v for _, v in _select(cur, f.metric, f.labels)), f.agg)
        elif prev is None:
            value = None  # rates, ratios of counters and quantiles need the interval's start
            if f.kind == "ratio" and not _is_counter(f.metric) and not _is_counter(f.of or ""):
                value = _ratio(_amount({}, cur, f.metric, f.labels, f.agg), _amount({}, cur, f.of or "", f.of_labels, f.agg))
        elif f.kind == "rate":
            inc = _increase(prev, cur, f.metric, f.labels)
            value = None if inc is None or seconds <= 0 else inc / seconds
        elif f.kind == "ratio":
            value = _ratio(_amount(prev, cur, f.metric, f.labels, f.agg), _amount(prev, cur, f.of or "", f.of_labels, f.agg))
        else:
            value = _quantile(prev, cur, f.metric, f.labels, f.q or 0.5)
        out[name] = None if value is None or not math.isfinite(value) else round(value, 9)
    return out


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den <= 0:
        return None
    return num / den


def unit_of(spec: ServerSpec | None, name: str) -> str:
    """The unit a figure is shown in ("" when none was given)."""
    if spec is not None and spec.prometheus is not None and name in spec.prometheus.queries:
        return spec.prometheus.units.get(name, "")
    figures: Mapping[str, FigureSpec] = (spec.figures if spec is not None and spec.figures else STOREFRONT_FIGURES) or {}
    f = figures.get(name)
    return f.unit if f is not None else ""


def read_server(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """(header, interval lines, problems) of a ``server.jsonl``; never raises for bad content (a line with a
    non-number figure keeps its other figures; an undecodable or truncated line is a problem and skipped)."""
    from peakload.core.records import numbered_json_lines

    problems: list[str] = []
    header: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for lineno, obj in numbered_json_lines(path, problems):
        if obj.get("kind") == "header":
            header = obj
            continue
        figures, t_start, t_end = obj.get("figures"), obj.get("t_start"), obj.get("t_end")
        if not (
            isinstance(figures, dict)
            and isinstance(t_start, (int, float))
            and isinstance(t_end, (int, float))
            and math.isfinite(t_start)
            and math.isfinite(t_end)
        ):
            problems.append(f"{path.name} line {lineno}: expected t_start, t_end and figures; skipped")
            continue
        clean: dict[str, float | None] = {}
        for name, value in figures.items():
            if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
                clean[str(name)[:63]] = value
            else:
                problems.append(f"{path.name} line {lineno}: figure {str(name)[:40]!r} is not a number; read as n/a")
                clean[str(name)[:63]] = None
        errors = obj.get("errors")
        rows.append(
            {"t_start": float(t_start), "t_end": float(t_end), "figures": clean, "errors": errors if isinstance(errors, list) else []}
        )
    return header, rows, problems
