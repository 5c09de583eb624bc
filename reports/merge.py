"""Merge shard results folders (one Locust master each, parts of one global schedule) into one results folder.

Usage::

    result = merge_results([Path("results/s1/RUN-a"), Path("results/s2/RUN-b")], out=Path("results/fleet"))
    result.problems      # one line per problem, each naming its shard; empty = a complete merge
    write_reports(result.out, thresholds)   # then gate and report it like any run

What is merged, and how (docs/merging-shards.md):

- intervals by wall-clock slot: a snapshot interval lies inside ``[(k-1)·I, k·I]`` (the writers cut
  lines on wall-clock multiples of the interval ``I``); intervals of every shard in slot ``k`` become
  one line. Request rows are added through :meth:`exporters.stats.StatsStore.merge_delta` — counts,
  buckets and HdrHistograms added exactly, never averaged — then drained into the one snapshot writer.
- business counters and arrivals (scheduled, dropped) summed; users, workers and target rates summed
  over the shards in the slot.
- events interleaved by time, each with the ``shard`` it came from.
- reconciliation: the shop's books are one. When every shard ran under one run id against one shop,
  the reconciliation of the shard that ended last is the fleet's; otherwise it is n/a (an ``error``).

Problems (a missing or unreadable folder, a truncated or missing snapshot stream, a run that did not
end, a shard whose intervals are not aligned, a shard index missing from the set) are listed per shard;
the merged folder is still written, with ``outcome.json`` ``invalid`` naming the first one, so the
verdict is ``run-invalid`` (exit 3), never a partial pass.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exporters.stats import DELTA_VERSION, MAX_REASONS, StatsStore
from peakload.core import UsageError
from peakload.core.inputs import make_dirs, write_atomic
from peakload.core.records import (
    EVENTS,
    OUTCOME_JSON,
    PROFILE_COPY,
    RECONCILIATION_JSON,
    RUN_JSON,
    SLO_COPY,
    SNAPSHOTS,
    Outcome,
    RunMeta,
    add_reason,
)
from peakload.core.snapshots import SnapshotWriter
from reports.shards import Shard, check_merge_inputs, check_profiles, read_shard, reconciliation_of, set_problems, shard_of

__all__ = ["MergeResult", "Shard", "check_merge_inputs", "merge_results", "shard_of"]

_EPS = 1e-6  # seconds: wall-clock boundaries are k·I computed in floating point


@dataclass(frozen=True)
class MergeResult:
    out: Path
    shards: tuple[Shard, ...]
    problems: tuple[str, ...]  # "shard 2/3 (path): what is wrong", every shard's, then the set's
    intervals: int

    @property
    def complete(self) -> bool:
        return not self.problems


def _common(values: list[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return vals[0] if vals and all(v == vals[0] for v in vals) else None


# ---------------------------------------------------------------- merging the intervals


def _slot(obj: dict[str, Any], interval: float) -> int:
    return math.ceil((float(obj["t_end"]) - _EPS) / interval)


def _slots(shards: list[Shard], interval: float) -> dict[int, list[tuple[Shard, dict[str, Any]]]]:
    slots: dict[int, list[tuple[Shard, dict[str, Any]]]] = {}
    for sh in shards:
        if sh.interval_s is None:
            continue
        if abs(sh.interval_s - interval) > _EPS:
            sh.problems.append(f"snapshot interval {sh.interval_s:g} s, the others' {interval:g} s: its intervals are not aligned")
            continue
        # The lines after the shard's last one cut on a boundary are its tail, written as Locust stopped
        # (test_stop, the workers' last reports, quitting): they may cross a boundary and go to the slot they end in.
        on_boundary = [i for i, o in enumerate(sh.intervals) if abs(float(o["t_end"]) - _slot(o, interval) * interval) <= _EPS]
        tail_from = on_boundary[-1] + 1 if on_boundary else len(sh.intervals)
        for i, obj in enumerate(sh.intervals):
            k = _slot(obj, interval)
            if i < tail_from and float(obj["t_start"]) < (k - 1) * interval - _EPS:
                sh.problems.append(
                    f"{SNAPSHOTS}: interval {obj.get('seq')} [{obj['t_start']:.3f}, {obj['t_end']:.3f}] crosses the wall-clock "
                    f"boundary {(k - 1) * interval:.3f} (multiples of {interval:g} s): its intervals are not aligned; not merged"
                )
                continue
            slots.setdefault(k, []).append((sh, obj))
    return slots


def _merge_slot(members: list[tuple[Shard, dict[str, Any]]], edges: list[float], store: StatsStore) -> dict[str, Any] | None:
    """The slot's merged line fields; None when no member could be merged (each failure is its shard's problem)."""
    merged: list[dict[str, Any]] = []
    last_of: dict[int, dict[str, Any]] = {}  # per shard: its last interval in the slot holds its gauges
    for sh, obj in members:
        delta = {
            "v": DELTA_VERSION,
            "edges": edges,
            "requests": obj.get("requests") or [],
            "business": obj.get("business") or {},
            "arrivals": obj.get("arrivals") or {},
            "generator": obj.get("generator") or {},  # the generator's own lag: merged exactly as the request rows
        }
        try:
            store.merge_delta(delta)
        except (ValueError, KeyError, TypeError) as exc:
            sh.problems.append(f"{SNAPSHOTS}: interval {obj.get('seq')}: cannot be merged ({exc}); not merged")
            continue
        merged.append(obj)
        last_of[sh.position] = obj
    if not merged:
        return None
    rates = [o["target_rate"] for o in last_of.values() if isinstance(o.get("target_rate"), (int, float))]
    return {
        "t_start": min(float(o["t_start"]) for o in merged),
        "t_end": max(float(o["t_end"]) for o in merged),
        "users": sum(int(o.get("users") or 0) for o in last_of.values()),
        "workers": sum(int(o.get("workers") or 0) for o in last_of.values()),
        "target_rate": float(sum(rates)) if rates else None,
        "cpu_warning": any(o.get("cpu_warning") is True for o in merged),
    }


def _end_extra(shards: list[Shard]) -> dict[str, Any]:
    errors: dict[str, int] = {}
    for sh in shards:
        for row in (sh.end or {}).get("user_errors") or []:
            if isinstance(row, dict) and isinstance(row.get("message"), str) and type(row.get("count")) is int:
                add_reason(errors, row["message"], row["count"], limit=MAX_REASONS)
    top = sorted(errors.items(), key=lambda mc: (-mc[1], mc[0]))[:10]
    return {
        "merge_errors": sum(int((sh.end or {}).get("merge_errors") or 0) for sh in shards),
        "cpu_warning": any((sh.end or {}).get("cpu_warning") is True for sh in shards),
        "user_errors": [{"message": m, "count": c} for m, c in top],
        "shards": len(shards),
    }


# ---------------------------------------------------------------- the whole merge


def merge_results(folders: list[Path], *, out: Path, run_id: str | None = None) -> MergeResult:
    """Read every shard folder, merge them into ``out`` (created), and say what is wrong with which shard.

    Raises UsageError (exit 2) for bad input: no folder, a folder given twice, an ``--out`` that is a
    file or not empty, shards that ran different profiles. Everything else is a problem of a shard.
    """
    check_merge_inputs(folders, out)
    shards = [read_shard(f, i) for i, f in enumerate(folders, 1)]
    keep = check_profiles(shards)
    of_the_set = set_problems(shards)
    usable = [s for s in shards if s.header is not None and s.interval_s is not None]
    interval = usable[0].interval_s if usable else None
    header0 = usable[0].header if usable else {}
    edges = list((header0 or {}).get("bucket_edges") or [])
    for sh in usable[1:]:
        if (sh.header or {}).get("latency_basis", "response") != (header0 or {}).get("latency_basis", "response"):
            sh.problems.append(f"latency basis {(sh.header or {}).get('latency_basis')!r}, not {(header0 or {}).get('latency_basis')!r}")
    ids = sorted({str(s.meta.run_id) for s in shards if s.meta.run_id})
    merged_id = run_id or (ids[0] if len(ids) == 1 else out.name)
    make_dirs(out, field="--out")
    for name in (PROFILE_COPY, SLO_COPY):
        if keep is not None and (keep.path / name).is_file():
            shutil.copyfile(keep.path / name, out / name)
    count = 0
    if interval is not None and edges:
        slots = _slots(usable, interval)
        writer = SnapshotWriter(
            out / SNAPSHOTS,
            header={
                "run_id": merged_id,
                "profile": (header0 or {}).get("profile"),
                "role": "merged",
                "created": time.time(),
                "interval_s": interval,
                "latency_basis": (header0 or {}).get("latency_basis", "response"),
                "bucket_edges": edges,
                "hdr": (header0 or {}).get("hdr"),
                "shards": [s.label for s in shards],
            },
        )
        try:
            store = StatsStore(edges=edges)
        except ValueError as exc:
            writer.abandon()
            raise UsageError(f"{usable[0].label}: header bucket_edges: {exc}") from None
        for k in sorted(slots):
            line = _merge_slot(slots[k], edges, store)
            if line is None:
                continue
            writer.write_interval(store.drain_delta(), **line)
            count += 1
        ended = [s for s in shards if s.end is not None]
        if len(ended) == len(shards):  # an end line only when every shard wrote one
            reasons = [str(s.end.get("reason")) for s in ended if s.end and s.end.get("reason") != "completed"]
            writer.close(reason=reasons[0] if reasons else "completed", **_end_extra(shards))
        else:
            writer.abandon()
    problems = [f"{s.label}: {p}" for s in shards for p in s.problems] + of_the_set
    _write_records(out, shards, merged_id, problems, keep)
    return MergeResult(out=out, shards=tuple(shards), problems=tuple(problems), intervals=count)


def _write_records(out: Path, shards: list[Shard], run_id: str, problems: list[str], keep: Shard | None) -> None:
    metas = [s.meta for s in shards if s.raw_meta]
    isolated = [m.isolated for m in metas]
    preflight: dict[str, int] = {}
    for m in metas:
        for k, v in m.preflight_requests.items():
            preflight[k] = preflight.get(k, 0) + v
    first = keep.meta if keep is not None else RunMeta()
    meta = RunMeta(
        run_id=run_id,
        profile=_common([m.profile for m in metas]),
        profile_path=first.profile_path,
        target=_common([m.target for m in metas]),
        embedded=_common([m.embedded for m in metas]),
        git_revision=_common([m.git_revision for m in metas]),
        seed=_common([m.seed for m in metas]),
        scale=_common([m.scale for m in metas]),
        workers=sum(m.workers for m in metas),
        planned_duration_s=max((m.planned_duration_s for m in metas if m.planned_duration_s is not None), default=None),
        started_ts=min((m.started_ts for m in metas if m.started_ts is not None), default=None),
        ended_ts=max((m.ended_ts for m in metas if m.ended_ts is not None), default=None),
        thresholds=first.thresholds,
        not_offered=tuple(sorted({n for m in metas for n in m.not_offered})),
        dialect=_common([m.dialect for m in metas]),
        isolated=False if False in isolated else (True if isolated and all(isolated) else None),
        isolation=first.isolation,
        preflight_requests=preflight,
        locustfile=first.locustfile,
        user_classes=first.user_classes,
        launched_by="peakload merge",
        shards=tuple(s.to_entry() for s in shards),
    )
    write_atomic(out / RUN_JSON, json.dumps(meta.to_json(), indent=2) + "\n")
    outcomes = [(s, s.outcome) for s in shards if s.outcome is not None]
    aborted = next((f"{s.label}: {o.aborted}" for s, o in outcomes if o.aborted), None)
    invalid = None
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' * (len(problems) > 2)})" if len(problems) > 1 else ""
        invalid = f"incomplete merge: {problems[0]}{more}"
    codes = [o.locust_exit_code for _, o in outcomes if o.locust_exit_code is not None]
    outcome = Outcome(
        aborted=aborted,
        invalid=invalid,
        cpu_warning=any(o.cpu_warning for _, o in outcomes),
        locust_exit_code=max(codes) if codes else None,
        reconciliation_url=_common([o.reconciliation_url for _, o in outcomes]),
    )
    write_atomic(out / OUTCOME_JSON, json.dumps(outcome.to_json(), indent=2) + "\n")
    rec = reconciliation_of(shards)
    if rec is not None:
        write_atomic(out / RECONCILIATION_JSON, json.dumps(rec, indent=2) + "\n")
    events = sorted(
        ({**ev, "shard": s.label} for s in shards for ev in s.events),
        key=lambda ev: (float(ev["t"]), str(ev["shard"])),
    )
    if events:
        write_atomic(out / EVENTS, "".join(json.dumps(ev, allow_nan=False) + "\n" for ev in events))
