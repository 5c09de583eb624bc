"""Recovery figures from probe samples: time to detect, error burst, RTO (time back to SLO).

Usage::

    m = measure(samples, fault_start=t0, fault_end=t1, detections=[(t, "haproxy r1 UP->DOWN")])
    m.rto_seconds, m.error_burst_requests

Pure functions over recorded samples; nothing here talks to the platform.

Definitions (all relative to ``fault_start``, the moment the first fault
was injected):

- a *good* sample answered 200 within ``latency_threshold_s``;
- the probe timeline is cut into ``bucket_s`` buckets; a bucket is *within
  SLO* when at least ``slo_ratio`` of its samples are good (an empty bucket is
  not: the prober could not even send);
- *time to impact*: first bad sample; *time to detect*: first detection
  signal from the platform itself (HAProxy marking a replica down, a node
  changing role), else the time to impact;
- *RTO*: from the fault to the start of the first within-SLO bucket after
  the last bucket that was not (``None`` when the SLO was still broken in
  the final bucket: not recovered while observed);
- *error burst*: failed (non-200 or timed-out) samples from the fault until
  recovery, and the seconds from the first to the last of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from chaos.prober import Sample

__all__ = ["Measurement", "measure"]


@dataclass
class Measurement:
    """What the prober saw around one fault."""

    fault_start: float | None
    fault_end: float | None
    probe_requests: int = 0
    probe_failures: int = 0
    time_to_impact_s: float | None = None
    time_to_detect_s: float | None = None
    detected_by: str = ""
    error_burst_requests: int = 0
    error_burst_seconds: float = 0.0
    slow_requests: int = 0
    rto_seconds: float | None = None
    recovered: bool = False
    recovery_t: float | None = None
    first_failure_t: float | None = None
    last_failure_t: float | None = None
    rpo: dict | None = None
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        def f(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.2f}s"

        rpo = ""
        if self.rpo is not None:
            r = self.rpo
            rpo = f"; RPO {r.get('lost')} of {r.get('acked')} acked commits lost ({r.get('rpo_seconds')} s)"
        rec = f"RTO {f(self.rto_seconds)}" if self.recovered else "NOT back to SLO while observed"
        return (
            f"probes {self.probe_requests} ({self.probe_failures} failed, {self.slow_requests} slow); "
            f"impact after {f(self.time_to_impact_s)}, detected after {f(self.time_to_detect_s)}"
            f"{' by ' + self.detected_by if self.detected_by else ''}; error burst {self.error_burst_requests} "
            f"requests over {self.error_burst_seconds:.2f}s; {rec}{rpo}"
        )


def measure(
    samples: Sequence[Sample],
    *,
    fault_start: float | None,
    fault_end: float | None = None,
    detections: Sequence[tuple[float, str]] = (),
    latency_threshold_s: float = 0.3,
    slo_ratio: float = 0.95,
    bucket_s: float = 1.0,
) -> Measurement:
    """Compute the recovery figures; see the module doc for the definitions."""
    samples = sorted(samples, key=lambda s: s.t)
    m = Measurement(
        fault_start=fault_start,
        fault_end=fault_end,
        probe_requests=len(samples),
        probe_failures=sum(1 for s in samples if not s.ok),
        settings={"latency_threshold_s": latency_threshold_s, "slo_ratio": slo_ratio, "bucket_s": bucket_s},
    )
    m.slow_requests = sum(1 for s in samples if s.ok and s.latency > latency_threshold_s)
    if fault_start is None or not samples:
        return m

    def good(s: Sample) -> bool:
        return s.ok and s.latency <= latency_threshold_s

    after = [s for s in samples if s.t >= fault_start]
    bad_after = [s for s in after if not good(s)]
    if bad_after:
        m.time_to_impact_s = round(bad_after[0].t - fault_start, 3)
    signals = sorted((t, what) for t, what in detections if t >= fault_start)
    if signals:
        m.time_to_detect_s = round(signals[0][0] - fault_start, 3)
        m.detected_by = signals[0][1]
    elif m.time_to_impact_s is not None:
        m.time_to_detect_s, m.detected_by = m.time_to_impact_s, "prober (first request outside the SLO)"

    end = samples[-1].t
    n_buckets = max(1, math.ceil((end - fault_start) / bucket_s))
    buckets: list[list[Sample]] = [[] for _ in range(n_buckets)]
    for s in after:
        buckets[min(n_buckets - 1, int((s.t - fault_start) / bucket_s))].append(s)
    within = [bool(b) and sum(1 for s in b if good(s)) / len(b) >= slo_ratio for b in buckets]
    last_bad = max((i for i, ok in enumerate(within) if not ok), default=None)
    if last_bad is None:
        m.rto_seconds, m.recovered, m.recovery_t = 0.0, True, fault_start
    elif last_bad < n_buckets - 1:
        m.recovery_t = fault_start + (last_bad + 1) * bucket_s
        m.rto_seconds, m.recovered = round(m.recovery_t - fault_start, 3), True
    until = m.recovery_t if m.recovered and m.recovery_t is not None else end + bucket_s
    failed = [s for s in after if not s.ok and s.t < until]
    if failed:
        m.error_burst_requests = len(failed)
        m.first_failure_t, m.last_failure_t = failed[0].t, failed[-1].t
        m.error_burst_seconds = round(failed[-1].t - failed[0].t, 3)
    return m
