"""`peakload capacity`: step the arrival rate up until the shop breaks — how much headroom is there for the sale?

The profile's ``capacity`` section gives the steps: ``start_rate × factor**k``
journeys/s for ``step`` seconds each, at most ``max_steps``. One open-model
run drives them (the profile's ``arrivals`` journey, path and pool settings;
a shopper visit by default); after every step the step's own snapshot lines
are judged against the latency and error-ratio thresholds of the run (SLO spec
+ profile, intended-start latency) and, with ``stop_on_drop``, against dropped
arrivals. The first failing step is the *knee*: the run stops there, and the
result names the highest sustainable rate (the step before) and the first
failing threshold. Steps are written to ``events.jsonl`` (chart markers and the
events table of report.html), to ``capacity.json`` and to a ``capacity``
section of summary.json.

Usage::

    result = capacity(CapacityOptions(profile_path=Path("profiles/capacity.yaml")))
    print(result.section["highest_sustainable_rate"])
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from peakload.app.runner import RunOptions, run, thresholds_for
from peakload.core import (
    LATENCY_METRICS,
    ConfigError,
    Profile,
    Threshold,
    UsageError,
    format_value,
    load_profile,
)
from peakload.core.inputs import read_yaml, write_atomic
from peakload.core.records import EVENTS, read_json_lines
from reports.attribution import Attribution, attribute, window_figures
from reports.build import Report, write_reports
from reports.gate import evaluate
from reports.results import Interval, RunData, load_results
from reports.windows import window_data

__all__ = ["CapacityOptions", "CapacityResult", "StepResult", "StepJudge", "capacity", "capacity_profile", "schedule_start"]

SNAPSHOT_INTERVAL_S = 1.0  # steps are whole seconds, so step windows hold whole snapshot lines
_STEP_METRICS = {"error_ratio", "dropped_ratio"}  # besides latency: what one step can be judged on


@dataclass
class CapacityOptions:
    profile_path: Path
    target: str | None = None
    allow_targets: list[str] = field(default_factory=list)
    results_root: Path = Path("results")
    seed: int | None = None
    workers: int = 0
    metrics_port: int = 0
    quiet: bool = False
    locustfile: Path | None = None  # the user's own Locust code (--locustfile)


@dataclass
class StepResult:
    step: int  # 1-based
    rate: float
    start: float
    end: float
    requests: int = 0
    failures: int = 0
    scheduled: int = 0
    dropped: int = 0
    p95_ms: float | None = None
    p99_ms: float | None = None
    failing: list[str] = field(default_factory=list)  # threshold ids / "dropped arrivals", first is the first to fail
    messages: list[str] = field(default_factory=list)
    complete: bool = True

    @property
    def passed(self) -> bool:
        return not self.failing

    def to_dict(self) -> dict[str, Any]:
        secs = self.end - self.start
        return {
            "step": self.step,
            "rate": round(self.rate, 3),
            "start": round(self.start, 3),
            "seconds": round(secs, 3),
            "requests": self.requests,
            "rps": round(self.requests / secs, 2) if secs > 0 else 0.0,
            "failures": self.failures,
            "scheduled": self.scheduled,
            "dropped": self.dropped,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "passed": self.passed,
            "complete": self.complete,
            "failing": self.failing,
            "messages": self.messages,
        }


def capacity_profile(profile: Profile, data: dict[str, Any]) -> dict[str, Any]:
    """The YAML data of the stepped open-model profile that one capacity run executes."""
    cap = profile.capacity
    if cap is None:
        raise UsageError(f"--profile: {profile.source}: no capacity section (start_rate, factor, step, max_steps)")
    if abs(cap.step - round(cap.step)) > 1e-9:
        raise ConfigError(f"{profile.source}: capacity.step: expected whole seconds (e.g. 5s), got {cap.step:g}s")
    base = profile.arrivals
    if base is not None and base.journey == "replay" and cap.journey is None:
        raise UsageError(
            f"--profile: {profile.source}: arrivals.journey is replay, whose schedule is the log; capacity steps rates: "
            "set capacity.journey (shopper or single_request)"
        )
    out = {k: v for k, v in data.items() if k not in ("shape", "arrivals")}
    out["name"] = f"{profile.name}-capacity"
    arrivals: dict[str, Any] = {
        "kind": "constant",
        "stages": [{"name": f"step {k + 1}", "duration": f"{cap.step:g}s", "rate": round(r, 6)} for k, r in enumerate(cap.rates())],
        "journey": cap.journey or (base.journey if base else "shopper"),
    }
    if base is not None:
        arrivals["path"] = base.path
        arrivals["max_pool"] = base.max_pool
        if base.expected_journey is not None:
            arrivals["expected_journey"] = base.expected_journey
        if base.pool is not None:
            arrivals["pool"] = base.pool
    out["arrivals"] = arrivals
    slo = profile.slo_path()
    out["slo"] = None if slo is None else str(slo.resolve())  # the derived profile lives elsewhere
    own = profile.locustfile_path()
    if own is not None:  # the derived profile lives elsewhere: its locustfile path must not be relative
        out["locustfile"] = (
            {**data["locustfile"], "path": str(own.resolve())} if isinstance(data["locustfile"], dict) else str(own.resolve())
        )
    return out


def schedule_start(run_dir: Path) -> float | None:
    """When the arrival schedule started (the ``arrivals start`` event), or None before it did."""
    for ev in read_json_lines(run_dir / EVENTS, []):
        t = ev.get("t")
        if ev.get("kind") == "arrivals" and ev.get("name") == "arrivals start" and isinstance(t, (int, float)):
            return float(t)
    return None


def _step_thresholds(thresholds: list[Threshold]) -> list[Threshold]:
    return [t for t in thresholds if t.scope != "business" and (LATENCY_METRICS.match(t.metric) or t.metric in _STEP_METRICS)]


class StepJudge:
    """Judges each step from its own snapshot lines; the live callback for :func:`peakload.app.runner.run`."""

    def __init__(self, *, rates: list[float], step: float, thresholds: list[Threshold], stop_on_drop: bool) -> None:
        self.rates = rates
        self.step = step
        self.thresholds = _step_thresholds(thresholds)
        self.stop_on_drop = stop_on_drop
        self.t0: float | None = None
        self.intervals: list[Interval] = []
        self.steps: list[StepResult] = []
        self.cpu_warning = False

    def __call__(self, interval: Interval, run_dir: Path) -> str | None:
        if self.t0 is None:
            self.t0 = schedule_start(run_dir)
        self.intervals.append(interval)
        self.cpu_warning = self.cpu_warning or interval.cpu_warning
        if self.t0 is None:
            return None
        while len(self.steps) < len(self.rates):
            k = len(self.steps)
            end = self.t0 + (k + 1) * self.step
            if interval.t_start + interval.seconds / 2 < end:
                return None  # step k is still running
            result = self.judge(k)
            self.steps.append(result)
            if self.cpu_warning:
                return (
                    f"capacity: the load generator was CPU-overloaded by step {k + 1} ({result.rate:g}/s); its figures are not the shop's"
                )
            if not result.passed:
                return f"capacity knee at step {k + 1} ({result.rate:g} journeys/s): {result.messages[0]}"
        return None

    def judge(self, k: int, *, complete: bool = True) -> StepResult:
        """Judge step ``k`` (0-based) from the intervals whose midpoint falls in its window."""
        assert self.t0 is not None
        start, end = self.t0 + k * self.step, self.t0 + (k + 1) * self.step
        mine = [iv for iv in self.intervals if start <= iv.t_start + iv.seconds / 2 < end]
        data = RunData.from_intervals(mine)
        res = StepResult(step=k + 1, rate=self.rates[k], start=start, end=end, complete=complete)
        allreq = data.all_requests()
        res.requests, res.failures = allreq.count, allreq.failures
        res.scheduled, res.dropped = data.arrivals.get("scheduled", 0), data.arrivals.get("dropped", 0)
        pct = allreq.percentiles([95, 99]) if allreq.count else {95: None, 99: None}
        res.p95_ms = None if pct[95] is None else round(pct[95] * 1000, 3)
        res.p99_ms = None if pct[99] is None else round(pct[99] * 1000, 3)
        for r in evaluate(self.thresholds, data):
            if r.passed is False and r.observed is not None:
                res.failing.append(r.threshold.id)
                res.messages.append(f"{r.threshold.id}: observed {format_value(r.threshold.metric, r.observed)}")
        if self.stop_on_drop and res.dropped:  # after the thresholds: the SLO that broke is the headline
            res.failing.append("dropped arrivals")
            res.messages.append(f"{res.dropped} of {res.scheduled} arrivals dropped (no free user in the pool)")
        return res


@dataclass
class CapacityResult:
    report: Report
    section: dict[str, Any]
    exit_code: int


def knee_attribution(saved: RunData, judge: StepJudge, step_s: float) -> Attribution | None:
    """At the knee (or the step the generator gave out at): which side saturated, the knee step against the first."""
    knee = next((s for s in judge.steps if not s.passed), None)
    if judge.t0 is None or (knee is None and not judge.cpu_warning) or not judge.steps:
        return None
    k = (knee.step if knee is not None else judge.steps[-1].step) - 1
    high = window_figures(window_data(saved, judge.t0, k * step_s, (k + 1) * step_s))
    if high is None:
        return None
    low = window_figures(window_data(saved, judge.t0, 0.0, step_s)) if k > 0 else None
    return attribute(low, high)


def _section(judge: StepJudge, profile: Profile, latency_basis: str, why: Attribution | None = None) -> tuple[dict[str, Any], int]:
    cap = profile.capacity
    assert cap is not None
    steps = judge.steps
    knee = next((s for s in steps if not s.passed), None)
    passed_before = [s for s in steps if s.passed and s.complete and (knee is None or s.step < knee.step)]
    highest = passed_before[-1].rate if passed_before else None
    if judge.cpu_warning:
        verdict, code = "invalid: the load generator was CPU-overloaded; add workers (--workers) or lower the rates", 3
    elif not steps:
        verdict, code = "invalid: no step completed (no measurements)", 3
    elif knee is None:
        verdict, code = f"no knee up to {steps[-1].rate:g} journeys/s: every step held", 0
    elif highest is None:
        verdict, code = f"the first step ({knee.rate:g}/s) already fails: {knee.messages[0]}", 1
    else:
        verdict, code = f"knee at {knee.rate:g} journeys/s; highest sustainable rate {highest:g} journeys/s", 0
    if why is not None and knee is not None and code != 3:
        verdict = verdict.replace(f"knee at {knee.rate:g} journeys/s", f"knee at {knee.rate:g} journeys/s: {why.text}", 1)
        if highest is None:
            verdict += f" ({why.text})"
    return {
        "start_rate": cap.start_rate,
        "factor": cap.factor,
        "step_s": cap.step,
        "max_steps": cap.max_steps,
        "stop_on_drop": cap.stop_on_drop,
        "latency_basis": latency_basis,
        "highest_sustainable_rate": highest,
        "knee_rate": knee.rate if knee else None,
        "knee_step": knee.step if knee else None,
        "first_failing_threshold": knee.failing[0] if knee else None,
        "knee_reason": knee.messages[0] if knee else None,
        "verdict": verdict,
        "exit_code": code,
        "steps": [s.to_dict() for s in steps],
        "attribution": why.to_json() if why is not None else None,
    }, code


def _annotate(run_dir: Path, judge: StepJudge) -> None:
    """One events.jsonl line per step: the markers on the report's charts and rows of its events table."""
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as fh:
        for s in judge.steps:
            word = "ok" if s.passed else "KNEE"
            p95 = "n/a" if s.p95_ms is None else f"{s.p95_ms:.0f} ms"
            detail = f"{word}: {s.requests} requests, p95 {p95}, {s.dropped} dropped" + ("" if s.passed else f"; {s.messages[0]}")
            fh.write(
                json.dumps({"t": round(s.start, 3), "kind": "capacity", "name": f"step {s.step}: {s.rate:g}/s {word}", "detail": detail})
                + "\n"
            )


def capacity(opts: CapacityOptions) -> CapacityResult:
    """Run the capacity steps and write the results folder (with its capacity section)."""
    profile = load_profile(opts.profile_path)
    data = read_yaml(opts.profile_path, what="profile")  # already validated: the raw mapping the derived profile starts from
    derived = capacity_profile(profile, data)
    cap = profile.capacity
    assert cap is not None
    with tempfile.TemporaryDirectory(prefix="peakload-capacity-") as tmp:
        path = Path(tmp) / f"{derived['name']}.yaml"
        path.write_text("# generated by peakload capacity from " + str(opts.profile_path) + "\n" + yaml.safe_dump(derived, sort_keys=False))
        stepped = load_profile(path)  # validate before anything runs
        thresholds, _ = thresholds_for(stepped)
        judge = StepJudge(rates=cap.rates(), step=cap.step, thresholds=thresholds, stop_on_drop=cap.stop_on_drop)
        report = run(
            RunOptions(
                profile_path=path,
                target=opts.target,
                allow_targets=opts.allow_targets,
                results_root=opts.results_root,
                seed=opts.seed,
                workers=opts.workers,
                metrics_port=opts.metrics_port,
                snapshot_interval=SNAPSHOT_INTERVAL_S,
                quiet=opts.quiet,
                on_interval=judge,
                locustfile=opts.locustfile,
            )
        )
    run_dir = report.data.path
    # Judge again from the saved lines: the last step (no later line arrived live) and a reproducible table.
    saved = load_results(run_dir)
    final = StepJudge(rates=cap.rates(), step=cap.step, thresholds=thresholds, stop_on_drop=cap.stop_on_drop)
    final.t0 = schedule_start(run_dir)
    final.intervals = saved.intervals
    final.cpu_warning = saved.cpu_warning
    if final.t0 is not None:
        last_end = max((iv.t_end for iv in saved.intervals), default=final.t0)
        for k in range(len(cap.rates())):
            end = final.t0 + (k + 1) * cap.step
            complete = last_end >= end - 1e-6
            if final.t0 + k * cap.step >= last_end:
                break
            res = final.judge(k, complete=complete)
            final.steps.append(res)
            if not res.passed or not complete:
                break
    _annotate(run_dir, final)
    report = write_reports(run_dir, thresholds, tolerances=stepped.compare)
    section, code = _section(final, profile, report.summary.latency_basis, knee_attribution(saved, final, cap.step))
    write_atomic(run_dir / "capacity.json", json.dumps(section, indent=2) + "\n")
    # Rebuild with capacity.json present: summary.json and report.html carry the capacity section
    # (and so does any later `peakload report` on this folder).
    report = write_reports(run_dir, thresholds, tolerances=stepped.compare)
    return CapacityResult(report=report, section=section, exit_code=code)
