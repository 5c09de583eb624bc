"""The run's timeline and the part of it a scoped threshold is judged on (``during:`` / ``after:``).

Usage::

    tl = timeline_of(data)                  # stage spans (offsets from the run's start) and that start (epoch s)
    span = tl.span(threshold.window)        # (start_s, end_s | None), or a reason it has none
    part = window_data(data, tl, 30, 60)    # a RunData of exactly the intervals inside [30 s, 60 s)

The run's start (offset 0) is the schedule's own start: for an open model the ``arrivals
start`` event (the schedule start every worker shares, later than the first interval when the
run had a lead or ``--start-at``), else ``run.json`` ``start_at``, else the first snapshot
interval's start (a closed model's shape starts with Locust's test, as the snapshots do).

An interval belongs to a window when its midpoint lies inside ``[start, end)``: snapshot
intervals are aligned to wall-clock multiples, so a stage boundary that falls inside an
interval gives that interval to the side holding most of it, and every interval is in at
most one of two adjacent windows. The window's figures are the merged histograms and
counters of exactly those intervals; its rps divides by their span (first start to last end).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from peakload.core import ConfigError, load_profile
from peakload.core.profile import StageSpan
from peakload.core.records import PROFILE_COPY, Interval
from peakload.core.thresholds import Window
from reports.results import RunData

__all__ = ["Timeline", "timeline_of", "window_data", "inside", "ARRIVALS_START"]

ARRIVALS_START = "arrivals start"  # the event scenarios/arrivals.py writes at the schedule's start


@dataclass(frozen=True)
class Timeline:
    """Stage spans from the run's profile copy and the epoch second offset 0 stands for."""

    t0: float | None  # None: no interval recorded
    basis: str  # how t0 was found
    stages: tuple[StageSpan, ...] = ()
    profile_read: bool = False  # the folder's profile copy was read (stage names are known)

    def stage(self, name: str) -> StageSpan | None:
        hits = [s for s in self.stages if s.name == name]
        return hits[0] if len(hits) == 1 else None

    def span(self, window: Window) -> tuple[float, float | None] | str:
        """``(start, end)`` offsets of a window (end None: to the run's end), or why it has none."""
        if window.stage is None:
            assert window.start is not None
            return (window.start, window.end if window.kind == "during" else None)
        st = self.stage(window.stage)
        if st is None:
            if not self.profile_read:
                return f"stage {window.stage!r} unknown: the results folder has no readable {PROFILE_COPY}"
            known = ", ".join(s.name for s in self.stages if s.name) or "none"
            return f"stage {window.stage!r} is not one stage of this run's profile (known stages: {known})"
        return (st.start, st.end) if window.kind == "during" else (st.end, None)


def _schedule_start(data: RunData) -> tuple[float | None, str]:
    starts = []
    for ev in data.events:
        if ev.get("kind") == "arrivals" and ev.get("name") == ARRIVALS_START:
            try:
                starts.append(float(ev["t"]))
            except (KeyError, TypeError, ValueError):
                continue
    if starts:
        return min(starts), "the arrivals start event"
    if data.meta.start_at is not None:
        return float(data.meta.start_at), "run.json start_at"
    if data.intervals:
        return data.intervals[0].t_start, "the first interval's start"
    return None, "no interval"


def _stages_of(path: Path) -> tuple[tuple[StageSpan, ...], bool]:
    copy = path / PROFILE_COPY
    if not copy.is_file():
        return (), False
    try:
        return tuple(load_profile(copy).stage_spans()), True
    except (ConfigError, OSError):
        return (), False  # load_results already listed the copy as a problem


def timeline_of(data: RunData) -> Timeline:
    """The run's timeline: its profile copy's stages and the run's start (see the module docstring)."""
    t0, basis = _schedule_start(data)
    stages, read = _stages_of(data.path)
    return Timeline(t0=t0, basis=basis, stages=stages, profile_read=read)


def inside(iv: Interval, t0: float, start: float, end: float | None) -> bool:
    """The interval's midpoint lies in ``[start, end)`` seconds from ``t0`` (end None: open)."""
    mid = (iv.t_start + iv.t_end) / 2 - t0
    return mid >= start and (end is None or mid < end)


def window_data(data: RunData, t0: float, start: float, end: float | None) -> RunData:
    """A RunData of the intervals inside the window (merged exactly as the whole run's), with the run's metadata."""
    part = RunData.from_intervals([iv for iv in data.intervals if inside(iv, t0, start, end)], path=data.path)
    part.meta = data.meta
    part.header = data.header
    part.server_header = data.server_header  # the target's own figures of the same window, by the same midpoint rule
    part.server = [r for r in data.server if _mid_inside(r["t_start"], r["t_end"], t0, start, end)]
    return part


def _mid_inside(t_start: float, t_end: float, t0: float, start: float, end: float | None) -> bool:
    mid = (t_start + t_end) / 2 - t0
    return mid >= start and (end is None or mid < end)
