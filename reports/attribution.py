"""Which side saturated: the load generator, the target, or neither — and the evidence, from client, server and generator figures.

Usage::

    low, high = window_figures(part_low), window_figures(part_high)   # two parts of a run (RunData)
    a = attribute(low, high)        # Attribution(side="target", evidence=["POST /api/orders p95 x4.1", ...])
    a.text                          # "target saturated — POST /api/orders p95 ×4.1, completed rps flat (..), db pool 100 %"

``high`` is the part under the most load (a capacity run's knee step, a run's
peak), ``low`` a part under less (the first step, the run's lighter intervals);
without ``low`` only the absolute signals count. The rules, in order:

- **generator** when its own figures say its numbers are not the shop's:
  Locust's CPU warning; scheduler lateness p99 beyond max(5 ms, 5 % of the
  client p95); arrivals dropped while the shop sat idle (its CPU under half a
  core and its DB pool under half used, where the shop gives them).
- **target** on any of: a server resource at its limit (DB pool utilisation
  ≥ 95 %, the shop's CPU ≥ 0.9 cores), a server 5xx ratio ≥ 5 %, latency rising
  with offered load (a request name's p95 ×2 or more from ``low`` to ``high``,
  with ≥ 20 samples on each side), completed rps flat (×1.1 or less) while the
  offered load rose ×1.3 or more.
- **neither** otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from reports.results import RunData

__all__ = ["WindowFigures", "Attribution", "window_figures", "attribute", "run_attribution", "SIDES"]

SIDES = ("generator", "target", "neither")
POOL_LIMIT = 0.95
CPU_LIMIT_CORES = 0.9
ERROR_LIMIT = 0.05
LATENCY_RISE = 2.0
MIN_SAMPLES = 20
FLAT = 1.1
OFFERED_RISE = 1.3
LATENESS_RATIO, LATENESS_FLOOR_S = 0.05, 0.005
IDLE_CPU_CORES, IDLE_POOL = 0.5, 0.5


@dataclass(frozen=True)
class WindowFigures:
    seconds: float
    offered: float | None  # scheduled arrivals per second (open model), else the peak user count
    completed_rps: float
    p95_s: float | None
    p95_by_name: dict[str, tuple[float, int]]  # name → (p95 s, samples)
    scheduled: int
    dropped: int
    cpu_warning: bool
    lateness_p99_s: float | None
    server: dict[str, float | None]  # each server figure's worst (largest) value in the window


@dataclass(frozen=True)
class Attribution:
    side: Literal["generator", "target", "neither"]
    evidence: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        head = {"generator": "load generator saturated", "target": "target saturated", "neither": "no side saturated"}[self.side]
        return head + (" — " + ", ".join(self.evidence) if self.evidence else "")

    def to_json(self) -> dict[str, Any]:
        return {"side": self.side, "evidence": list(self.evidence), "text": self.text}


def _lateness_p99(data: RunData) -> float | None:
    from reports.generator import lag_histograms

    hist = lag_histograms(data).get("scheduler_lateness")
    if hist is None or not hist.get_total_count():
        return None
    return hist.get_value_at_percentile(99) / 1e6


def window_figures(data: RunData) -> WindowFigures | None:
    """The figures of one part of a run (None when it holds no interval)."""
    if not data.intervals:
        return None
    seconds = max(sum(iv.seconds for iv in data.intervals), 1e-9)
    allreq = data.all_requests()
    p95 = allreq.percentiles([95])[95] if allreq.count else None
    by_name = {}
    for key, row in data.totals.items():
        if row.count:
            v = row.percentiles([95])[95]
            if v is not None:
                by_name[key] = (v, row.count)
    scheduled, dropped = data.arrivals.get("scheduled", 0), data.arrivals.get("dropped", 0)
    offered = scheduled / seconds if scheduled else (max((iv.users for iv in data.intervals), default=0) or None)
    server: dict[str, float | None] = {}
    for row in data.server:
        for name, value in row["figures"].items():
            if value is not None:
                prev = server.get(name)
                server[name] = value if prev is None else max(prev, value)
            else:
                server.setdefault(name, None)
    return WindowFigures(
        seconds=seconds,
        offered=float(offered) if offered else None,
        completed_rps=allreq.count / seconds,
        p95_s=p95,
        p95_by_name=by_name,
        scheduled=scheduled,
        dropped=dropped,
        cpu_warning=any(iv.cpu_warning for iv in data.intervals),
        lateness_p99_s=_lateness_p99(data),
        server=server,
    )


def _pct(v: float) -> str:
    return f"{v * 100:.0f} %"


def attribute(low: WindowFigures | None, high: WindowFigures) -> Attribution:
    """Name the side that saturated under ``high`` (compared with ``low`` where given), with the evidence."""
    srv = high.server
    cpu, pool = srv.get("cpu"), srv.get("db_pool_utilisation")
    gen: list[str] = []
    if high.cpu_warning:
        gen.append("load generator CPU above 90 % (Locust's warning)")
    if high.lateness_p99_s is not None:
        bar = max(LATENESS_FLOOR_S, LATENESS_RATIO * (high.p95_s or 0.0))
        if high.lateness_p99_s > bar:
            gen.append(f"scheduler lateness p99 {high.lateness_p99_s * 1000:.0f} ms (beyond {bar * 1000:.0f} ms)")
    idle_known = cpu is not None or pool is not None
    idle = (cpu is None or cpu < IDLE_CPU_CORES) and (pool is None or pool < IDLE_POOL)
    if high.dropped and idle_known and idle:
        shop = ", ".join(
            x for x in (f"shop CPU {cpu:.2f} cores" if cpu is not None else "", f"db pool {_pct(pool)}" if pool is not None else "") if x
        )
        gen.append(f"{high.dropped} of {high.scheduled} arrivals dropped while the shop was idle ({shop})")
    if gen:
        return Attribution("generator", gen)

    tgt: list[str] = []
    if low is not None:
        rises = []
        for key, (p95_hi, n_hi) in high.p95_by_name.items():
            lo = low.p95_by_name.get(key)
            if lo is None or n_hi < MIN_SAMPLES or lo[1] < MIN_SAMPLES or lo[0] <= 0:
                continue
            ratio = p95_hi / lo[0]
            if ratio >= LATENCY_RISE:
                rises.append((ratio, key))
        if rises:
            ratio, key = max(rises)
            more = f" (and {len(rises) - 1} more)" if len(rises) > 1 else ""
            tgt.append(f"{key} p95 ×{ratio:.1f}{more}")
        if low.offered and high.offered and low.completed_rps > 0:
            offered_x = high.offered / low.offered
            done_x = high.completed_rps / low.completed_rps
            if offered_x >= OFFERED_RISE and done_x <= FLAT:
                tgt.append(
                    f"completed rps flat ({low.completed_rps:.1f} → {high.completed_rps:.1f}/s while the offered load rose ×{offered_x:.1f})"
                )
    if pool is not None and pool >= POOL_LIMIT:
        tgt.append(f"db pool {_pct(pool)}")
    if cpu is not None and cpu >= CPU_LIMIT_CORES:
        tgt.append(f"shop CPU {cpu:.2f} cores")
    errors = srv.get("server_error_ratio")
    if errors is not None and errors >= ERROR_LIMIT:
        tgt.append(f"server 5xx ratio {_pct(errors)}")
    if tgt:
        return Attribution("target", tgt)
    return Attribution("neither", [])


def _offered(iv: Any, open_model: bool) -> float:
    return float(iv.target_rate or 0) if open_model else float(iv.users or 0)


def _part(data: RunData, intervals: list[Any]) -> RunData:
    part = RunData.from_intervals(intervals, path=data.path)
    part.meta, part.header, part.server_header = data.meta, data.header, data.server_header
    spans = [(iv.t_start, iv.t_end) for iv in intervals]
    part.server = [r for r in data.server if any(a <= (r["t_start"] + r["t_end"]) / 2 < b for a, b in spans)]
    return part


def run_attribution(data: RunData) -> Attribution | None:
    """A whole run: its most loaded intervals (offered load ≥ 90 % of the peak: arrivals/s, else users) against its
    lightest (≤ 50 % of the peak, where the run has any); None when no interval was recorded."""
    ivs = [iv for iv in data.intervals if iv.seconds > 0.2]
    if not ivs:
        return None
    open_model = any(iv.target_rate for iv in ivs)  # arrivals/s offered; a closed model offers users
    peak = max(_offered(iv, open_model) for iv in ivs)
    if peak <= 0:
        return None
    high = window_figures(_part(data, [iv for iv in ivs if _offered(iv, open_model) >= 0.9 * peak]))
    if high is None:
        return None
    light = [iv for iv in ivs if 0 < _offered(iv, open_model) <= 0.5 * peak]
    low = window_figures(_part(data, light)) if light else None
    return attribute(low, high)
