"""Stages 2–3 of the rules pipeline: validate the SLO spec, then model it.

The model holds everything the renderers need — no spec objects, no I/O — so
``render_rules(model)`` and the SLO dashboard stay pure.

Usage::

    model = to_model(validate(load_slo_spec("profiles/slo.yaml")))
    model.slos[0].server.error_ratio("5m")  # PromQL text (server is None for an SLO without requests)

Client-side SLIs (the load generator's ``peakload_*`` metrics) select the SLO's
journey ``steps`` (label ``step``) when it names any, else its requests
(``name`` + ``method``); server-side SLIs (the storefront's ``route`` metrics)
exist only for an SLO that names ``requests``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from dashboards import metric_names as m
from dashboards.errors import RulesGenerationError
from dashboards.promql import format_duration, format_le, format_number, selector
from peakload.core import SLOSpec
from peakload.core.steps import STEPS

__all__ = [
    "SLI_WINDOWS",
    "BurnCondition",
    "PAGE_CONDITIONS",
    "TICKET_CONDITIONS",
    "SLISource",
    "SLOModel",
    "RulesModel",
    "validate",
    "to_model",
    "camel_name",
]

# Windows of the error-ratio recording rules; every alert window is one of them.
SLI_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
_LONGEST_ALERT_WINDOW_S = 3 * 86400
_WINDOW = "[__WINDOW__]"  # placeholder for the range of a rate(), filled per window


@dataclass(frozen=True)
class BurnCondition:
    """``long`` AND ``short`` error ratio above ``factor`` × budget (SRE Workbook, table 5-8)."""

    long: str
    short: str
    factor: float


PAGE_CONDITIONS = (BurnCondition("1h", "5m", 14.4), BurnCondition("6h", "30m", 6.0))
TICKET_CONDITIONS = (BurnCondition("1d", "2h", 3.0), BurnCondition("3d", "6h", 1.0))


@dataclass(frozen=True)
class SLISource:
    """Where one SLI is read from: PromQL for bad and total events, ``[__WINDOW__]`` standing for the range."""

    errors: str  # an instant vector with no labels, e.g. sum(rate(x{...}[__WINDOW__]))
    total: str
    good_minus: bool = False  # latency: errors = 1 - good/total (``errors`` holds the good events)

    def error_ratio(self, window: str) -> str:
        errors = self.errors.replace(_WINDOW, f"[{window}]")
        total = self.total.replace(_WINDOW, f"[{window}]")
        if self.good_minus:
            return f"1 - (\n  {errors}\n  /\n  {total}\n)"
        # No bad series yet must read as ratio 0, not as "no data".
        return f"(\n  {errors}\n  or vector(0)\n)\n/\n{total}"


@dataclass(frozen=True)
class SLOModel:
    name: str
    service: str
    description: str
    journey: str
    kind: str  # availability | latency
    objective: float  # percent, e.g. 99.9
    budget: float  # ratio, e.g. 0.001
    threshold_le: str | None  # latency bucket edge, e.g. "0.3"
    page: bool
    requests: tuple[tuple[str, str], ...]  # (METHOD, route template); may be empty when steps are given
    steps: tuple[str, ...]  # journey steps, sorted; empty: the client side selects by requests
    server: SLISource | None  # None without requests: no server-side SLI, so no burn-rate alerts
    client: SLISource

    @property
    def objective_ratio(self) -> str:
        return format_number(self.objective / 100)

    @property
    def budget_text(self) -> str:
        return format_number(self.budget)

    @property
    def alert_name(self) -> str:
        return camel_name(self.name) + "ErrorBudgetBurn"


@dataclass(frozen=True)
class RulesModel:
    service: str
    window: str  # the SLO period as a Prometheus duration, e.g. "30d"
    window_days: float
    slos: tuple[SLOModel, ...]


def camel_name(name: str) -> str:
    """``checkout-latency`` → ``CheckoutLatency``."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]", name) if part)


def _fail(slo: str | None, reason: str) -> RulesGenerationError:
    return RulesGenerationError(stage="validate", slo=slo, reason=reason)


def validate(spec: SLOSpec) -> SLOSpec:
    """Check what the rules need beyond the spec's own schema; raise naming the SLO."""
    if not isinstance(spec, SLOSpec):
        raise _fail(None, f"expected an SLOSpec, got {type(spec).__name__}")
    if spec.window != int(spec.window) or spec.window <= _LONGEST_ALERT_WINDOW_S:
        where = f" in {spec.source}" if spec.source else ""  # the spec's own schema allows it: say which file
        raise _fail(
            None, f"window must be a whole number of seconds longer than 3d (the longest alert window), got {spec.window:g}s{where}"
        )
    if not spec.slos:
        raise _fail(None, "the spec has no SLOs")
    seen: set[str] = set()
    for slo in spec.slos:
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", slo.name or ""):
            raise _fail(slo.name, "name must be lowercase letters, digits and '-'")
        if slo.name in seen:
            raise _fail(slo.name, "duplicate SLO name")
        seen.add(slo.name)
        if not 0 < slo.objective < 100:
            raise _fail(slo.name, f"objective must be > 0 and < 100, got {slo.objective:g}")
        if not slo.requests and not slo.steps:
            raise _fail(slo.name, "name steps (journey steps) or requests ('METHOD /route/template'), or both")
        for step in slo.steps:
            if step not in STEPS:
                raise _fail(slo.name, f"unknown journey step {step!r}; expected one of {', '.join(STEPS)}")
        for req in slo.requests:
            method, _, route = req.partition(" ")
            if not method.isupper() or not route.startswith("/") or " " in route:
                raise _fail(slo.name, f"expected request 'METHOD /route/template', got {req!r}")
        if slo.kind == "latency":
            if slo.threshold is None or not math.isfinite(slo.threshold) or slo.threshold <= 0:
                raise _fail(slo.name, f"a latency SLO needs a positive threshold (a histogram bucket edge), got {slo.threshold!r}")
        elif slo.kind != "availability":
            raise _fail(slo.name, f"kind must be 'availability' or 'latency', got {slo.kind!r}")
    return spec


def _by_method(requests: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for method, route in requests:
        out.setdefault(method, []).append(route)
    return out


def _sum_rate(metric: str, route_label: str, requests: tuple[tuple[str, str], ...], exact: dict[str, str]) -> str:
    # One selector per method keeps (method, route) pairs exact: a cross product
    # of method=~ and route=~ would also count e.g. GET on a POST-only route.
    parts = [
        f"rate({selector(metric, {**exact, 'method': method}, **{route_label: routes})}{_WINDOW})"
        for method, routes in sorted(_by_method(requests).items())
    ]
    return f"sum({' or '.join(parts)})"


def _sum_rate_steps(metric: str, steps: tuple[str, ...], exact: dict[str, str]) -> str:
    # a step is one label whatever the route and method: one selector
    return f"sum(rate({selector(metric, exact, step=steps)}{_WINDOW}))"


def _server_source(kind: str, requests: tuple[tuple[str, str], ...], le: str | None) -> SLISource | None:
    if not requests:
        return None
    if kind == "availability":
        return SLISource(
            errors=_sum_rate(m.SF_REQUESTS, "route", requests, {"status_class": "5xx"}),
            total=_sum_rate(m.SF_REQUESTS, "route", requests, {}),
        )
    assert le is not None
    return SLISource(
        errors=_sum_rate(m.SF_DURATION + "_bucket", "route", requests, {"le": le}),
        total=_sum_rate(m.SF_DURATION + "_count", "route", requests, {}),
        good_minus=True,
    )


def _client_source(kind: str, requests: tuple[tuple[str, str], ...], steps: tuple[str, ...], le: str | None) -> SLISource:
    def rate(metric: str, exact: dict[str, str]) -> str:
        return _sum_rate_steps(metric, steps, exact) if steps else _sum_rate(metric, "name", requests, exact)

    if kind == "availability":
        not_counted = "|".join(m.CLIENT_ERROR_TYPES_NOT_COUNTED)
        return SLISource(errors=rate(m.FAILURES, {"error_type": f"!~{not_counted}"}), total=rate(m.REQUESTS, {}))
    assert le is not None
    return SLISource(errors=rate(m.DURATION + "_bucket", {"le": le}), total=rate(m.DURATION + "_count", {}), good_minus=True)


def to_model(spec: SLOSpec) -> RulesModel:
    """Turn a validated spec into the renderers' model."""
    slos = []
    for slo in spec.slos:
        try:
            requests = tuple(sorted({(method, route) for method, _, route in (r.partition(" ") for r in slo.requests)}))
            steps = tuple(sorted(set(slo.steps)))
            le = format_le(slo.threshold) if slo.kind == "latency" else None
            server = _server_source(slo.kind, requests, le)
            client = _client_source(slo.kind, requests, steps, le)
        except (ValueError, AssertionError) as exc:
            raise RulesGenerationError(stage="model", slo=slo.name, reason=str(exc) or type(exc).__name__) from None
        slos.append(
            SLOModel(
                name=slo.name,
                service=spec.service,
                description=slo.description,
                journey=slo.journey,
                kind=slo.kind,
                objective=slo.objective,
                budget=round(1 - slo.objective / 100, 12),
                threshold_le=le,
                page=slo.page,
                requests=requests,
                steps=steps,
                server=server,
                client=client,
            )
        )
    return RulesModel(
        service=spec.service,
        window=format_duration(spec.window),
        window_days=spec.window / 86400,
        slos=tuple(slos),
    )
