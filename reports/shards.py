"""One shard's results folder as ``peakload merge`` reads it, and the checks on the set of shards.

Usage::

    shard = read_shard(Path("results/s1/RUN"), position=1)
    shard.label, shard.problems          # "shard 0/3 (results/s1/RUN)", ["snapshots.jsonl: no end line: ..."]
    keep = check_profiles(shards)        # UsageError when the shards ran different profiles
    set_problems(shards)                 # ["shard 1/3: missing (no folder given for it)"]

The rules are in docs/merging-shards.md; the merge itself is :mod:`reports.merge`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peakload.core import ConfigError, UsageError, load_profile
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
    clean_fields,
    interval_from,
    lost_worker_lines,
    read_json_lines,
    read_json_object,
    read_snapshots,
    split_snapshots,
)

__all__ = ["Shard", "shard_of", "check_merge_inputs", "read_shard", "check_profiles", "set_problems", "reconciliation_of"]


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


def read_shard(path: Path, position: int) -> Shard:
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
        p.extend(lost_worker_lines(sh.end))  # a master that lost a worker: that shard's share is incomplete
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


def check_profiles(shards: list[Shard]) -> Shard | None:
    """The shard whose profile copy the merged run keeps; UsageError when shards ran different profiles."""
    readable = [s for s in shards if s.raw_meta or s.header is not None]  # results folders; the others are problems
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


def set_problems(shards: list[Shard]) -> list[str]:
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


def reconciliation_of(shards: list[Shard]) -> dict[str, Any] | None:
    """The shop's books are one: never summed. One run id against one shop → the last shard's read; else n/a."""
    with_rec = [s for s in shards if s.reconciliation is not None]
    if not with_rec:
        return None
    run_ids = sorted({s.meta.run_id for s in shards if s.meta.run_id})
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
