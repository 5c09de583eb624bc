"""RTO/RPO budgets an experiment declares, and the verdict on a measurement against them.

Declared in the experiment file as a Chaos Toolkit extension (Chaos Toolkit only
checks that an extension has a name, so ``chaos validate`` accepts it)::

    "extensions": [{"name": "peakload",
                    "budgets": {"rto_seconds": 15, "rpo_lost": 10, "rpo_seconds": 2}}]

- ``rto_seconds`` (required): the prober must be back within SLO at most this
  long after the first fault (``chaos.measure``'s RTO);
- ``rpo_lost`` (required): at most this many acknowledged canary orders may be
  missing afterwards;
- ``rpo_seconds`` (optional): the acknowledged writes lost may span at most this long.

Usage::

    budgets = budgets_from_experiment(experiment, source="db-failover.json")  # ExperimentFileError when malformed
    reasons = judge(budgets, measurement)          # [] when within budget, else one reason per breach

A budget that cannot be checked is a breach: no measurement, not recovered
while observed, or no RPO because the canary got no order acknowledged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from chaos.errors import ExperimentFileError
from chaos.measure import Measurement

__all__ = ["EXTENSION", "Budgets", "budgets_from_experiment", "judge"]

EXTENSION = "peakload"
_REQUIRED = ("rto_seconds", "rpo_lost")
_OPTIONAL = ("rpo_seconds",)


@dataclass(frozen=True)
class Budgets:
    """How long the shop may stay outside its SLO, and how much acknowledged data may be lost."""

    rto_seconds: float
    rpo_lost: int
    rpo_seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        rpo = f"RPO <= {self.rpo_lost} lost commits"
        if self.rpo_seconds is not None:
            rpo += f" over <= {self.rpo_seconds:g}s"
        return f"RTO <= {self.rto_seconds:g}s, {rpo}"


def _number(value: Any, where: str, *, integer: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok or (integer and value != int(value)):
        kind = "a whole number >= 0" if integer else "a number of seconds >= 0"
        raise ExperimentFileError(f"{where}: expected {kind}, got {value!r}")
    return float(value)


def budgets_from_experiment(experiment: Mapping[str, Any], *, source: str = "experiment") -> Budgets:
    """The budgets of the ``peakload`` extension; ExperimentFileError naming the file and field when absent or malformed."""
    exts = experiment.get("extensions")
    where = f"{source}: extensions[name={EXTENSION}]"
    ext = next((e for e in exts if isinstance(e, Mapping) and e.get("name") == EXTENSION), None) if isinstance(exts, list) else None
    if ext is None:
        raise ExperimentFileError(
            f'{where}: missing; expected {{"name": "{EXTENSION}", "budgets": {{"rto_seconds": N, "rpo_lost": N}}}} in "extensions"'
        )
    budgets = ext.get("budgets")
    if not isinstance(budgets, Mapping):
        raise ExperimentFileError(f"{where}.budgets: expected an object with rto_seconds and rpo_lost, got {budgets!r}")
    unknown = sorted(set(budgets) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise ExperimentFileError(f"{where}.budgets: unknown field {unknown[0]!r}; expected {', '.join(_REQUIRED + _OPTIONAL)}")
    for key in _REQUIRED:
        if key not in budgets:
            raise ExperimentFileError(f"{where}.budgets.{key}: missing")
    rpo_s = budgets.get("rpo_seconds")
    return Budgets(
        rto_seconds=_number(budgets["rto_seconds"], f"{where}.budgets.rto_seconds", integer=False),
        rpo_lost=int(_number(budgets["rpo_lost"], f"{where}.budgets.rpo_lost", integer=True)),
        rpo_seconds=None if rpo_s is None else _number(rpo_s, f"{where}.budgets.rpo_seconds", integer=False),
    )


def judge(budgets: Budgets, m: Measurement | None) -> list[str]:
    """One reason per budget the measurement breaks (or cannot show it keeps); [] when within budget."""
    if m is None:
        return ["no measurement (the peakload-measurement control did not report): RTO/RPO budgets unchecked"]
    out = []
    if not m.recovered or m.rto_seconds is None:
        out.append(f"RTO over budget: not back to SLO while observed (budget {budgets.rto_seconds:g}s)")
    elif m.rto_seconds > budgets.rto_seconds:
        out.append(f"RTO {m.rto_seconds:.2f}s over budget {budgets.rto_seconds:g}s")
    rpo = m.rpo
    if rpo is None:
        out.append("RPO unchecked: the canary got no order acknowledged")
    elif rpo.get("error") or not isinstance(rpo.get("lost"), int):
        out.append(f"RPO unchecked: {rpo.get('error') or 'no lost count'}")
    else:
        if rpo["lost"] > budgets.rpo_lost:
            out.append(f"RPO {rpo['lost']} of {rpo.get('acked')} acknowledged commits lost, budget {budgets.rpo_lost}")
        span = rpo.get("rpo_seconds")
        if budgets.rpo_seconds is not None and (span is None or span > budgets.rpo_seconds):
            out.append(f"RPO {span}s of acknowledged writes lost, budget {budgets.rpo_seconds:g}s")
    return out
