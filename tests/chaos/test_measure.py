"""Recovery figures from probe samples (pure computation over recorded samples)."""

from __future__ import annotations

from chaos.canary import Ack, compute_rpo
from chaos.measure import measure
from chaos.prober import Sample


def _timeline(bad_from: float, bad_to: float, *, slow: bool = False, end: float = 10.0, rate: float = 20.0) -> list[Sample]:
    out = []
    for i in range(int(end * rate)):
        t = 1000.0 + i / rate
        rel = t - 1000.0
        if bad_from <= rel < bad_to:
            out.append(Sample(t, "/p", 200, 0.9, True) if slow else Sample(t, "/p", 503, 0.01, False, "HTTP 503"))
        else:
            out.append(Sample(t, "/p", 200, 0.02, True))
    return out


def test_error_burst_and_rto_after_a_two_second_outage() -> None:
    m = measure(_timeline(3.0, 5.0), fault_start=1002.5, detections=[(1003.4, "haproxy r1 UP->DOWN")])
    assert m.time_to_impact_s == 0.5
    assert m.time_to_detect_s == 0.9 and m.detected_by == "haproxy r1 UP->DOWN"
    assert m.error_burst_requests == 40  # 2 s at 20 req/s
    assert m.error_burst_seconds == 1.95
    assert m.recovered and m.rto_seconds == 3.0  # first fully good 1 s bucket starts 3 s after the fault


def test_slow_answers_break_the_slo_without_errors() -> None:
    m = measure(_timeline(2.0, 4.0, slow=True), fault_start=1002.0, latency_threshold_s=0.3)
    assert m.error_burst_requests == 0 and m.slow_requests == 40
    assert m.recovered and m.rto_seconds == 2.0


def test_no_impact_means_rto_zero_and_no_detection() -> None:
    m = measure(_timeline(0, 0), fault_start=1002.0)
    assert m.rto_seconds == 0.0 and m.recovered and m.time_to_detect_s is None


def test_still_broken_at_the_end_is_not_recovered() -> None:
    m = measure(_timeline(6.0, 99.0), fault_start=1005.0)
    assert not m.recovered and m.rto_seconds is None
    assert "NOT back to SLO" in m.summary()


def test_rpo_counts_acknowledged_commits_missing_after_recovery() -> None:
    acks = [Ack(i, f"o{i}", 100.0 + i * 0.2) for i in range(1, 11)]
    r = compute_rpo(acks, present={f"o{i}" for i in range(1, 8)})
    assert (r.acked, r.lost, r.lost_ids) == (10, 3, ["o8", "o9", "o10"])
    assert r.rpo_seconds == 0.6  # o10 acked 0.6 s after o7, the last one that survived
    assert compute_rpo(acks, present={a.id for a in acks}).rpo_seconds == 0.0
