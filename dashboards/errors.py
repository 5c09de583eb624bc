"""Errors of the dashboards room; each message is one line a user can act on.

Usage::

    try:
        write_rules(spec, out_dir)
    except DashboardsError as exc:
        print(exc)  # could not generate "checkout-latency" rules: validate: ...
"""

from __future__ import annotations

from peakload.core import PeakloadError

__all__ = [
    "DashboardsError",
    "RulesGenerationError",
    "DashboardBuildError",
    "PushError",
    "GrafanaAuthError",
    "GrafanaUnreachableError",
    "PrometheusError",
]


class DashboardsError(PeakloadError):
    """Base class for everything this room raises (CLI exit code 2 unless overridden)."""


class RulesGenerationError(DashboardsError):
    """A stage of the rules pipeline failed for one SLO (or for the spec as a whole)."""

    def __init__(self, *, stage: str, slo: str | None, reason: str) -> None:
        self.stage = stage
        self.slo = slo
        self.reason = reason
        what = f'"{slo}" rules' if slo else "rules"
        super().__init__(f"could not generate {what}: {stage}: {reason}")


class DashboardBuildError(DashboardsError):
    """A dashboard could not be built or written, or a panel query could not be extracted."""


class PushError(DashboardsError):
    """Pushing dashboards to Grafana failed (exit code 1: the environment, not the input)."""

    exit_code = 1


class GrafanaAuthError(PushError):
    """Grafana refused the token (401/403)."""


class GrafanaUnreachableError(PushError):
    """Grafana could not be reached (connection refused, DNS, timeout)."""


class PrometheusError(DashboardsError):
    """The Prometheus process did not start/become ready, or a query failed."""

    exit_code = 3
