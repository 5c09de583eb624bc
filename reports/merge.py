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

import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporters.stats import DELTA_VERSION, MAX_REASONS, StatsStore
from peakload.core import ConfigError, UsageError, load_profile
from peakload.core.inputs import make_dirs
from peakload.core.records import (
    EVENT_FIELDS,
    EVENTS,
    OUTCOME_JSON,
    PROFILE_COPY,
    RECONCILIATION_FIELDS,
    RECONCILIATION_JSON,
    RUN_JSON,
    SLO_COPY,
    SNAPSHOTS,
    SUMMARY_JSON,
    Outcome,
    RunMeta,
    add_reason,
    clean_fields,
    interval_from,
    read_json_lines,
    read_json_object,
    read_snapshots,
    split_snapshots,
)
from peakload.core.snapshots import SnapshotWriter
from reports.build import write_atomic

__all__ = ["MergeResult", "Shard", "check_merge_inputs", "merge_results", "shard_of"]

_EPS = 1e-6  # seconds: wall-clock boundaries are k·I computed in floating point


@dataclass
class Shard:
    """One input folder as read: what it ran, its lines, and what is wrong with it."""

    path: Path
    position: int  # 1-based place on the command line
    meta: RunMeta = field(default_factory=RunMeta)
    raw_meta: dict[str, Any] = field(default_factory=dict)
    index: int | None = None
    of: int | None = None
    header: dict[str, Any] | None = None
    intervals: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None
    outcome: Outcome | None = None
    reconciliation: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """How messages name the shard: ``shard 2/3 (results/b/RUN)`` or ``shard results/b/RUN``."""
        if self.index is None:
            return f"shard {self.path}"
        return f"shard {self.index}/{self.of} ({self.path})" if self.of else f"shard {self.index} ({self.path})"

    @property
    def interval_s(self) -> float | None:
        v = (self.header or {}).get("interval_s")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None

    def last_t_end(self) -> float | None:
        return max((float(o["t_end"]) for o in self.intervals), default=None)

    def to_entry(self) -> dict[str, Any]:
        return {"folder": str(self.path), "run_id": self.meta.run_id, "index": self.index, "of": self.of, "problems": list(self.problems)}


@dataclass(frozen=True)
class MergeResult:
    out: Path
    shards: tuple[Shard, ...]
    problems: tuple[str, ...]  # "shard 2/3 (path): what is wrong", every shard's, then the set's
    intervals: int

    @property
    def complete(self) -> bool:
        return not self.problems


def shard_of(raw: dict[str, Any]) -> tuple[int | None, int | None]:
    """A shard's (index, of) from its run.json, whichever way it is written; (None, None) when absent.

    Usage: ``shard_of({"shard": {"index": 1, "of": 3}})`` → ``(1, 3)``; also ``"shard": "1/3"`` and
    ``shard_index``/``shard_of`` (or ``shard_count``) fields.
    """
    s = raw.get("shard")
    index: Any = None
    of: Any = None
    if isinstance(s, dict):
        index, of = s.get("index"), s.get("of", s.get("count", s.get("total")))
    elif isinstance(s, str) and "/" in s:
        left, _, right = s.partition("/")
        index, of = (int(left), int(right)) if left.strip().isdigit() and right.strip().isdigit() else (None, None)
    elif isinstance(s, int) and not isinstance(s, bool):
        index = s
    if index is None:
        index = raw.get("shard_index")
    if of is None:
        of = raw.get("shard_of", raw.get("shard_count"))

    def whole(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None

    return whole(index), whole(of)


def check_merge_inputs(folders: list[Path], out: Path) -> None:
    """Refuse bad input before anything is read or written (UsageError, one line, exit 2)."""
    if not folders:
        raise UsageError("expected at least one results folder")
    seen: dict[Path, Path] = {}
    for f in folders:
        key = f.resolve()
        if key in seen:
            raise UsageError(f"{f}: given twice (as {seen[key]} too); give each shard's folder once")
        seen[key] = f
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"--out: {out}: exists and is not a folder")
        if out.resolve() in seen:
            raise UsageError(f"--out: {out}: is one of the shard folders; give a new folder")
        if any(out.iterdir()):
            raise UsageError(f"--out: {out}: exists and is not empty; give a new folder")


# ---------------------------------------------------------------- reading one shard


def _read_shard(path: Path, position: int) -> Shard:
    sh = Shard(path=path, position=position)
    p = sh.problems
    if not path.exists():
        p.append("folder not found")
        return sh
    if not path.is_dir():
        p.append("not a folder")
        return sh
    if not ((path / RUN_JSON).is_file() or (path / SNAPSHOTS).is_file()):
        p.append(f"not a results folder (no {RUN_JSON} or {SNAPSHOTS})")
        return sh
    notes: list[str] = []  # wrongly typed fields: the reports list them, they do not sink the merge
    sh.raw_meta = read_json_object(path / RUN_JSON, p) or {}
    sh.meta = RunMeta.from_json(sh.raw_meta, notes) or RunMeta()
    sh.index, sh.of = shard_of(sh.raw_meta)
    if not sh.raw_meta:
        p.append(f"{RUN_JSON}: missing")
    if not (path / SNAPSHOTS).is_file():
        p.append(f"{SNAPSHOTS}: missing; no measurements")
    else:
        lines, snapshot_problems = read_snapshots(path / SNAPSHOTS)
        p.extend(snapshot_problems)
        sh.header, raw_intervals, sh.end = split_snapshots(lines)
        for obj in raw_intervals:
            try:
                interval_from(obj)  # times and rows checked; a bad one is not merged
            except ValueError as exc:
                p.append(f"{SNAPSHOTS}: interval {str(obj.get('seq', '?'))[:20]}: {exc}; not merged")
                continue
            sh.intervals.append(obj)
        if sh.header is None:
            p.append(f"{SNAPSHOTS}: no header line")
        elif sh.interval_s is None:
            p.append(f"{SNAPSHOTS}: header has no interval_s; its intervals cannot be aligned")
        if sh.end is None:
            p.append(f"{SNAPSHOTS}: no end line: the run did not end (killed, or still running)")
        elif sh.end.get("intervals") != len(raw_intervals):
            p.append(f"{SNAPSHOTS}: the end line counts {sh.end.get('intervals')!r} intervals, {len(raw_intervals)} were read (lines lost)")
    raw_outcome = read_json_object(path / OUTCOME_JSON, p)
    if raw_outcome is not None:
        sh.outcome = Outcome.from_json(raw_outcome, notes)
        if sh.outcome.invalid:
            p.append(f"the run is invalid: {sh.outcome.invalid}")
    if sh.meta.launched_by != "locust":  # a plain Locust run writes neither; `peakload run` writes both when it ends
        if raw_outcome is None:
            p.append(f"no {OUTCOME_JSON}: the run did not end")
        if not (path / SUMMARY_JSON).is_file():
            p.append(f"no {SUMMARY_JSON}: the run did not end (peakload run writes it last)")
    sh.reconciliation = clean_fields(read_json_object(path / RECONCILIATION_JSON, notes), RECONCILIATION_FIELDS, RECONCILIATION_JSON, notes)
    for ev in read_json_lines(path / EVENTS, notes):
        ev = clean_fields(ev, EVENT_FIELDS, EVENTS, notes) or {}
        if "t" in ev:
            sh.events.append(ev)
    return sh


def _profile_identity(sh: Shard) -> tuple[str | None, str | None, str | None]:
    """(profile name, content hash of the profile copy, sha256 of the SLO copy); None where a copy is absent.

    The content hash is of the loaded profile without its ``arrivals.shard`` (each shard's own share)
    and its file location, so one profile written per shard compares equal; a copy that does not load
    is hashed byte for byte.
    """

    def digest(p: Path) -> str | None:
        return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None

    copy = sh.path / PROFILE_COPY
    if not copy.is_file():
        return sh.meta.profile, None, digest(sh.path / SLO_COPY)
    try:
        profile = load_profile(copy)
    except (ConfigError, OSError):
        return sh.meta.profile, digest(copy), digest(sh.path / SLO_COPY)
    content = profile.model_dump(mode="json")
    content.pop("source", None)
    if isinstance(content.get("arrivals"), dict):
        content["arrivals"].pop("shard", None)
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return profile.name, hashlib.sha256(text.encode()).hexdigest(), digest(sh.path / SLO_COPY)


def _check_profiles(shards: list[Shard]) -> Shard | None:
    """The shard whose profile copy the merged run keeps; UsageError when shards ran different profiles."""
    readable = [s for s in shards if s.path.is_dir()]
    if not readable:
        return None
    first, ident = readable[0], _profile_identity(readable[0])

    def say(i: tuple[str | None, str | None, str | None]) -> str:
        if i[1] is None:
            return f"no {PROFILE_COPY} (no profile)"
        slo = f"no {SLO_COPY}" if i[2] is None else f"{SLO_COPY} sha256 {i[2][:12]}"
        return f"profile {i[0]!r} ({PROFILE_COPY} sha256 {i[1][:12]}, {slo})"

    for sh in readable[1:]:
        other = _profile_identity(sh)
        if other != ident:
            raise UsageError(f"{sh.label} ran {say(other)}, {first.label} ran {say(ident)}; merge the shards of one profile")
    return first


# ---------------------------------------------------------------- the set


def _set_problems(shards: list[Shard]) -> list[str]:
    """Problems of the set: shard counts that disagree, an index given twice, an index missing."""
    out: list[str] = []
    ofs = {s.of for s in shards if s.of is not None}
    if len(ofs) > 1:
        out.append(f"shards disagree on how many there are ({', '.join(f'{s.label}: of {s.of}' for s in shards if s.of is not None)})")
        return out
    indexed = [s for s in shards if s.index is not None]
    by_index: dict[int, Shard] = {}
    for s in indexed:
        if s.index in by_index:
            out.append(f"{s.label}: the same shard index as {by_index[s.index].path}")
        by_index.setdefault(s.index, s)  # type: ignore[arg-type]
    if ofs:
        (n,) = ofs
        base = 0 if 0 in by_index else 1  # shard indexes run 0..N-1 or 1..N
        for i in range(base, base + n):
            if i not in by_index:
                out.append(f"shard {i}/{n}: missing (no folder given for it)")
    return out


def _common(values: list[Any]) -> Any:
    vals = [v for v in values if v is not None]
    return vals[0] if vals and all(v == vals[0] for v in vals) else None


def _reconciliation(shards: list[Shard]) -> dict[str, Any] | None:
    """The shop's books are one: never summed. One run id against one shop → the last shard's read; else n/a."""
    with_rec = [s for s in shards if s.reconciliation is not None]
    if not with_rec:
        return None
    run_ids = sorted({str(s.meta.run_id) for s in shards if s.path.is_dir()})
    if len(run_ids) > 1:
        return {
            "error": f"n/a for the fleet: the shards ran under {len(run_ids)} run ids ({', '.join(run_ids[:4])}"
            f"{', ...' if len(run_ids) > 4 else ''}); each reconciliation holds one shard's books, which are not summed"
        }
    shops = {(s.outcome.reconciliation_url if s.outcome else None) or s.meta.target for s in with_rec}
    if len(shops) > 1:
        return {"error": f"n/a for the fleet: the shards reconciled against {len(shops)} different shops"}
    last = max(with_rec, key=lambda s: s.meta.ended_ts or 0.0)
    if len(with_rec) < len(shards):
        return {"error": f"n/a for the fleet: only {len(with_rec)} of {len(shards)} shards read the shop's books"}
    return {**(last.reconciliation or {}), "read_by": last.label}


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
        for obj in sh.intervals:
            k = _slot(obj, interval)
            if float(obj["t_start"]) < (k - 1) * interval - _EPS:
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
    shards = [_read_shard(f, i) for i, f in enumerate(folders, 1)]
    keep = _check_profiles(shards)
    set_problems = _set_problems(shards)
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
    problems = [f"{s.label}: {p}" for s in shards for p in s.problems] + set_problems
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
    rec = _reconciliation(shards)
    if rec is not None:
        write_atomic(out / RECONCILIATION_JSON, json.dumps(rec, indent=2) + "\n")
    events = sorted(
        ({**ev, "shard": s.label} for s in shards for ev in s.events),
        key=lambda ev: (float(ev["t"]), str(ev["shard"])),
    )
    if events:
        write_atomic(out / EVENTS, "".join(json.dumps(ev, allow_nan=False) + "\n" for ev in events))
