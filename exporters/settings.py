"""What the exporter needs to know about a run: id, profile name, bucket edges, outputs.

Usage::

    settings = ExporterSettings.from_profile(load_profile("profiles/smoke.yaml"), run_id="r-1",
                                             metrics_port=9646, results_dir=Path("results/r-1"))
    settings.edges   # defaults ∪ the profile's SLO latency thresholds
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exporters.histogram import bucket_edges
from peakload.core import ConfigError, Profile, load_slo_spec

__all__ = ["ExporterSettings"]


@dataclass(frozen=True, kw_only=True)
class ExporterSettings:
    """Run id and profile name (for ``peakload_run_info``), bucket edges, /metrics port, snapshot output."""

    run_id: str
    profile_name: str
    edges: tuple[float, ...]
    metrics_port: int = 0  # 0 = no /metrics server
    results_dir: Path | None = None  # None = no snapshots.jsonl
    snapshot_interval: float = 2.0
    # what ``hdr`` measures (snapshot header, contracts §5): Locust's response time (closed model), or from
    # the intended send time (open model: corrects coordinated omission; service time goes to ``service_hdr``)
    latency_basis: str = "response"

    def __post_init__(self) -> None:
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"PEAKLOAD_METRICS_PORT: expected a port 0..65535 (0 = off), got {self.metrics_port}")
        if self.latency_basis not in ("response", "intended-start", "service"):
            raise ConfigError(f"latency basis: expected response, intended-start or service, got {self.latency_basis!r}")
        if not 0.1 <= self.snapshot_interval <= 3600:
            raise ConfigError(f"PEAKLOAD_SNAPSHOT_INTERVAL: expected seconds between 0.1 and 3600, got {self.snapshot_interval:g}")

    @classmethod
    def from_profile(
        cls,
        profile: Profile,
        *,
        run_id: str,
        metrics_port: int = 0,
        results_dir: Path | None = None,
        snapshot_interval: float = 2.0,
    ) -> ExporterSettings:
        """Settings whose bucket edges include every latency threshold of the profile's SLO spec.

        Raises ConfigError for an unreadable SLO spec or out-of-range port/interval.
        """
        slo_path = profile.slo_path()
        slo = load_slo_spec(slo_path) if slo_path is not None else None
        return cls(
            run_id=run_id,
            profile_name=profile.name,
            edges=bucket_edges(slo=slo),
            metrics_port=metrics_port,
            results_dir=results_dir,
            snapshot_interval=snapshot_interval,
            latency_basis="intended-start" if profile.arrivals is not None else "response",
        )
