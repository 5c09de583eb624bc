"""The SLO spec (``profiles/slo.yaml``): one source for rules, dashboards and the gate.

Usage::

    spec = load_slo_spec("profiles/slo.yaml")   # peakload.core.loading
    spec.gate_thresholds(), spec.latency_thresholds()
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from peakload.core.fields import Duration, Model
from peakload.core.steps import STEP_SCOPE_PREFIX, check_step
from peakload.core.thresholds import Threshold

__all__ = ["SLO", "SLOSpec"]

# ---------------------------------------------------------------- SLO spec


class SLO(Model):
    """One service-level objective.

    ``availability``: share of successful requests ≥ ``objective`` %;
    ``latency``: share of requests faster than ``threshold`` ≥ ``objective`` %.

    What it covers, at least one of:

    - ``steps``: journey steps (``checkout``, ``pay``, ...; :data:`peakload.core.steps.STEPS`):
      the same on every platform. When given, the load generator's SLIs and the gate select by step.
    - ``requests``: request names (``"METHOD /route/template"``) of the platform. The server-side
      SLIs (the storefront's own ``route`` metrics), and so the burn-rate alerts, need them; without
      ``steps`` the client-side SLIs and the gate select by them too.
    """

    name: str = Field(max_length=100, pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = Field(default="", max_length=10_000)
    journey: str = Field(default="", max_length=200)
    kind: Literal["availability", "latency"]
    steps: list[Annotated[str, Field(max_length=100)]] = []
    requests: list[Annotated[str, Field(max_length=500)]] = []
    objective: float = Field(gt=0, lt=100)
    threshold: Annotated[Duration, Field(gt=0, le=3600)] | None = None
    page: bool = True  # page or only ticket

    @field_validator("requests")
    @classmethod
    def _request_names(cls, v: list[str]) -> list[str]:
        for name in v:
            method, _, path = name.partition(" ")
            if method not in {"GET", "POST", "PUT", "DELETE", "PATCH"} or not path.startswith("/"):
                raise ValueError(f"expected 'METHOD /route/template' like 'GET /api/home', got {name!r}")
        return v

    @field_validator("steps")
    @classmethod
    def _journey_steps(cls, v: list[str]) -> list[str]:
        for step in v:
            check_step(step)
        if len(set(v)) != len(v):
            raise ValueError(f"steps must not repeat, got {v}")
        return v

    @model_validator(mode="after")
    def _covers(self) -> SLO:
        if not self.steps and not self.requests:
            raise ValueError("an SLO needs steps (journey steps like checkout) or requests ('METHOD /route/template'), or both")
        return self

    @model_validator(mode="after")
    def _threshold(self) -> SLO:
        if self.kind == "latency" and not self.threshold:
            raise ValueError("a latency SLO needs threshold (e.g. 300ms)")
        if self.kind == "availability" and self.threshold is not None:
            raise ValueError("an availability SLO takes no threshold")
        return self

    @property
    def error_budget(self) -> float:
        return 1 - self.objective / 100

    @property
    def client_scopes(self) -> list[str]:
        """What the load generator's SLIs and the gate select: ``step:<step>`` per step, else the request names."""
        return [STEP_SCOPE_PREFIX + step for step in self.steps] if self.steps else list(self.requests)


class SLOSpec(Model):
    version: Literal["peakload/v1"]
    service: str = Field(default="storefront", max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    window: Annotated[Duration, Field(ge=3600)] = 30 * 86400.0
    slos: list[SLO] = Field(min_length=1)
    source: str = ""

    @model_validator(mode="after")
    def _unique(self) -> SLOSpec:
        seen: set[str] = set()
        for slo in self.slos:
            if slo.name in seen:
                raise ValueError(f"duplicate SLO name {slo.name!r}")
            seen.add(slo.name)
        return self

    def latency_thresholds(self) -> list[float]:
        """Every latency threshold in seconds (histogram bucket edges must include these)."""
        return sorted({s.threshold for s in self.slos if s.threshold})

    def gate_thresholds(self) -> list[Threshold]:
        """Each SLO as a gate threshold per step (``step:checkout``) or, without steps, per request."""
        out = []
        for slo in self.slos:
            for req in slo.client_scopes:
                if slo.kind == "availability":
                    t = Threshold(scope=req, metric="error_ratio", op="<=", value=round(slo.error_budget, 10), source=f"slo:{slo.name}")
                else:
                    assert slo.threshold is not None  # a latency SLO has one (validated)
                    t = Threshold(scope=req, metric=f"p{slo.objective:g}", op="<=", value=slo.threshold, source=f"slo:{slo.name}")
                out.append(t)
        return out
