"""The results folder (``results/<run-id>/``): its file names, and the one typed, tolerant reader.

Usage::

    lines, problems = read_snapshots(run_dir / SNAPSHOTS)    # header, intervals and end lines, checked
    header, intervals, end = split_snapshots(lines)
    iv = interval_from(intervals[0])                           # an Interval, or ValueError naming the bad field
    for obj in SnapshotTail(run_dir / SNAPSHOTS).poll(): ...   # live: complete lines appended since the last poll
    meta = clean_fields(raw, RUN_FIELDS, RUN_JSON, problems)

The writer is :mod:`peakload.core.snapshots`.

The documented rule (docs/contracts.md): a line or field that cannot be read
is skipped and listed in ``problems``; it never sinks the report, the gate or
the comparison, and it never counts as a measurement.

Versions: ``"v"`` changes only when a reader of the old format would misread
the new one. An optional field that old readers ignore and new readers default
when absent (a request row's ``step``, run.json's ``not_offered``) is additive
and keeps ``v`` 1.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from peakload.core.inputs import parse_json_line
from peakload.core.steps import NO_STEP, STEPS

__all__ = [
    "SNAPSHOTS",
    "EVENTS",
    "RUN_JSON",
    "OUTCOME_JSON",
    "RECONCILIATION_JSON",
    "CAPACITY_JSON",
    "SUMMARY_JSON",
    "PROFILE_COPY",
    "SLO_COPY",
    "SNAPSHOT_VERSION",
    "STATUS_CLASSES",
    "LATENCY_BASES",
    "GENERATOR_KINDS",
    "read_snapshots",
    "split_snapshots",
    "SnapshotTail",
    "Interval",
    "RunMeta",
    "Outcome",
    "interval_from",
    "clean_row",
    "clean_fields",
    "clean_capacity",
    "read_json_lines",
    "read_json_object",
    "RUN_FIELDS",
    "OUTCOME_FIELDS",
    "LOST_WORKERS",
    "lost_worker_lines",
    "RECONCILIATION_FIELDS",
    "EVENT_FIELDS",
    "MAX_LINE_BYTES",
    "OTHER_MESSAGES",
    "MAX_MESSAGE_CHARS",
    "add_reason",
]

# file names of a results folder (docs/contracts.md §5)
SNAPSHOTS = "snapshots.jsonl"
EVENTS = "events.jsonl"
RUN_JSON = "run.json"
OUTCOME_JSON = "outcome.json"
RECONCILIATION_JSON = "reconciliation.json"
CAPACITY_JSON = "capacity.json"
SUMMARY_JSON = "summary.json"
PROFILE_COPY = "profile.yaml"
SLO_COPY = "slo.yaml"

SNAPSHOT_VERSION = 1
# HTTP status classes of a request row ("none" = no response at all)
STATUS_CLASSES: tuple[str, ...] = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")
LATENCY_BASES = ("response", "intended-start", "service")
# an interval's optional ``generator`` histograms (docs/open-model.md): the generator's own lag, not the shop's
GENERATOR_KINDS: tuple[str, ...] = ("scheduler_lateness", "response_handling_lag")

MAX_LINE_BYTES = 64 << 20  # one snapshot line holds a few hundred KiB of histograms; 64 MiB is corruption

# A request row's optional ``reasons`` ({failure message: count}) is bounded by whoever keeps one:
# messages past the keeper's limit of distinct ones are counted under this key.
OTHER_MESSAGES = "(other messages)"
MAX_MESSAGE_CHARS = 200  # a failure message is cut to this length where it is made (the bridge) and read


def add_reason(reasons: dict[str, int], message: str, n: int, *, limit: int) -> None:
    """Count ``n`` failures of ``message`` in ``reasons``, keeping at most ``limit`` distinct messages.

    Usage: ``add_reason(row_reasons, "HTTP 503: upstream down", 1, limit=20)``; a message that
    finds no free slot (and :data:`OTHER_MESSAGES` itself) goes to the ``"(other messages)"`` count.
    """
    if message in reasons:
        reasons[message] += n
    elif message != OTHER_MESSAGES and len(reasons) - (OTHER_MESSAGES in reasons) < limit:
        reasons[message] = n
    else:
        reasons[OTHER_MESSAGES] = reasons.get(OTHER_MESSAGES, 0) + n


@dataclass
class Interval:
    """One snapshot line: a few seconds of the run."""

    seq: int
    t_start: float
    t_end: float
    users: int
    workers: int
    requests: list[dict[str, Any]]
    business: dict[str, int]
    arrivals: dict[str, int]
    target_rate: float | None
    cpu_warning: bool
    # the generator's own lag ({kind: {"count", "sum_s", "hdr"}}, kinds of GENERATOR_KINDS with samples); {} when absent
    generator: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return max(self.t_end - self.t_start, 1e-9)

    @property
    def count(self) -> int:
        return sum(r["count"] for r in self.requests)

    @property
    def failures(self) -> int:
        return sum(r["failures"] for r in self.requests)


# ---------------------------------------------------------------- scalar checks (bool is not a number here)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _count(v: Any, what: str) -> int:
    if not _is_int(v) or v < 0:
        raise ValueError(f"{what}: expected a non-negative whole number, got {_short(v)}")
    return int(v)


def _number(v: Any, what: str, *, minimum: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{what}: expected a finite number, got {_short(v)}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{what}: expected a number >= {minimum:g}, got {v!r}")
    return float(v)


def _counts(v: Any, what: str) -> dict[str, int]:
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"{what}: expected an object of counts, got {_short(v)}")
    return {str(k): _count(c, f"{what}.{k}") for k, c in v.items()}


def _reasons(v: Any, what: str, failures: int) -> dict[str, int]:
    """A row's ``reasons``: message → count, their sum at most the row's failures; over-long messages are cut."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"{what}: expected an object of failure message counts, got {_short(v)}")
    out: dict[str, int] = {}
    for k, c in v.items():
        n = _count(c, f"{what}[{_short(k)}]")
        key = str(k)[:MAX_MESSAGE_CHARS]
        out[key] = out.get(key, 0) + n
    total = sum(out.values())
    if total > failures:
        raise ValueError(f"{what}: the messages count {total} failures, more than the row's {failures}")
    return out


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "…"


# ---------------------------------------------------------------- snapshot lines


def clean_row(row: Any) -> dict[str, Any]:
    """One request row of an interval, with every field checked (ValueError names the bad one).

    ``step`` is optional (absent in files written before steps, and for requests outside
    the journey): absent reads as ``""``; a value that is not a journey step is refused.
    ``reasons`` is optional too (absent: ``{}``): failure message → count, summing to at most ``failures``.
    """
    if not isinstance(row, dict):
        raise ValueError(f"request row: expected an object, got {_short(row)}")
    name, method = row.get("name"), row.get("method", "")
    if not isinstance(name, str) or not isinstance(method, str):
        raise ValueError("request row: name and method must be strings")
    step = row.get("step", NO_STEP)
    if not isinstance(step, str) or (step != NO_STEP and step not in STEPS):
        raise ValueError(f"{method} {name} step: expected a journey step ({', '.join(STEPS)}) or none, got {_short(step)}")
    count = _count(row.get("count", 0), f"{method} {name} count")
    failures = _count(row.get("failures", 0), f"{method} {name} failures")
    if failures > count:
        raise ValueError(f"{method} {name}: failures ({failures}) exceed count ({count})")
    hdr = row.get("hdr")
    if hdr is not None and not isinstance(hdr, str):
        raise ValueError(f"{method} {name} hdr: expected a base64 string")
    return {
        "name": name,
        "method": method,
        "step": step,
        "count": count,
        "failures": failures,
        "sum_s": _number(row.get("sum_s", 0.0), f"{method} {name} sum_s", minimum=0),
        "status": _counts(row.get("status"), f"{method} {name} status"),
        "errors": _counts(row.get("errors"), f"{method} {name} errors"),
        "reasons": _reasons(row.get("reasons"), f"{method} {name} reasons", failures),
        "hdr": hdr,
    }


def interval_from(obj: dict[str, Any], problems: list[str] | None = None, *, source: str = "snapshots.jsonl") -> Interval:
    """An interval from one snapshot line. Raises ValueError when its times are unusable;
    a bad request row is dropped (and listed in ``problems``) while the rest of the interval stays."""
    seq = obj.get("seq", 0)
    if not _is_int(seq):
        raise ValueError(f"seq: expected a whole number, got {_short(seq)}")
    if "t_start" not in obj or "t_end" not in obj:
        raise ValueError("lacks t_start/t_end")
    t_start = _number(obj["t_start"], "t_start")
    t_end = _number(obj["t_end"], "t_end")
    if t_end < t_start:
        raise ValueError(f"t_end ({t_end}) is before t_start ({t_start})")
    raw_rows = obj.get("requests") or []
    if not isinstance(raw_rows, list):
        raise ValueError(f"requests: expected a list, got {_short(raw_rows)}")
    rows = []
    for raw in raw_rows:
        try:
            rows.append(clean_row(raw))
        except ValueError as exc:
            if problems is None:
                raise
            problems.append(f"{source}: interval {seq}: {exc}; row skipped")
    target_rate = obj.get("target_rate")
    generator: dict[str, dict[str, Any]] = {}
    try:
        generator = _generator(obj.get("generator"))
    except ValueError as exc:
        if problems is None:
            raise
        problems.append(f"{source}: interval {seq}: {exc}; generator lag skipped")
    return Interval(
        seq=seq,
        t_start=t_start,
        t_end=t_end,
        users=_count(obj.get("users") or 0, "users"),
        workers=_count(obj.get("workers") or 0, "workers"),
        requests=rows,
        business=_counts(obj.get("business"), "business"),
        arrivals=_counts(obj.get("arrivals"), "arrivals"),
        target_rate=None if target_rate is None else _number(target_rate, "target_rate", minimum=0),
        cpu_warning=obj.get("cpu_warning") is True,
        generator=generator,
    )


def _generator(v: Any) -> dict[str, dict[str, Any]]:
    """An interval's optional ``generator``: {kind of GENERATOR_KINDS: {count, sum_s, hdr}}; absent reads as {}."""
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"generator: expected an object of lag histograms, got {_short(v)}")
    out = {}
    for kind, row in v.items():
        if kind not in GENERATOR_KINDS:
            raise ValueError(f"generator: expected one of {', '.join(GENERATOR_KINDS)}, got {_short(kind)}")
        if not isinstance(row, dict) or not isinstance(row.get("hdr"), str):
            raise ValueError(f"generator {kind}: expected {{count, sum_s, hdr}} with a base64 hdr")
        out[kind] = {
            "count": _count(row.get("count"), f"generator {kind} count"),
            "sum_s": _number(row.get("sum_s", 0.0), f"generator {kind} sum_s", minimum=0),
            "hdr": row["hdr"],
        }
    return out


# ---------------------------------------------------------------- whole files


def read_json_lines(path: Path, problems: list[str]) -> Iterator[dict[str, Any]]:
    """Stream the JSON objects of a ``.jsonl`` file; bad, truncated or over-long lines become problems."""
    for _, obj in numbered_json_lines(path, problems):
        yield obj


def numbered_json_lines(path: Path, problems: list[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`read_json_lines` with each object's line number."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below; a generator keeps memory flat on long runs
    except FileNotFoundError:
        return
    except OSError as exc:
        problems.append(f"{path.name}: unreadable ({exc.strerror or exc}); ignored")
        return
    with fh:
        lineno = 0
        pending: tuple[int, bytes] | None = None  # hold one line back: only the last line can be "truncated"
        while True:
            line = fh.readline(MAX_LINE_BYTES + 1)
            if not line:
                break
            lineno += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := fh.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                problems.append(f"{path.name} line {lineno}: longer than {MAX_LINE_BYTES >> 20} MiB; skipped")
                continue
            if pending is not None:
                obj = _line(path, pending, problems, last=False)
                if obj is not None:
                    yield pending[0], obj
            pending = (lineno, line)
        if pending is not None:
            obj = _line(path, pending, problems, last=not pending[1].endswith(b"\n"))
            if obj is not None:
                yield pending[0], obj


def _line(path: Path, item: tuple[int, bytes], problems: list[str], *, last: bool) -> dict[str, Any] | None:
    lineno, raw = item
    if not raw.strip():
        return None
    try:
        obj = parse_json_line(raw)
    except ValueError:
        what = "truncated last line: the run was probably killed while writing" if last else "corrupt line"
        problems.append(f"{path.name} line {lineno}: not valid JSON ({what}); skipped")
        return None
    if not isinstance(obj, dict):
        problems.append(f"{path.name} line {lineno}: expected a JSON object, got {type(obj).__name__}; skipped")
        return None
    return obj


def read_json_object(path: Path, problems: list[str], *, max_bytes: int = 256 << 20) -> dict[str, Any] | None:
    """A JSON object file, or None (missing) — unreadable, oversized or non-object files become problems."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        problems.append(f"{path.name}: unreadable ({exc.strerror or exc}); ignored")
        return None
    if not path.is_file() or size > max_bytes:
        problems.append(f"{path.name}: not a regular file of at most {max_bytes >> 20} MiB; ignored")
        return None
    try:
        data = parse_json_line(path.read_bytes())
    except (OSError, ValueError) as exc:
        problems.append(f"{path.name}: unreadable ({exc.__class__.__name__}); ignored")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}: expected a JSON object; ignored")
        return None
    return data


# ---------------------------------------------------------------- typed fields of the small files

_STR, _OPT_STR = (str,), (str, type(None))
_NUM = "number"  # finite int/float, not bool
_CNT = "count"  # non-negative int, not bool
_BOOL = (bool,)

RUN_FIELDS: dict[str, Any] = {
    "run_id": _STR,
    "profile": _OPT_STR,
    "profile_path": _OPT_STR,
    "target": _OPT_STR,
    "embedded": _BOOL,
    "git_revision": _OPT_STR,
    "seed": _CNT,
    "scale": _NUM,
    "workers": _CNT,
    "planned_duration_s": _NUM,
    "started_ts": _NUM,
    "ended_ts": _NUM,
    "thresholds": (list,),
    "not_offered": (list,),
    "dialect": _OPT_STR,
    "isolation": _OPT_STR,
    "preflight_requests": (dict,),
    "isolated": (bool, type(None)),  # None: unknown
    "locustfile": _OPT_STR,
    "user_classes": (list,),
    "launched_by": _OPT_STR,
    "shards": (list,),
    "shard": (dict, type(None)),
    "start_at": (int, float, type(None)),
    "arrivals_plan": (dict, type(None)),
}
OUTCOME_FIELDS: dict[str, Any] = {
    "aborted": _OPT_STR,
    "invalid": _OPT_STR,
    "cpu_warning": _BOOL,
    "locust_exit_code": (int, type(None)),
    "reconciliation_url": _OPT_STR,
}
RECONCILIATION_FIELDS: dict[str, Any] = {
    "error": _STR,
    "consistent": _BOOL,
    "gateway_checked": _BOOL,
    "orders_created": _CNT,
    "orders_paid": _CNT,
    "oversold_units": _CNT,
    "duplicate_orders": _CNT,
    "duplicate_charges": _CNT,
    "payments_succeeded": _CNT,
}
EVENT_FIELDS: dict[str, Any] = {"t": _NUM, "kind": _STR, "name": _STR}


def _shard_ok(value: dict[str, Any]) -> bool:
    index, of = value.get("index"), value.get("of")
    return (
        isinstance(index, int)
        and isinstance(of, int)
        and _is_int(index)
        and _is_int(of)
        and 0 <= index < of
        and set(value) == {"index", "of"}
    )


def _field_ok(value: Any, kind: Any) -> bool:
    if kind == _NUM:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == _CNT:
        return _is_int(value) and value >= 0
    if kind == _BOOL:
        return isinstance(value, bool)
    return isinstance(value, kind) and not (isinstance(value, bool) and bool not in kind)


def clean_fields(data: dict[str, Any] | None, fields: dict[str, Any], source: str, problems: list[str]) -> dict[str, Any] | None:
    """Drop (and list) every known field whose type is wrong; unknown fields pass through untouched."""
    if data is None:
        return None
    out = {}
    for key, value in data.items():
        kind = fields.get(key)
        if kind is not None and not _field_ok(value, kind):
            problems.append(f"{source}: {key}: unexpected value {_short(value)}; ignored")
            continue
        out[key] = value
    return out


def clean_capacity(data: dict[str, Any] | None, problems: list[str]) -> dict[str, Any] | None:
    """capacity.json: its verdict decides the run, so a malformed one is ignored as a whole."""
    if data is None:
        return None
    steps = data.get("steps")
    ok = (
        isinstance(data.get("verdict"), str)
        and data.get("exit_code") in (0, 1, 3)
        and not isinstance(data.get("exit_code"), bool)
        and isinstance(steps, list)
        and all(isinstance(s, dict) for s in steps)
    )
    if ok and isinstance(steps, list):
        for st in steps:
            for key in ("rps", "rate"):
                if not _field_ok(st.get(key, 0), _NUM):
                    ok = False
            for key in ("p95_ms", "p99_ms"):
                if st.get(key) is not None and not _field_ok(st[key], _NUM):
                    ok = False
            if not isinstance(st.get("messages", []), list):
                ok = False
    if not ok:
        problems.append("capacity.json: malformed (verdict, exit_code 0/1/3 and a list of steps expected); ignored")
        return None
    return data


# ---------------------------------------------------------------- the snapshot stream


def read_snapshots(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every readable line of a snapshot file, and one message per problem; never raises for bad content.

    A missing file, an undecodable or truncated line, a non-object or wrong-version line, or a gap in
    ``seq`` become problems (``"snapshots.jsonl line 7: ..."``); the other lines are returned in file
    order (header and end lines included; see :func:`split_snapshots`).
    """
    p = Path(path)
    problems: list[str] = []
    if not p.exists():
        return [], [f"{p}: file not found"]
    lines: list[dict[str, Any]] = []
    expected_seq = 1
    for lineno, obj in numbered_json_lines(p, problems):
        where = f"{p.name} line {lineno}"
        if obj.get("v") != SNAPSHOT_VERSION:
            problems.append(f'{where}: expected "v": {SNAPSHOT_VERSION}, got {_short(obj.get("v"))}; skipped')
            continue
        if obj.get("kind") == "header":
            expected_seq = 1  # a reused results folder holds one run after another
        elif "kind" not in obj:
            raw_seq = obj.get("seq")
            if not _is_int(raw_seq):
                problems.append(f"{where}: interval line without an integer seq; skipped")
                continue
            seq: int = raw_seq  # type: ignore[assignment]  # _is_int checked it
            if seq != expected_seq:
                problems.append(f"{where}: expected seq {expected_seq}, got {seq} (lines missing or out of order)")
            expected_seq = seq + 1
        lines.append(obj)
    return lines, problems


def split_snapshots(lines: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]], dict[str, Any] | None]:
    """``(header, intervals, end)`` from :func:`read_snapshots` lines; header/end None when absent."""
    header = next((o for o in lines if o.get("kind") == "header"), None)
    end = next((o for o in reversed(lines) if o.get("kind") == "end"), None)
    intervals = [o for o in lines if "kind" not in o]
    return header, intervals, end


class SnapshotTail:
    """Live reading: yields complete JSON object lines appended since the last poll (partial lines wait)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._buf = b""
        self.intervals_seen = 0  # interval lines yielded so far

    def poll(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        self._buf += chunk
        *complete, self._buf = self._buf.split(b"\n")
        for line in complete:
            if not line.strip():
                continue
            try:
                obj = parse_json_line(line)
            except ValueError:
                continue  # the final reader lists it; the live view only skips it
            if isinstance(obj, dict):
                if "kind" not in obj:
                    self.intervals_seen += 1
                yield obj


# ---------------------------------------------------------------- typed records of run.json and outcome.json


@dataclass(frozen=True, kw_only=True)
class RunMeta:
    """``run.json``: what was run, against what, when (written by ``peakload run`` at start and end)."""

    run_id: str | None = None
    profile: str | None = None
    profile_path: str | None = None
    target: str | None = None
    embedded: bool | None = None
    git_revision: str | None = None
    seed: int | None = None
    scale: float | None = None
    workers: int = 0
    planned_duration_s: float | None = None
    started_ts: float | None = None
    ended_ts: float | None = None
    thresholds: tuple[str, ...] = ()
    # journey steps and books fields the target platform does not offer (n/a in the report, never 0)
    not_offered: tuple[str, ...] = ()
    dialect: str | None = None  # target.dialect
    isolated: bool | None = None  # the platform keeps the run's writes out of real business figures
    isolation: str | None = None  # how that is known (confirmed by a probe order, or only declared)
    # tagged requests the pre-flight sent before the load ("METHOD template" -> count); not part of the measurements
    preflight_requests: dict[str, int] = field(default_factory=dict)
    locustfile: str | None = None  # the user's own locustfile (its copy in the folder), None = the built-in journeys
    user_classes: tuple[str, ...] = ()  # the Locust user classes that ran, when picked by name
    launched_by: str | None = None  # "peakload run", or "locust" (a plain Locust run wrote this folder itself)
    # a merged run (``peakload merge``): one entry per shard folder merged, {"folder", "run_id", "index", "of", "problems"}
    shards: tuple[dict[str, Any], ...] = ()
    # one shard of a fleet (``--shard I/N``, docs/open-model.md#shards): {"index", "of"} (0-based); None = the whole schedule
    shard: dict[str, int] | None = None
    start_at: float | None = None  # the schedule start every shard shares (epoch s, ``--start-at``)
    # the open model's plan: {"global_arrivals", "shard_arrivals", "exact"} (exact false: Poisson expectations)
    arrivals_plan: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "thresholds": list(self.thresholds),
            "not_offered": list(self.not_offered),
            "user_classes": list(self.user_classes),
            "shards": [dict(s) for s in self.shards],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, problems: list[str]) -> RunMeta | None:
        """The readable fields of a run.json (wrongly typed ones are listed in ``problems``); None when absent."""
        clean = clean_fields(data, RUN_FIELDS, RUN_JSON, problems)
        if clean is None:
            return None
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in clean.items() if k in known}
        for key in ("thresholds", "not_offered", "user_classes"):
            if key in values:
                values[key] = tuple(str(t) for t in values[key])
        if "shards" in values:
            values["shards"] = tuple(dict(s) for s in values["shards"] if isinstance(s, dict))
        if values.get("shard") is not None and not _shard_ok(values["shard"]):
            problems.append(f"{RUN_JSON}: shard: expected {{index, of}} with 0 <= index < of, got {_short(values['shard'])}; ignored")
            del values["shard"]
        if "preflight_requests" in values:
            values["preflight_requests"] = {
                str(k): v for k, v in values["preflight_requests"].items() if isinstance(v, int) and not isinstance(v, bool) and v >= 0
            }
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """``outcome.json``: how the load generator ended; the verdict's first rules read it (reports.summary)."""

    aborted: str | None = None  # "aborted: <why>" — an abort threshold, capacity's knee, Ctrl-C
    invalid: str | None = None  # why the run cannot be trusted (did not stop, Locust crashed)
    cpu_warning: bool = False  # Locust's CPU warning fired
    locust_exit_code: int | None = None
    reconciliation_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, problems: list[str]) -> Outcome:
        clean = clean_fields(data, OUTCOME_FIELDS, OUTCOME_JSON, problems) or {}
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in clean.items() if k in known})


# ---------------------------------------------------------------- workers a master lost

# The end line's optional ``lost_workers``: one entry per worker the master stopped hearing from mid-run
# (written by scenarios.aggregator.MasterAggregator): {"worker", "index", "at_s", "kept_s", "requests_kept",
# "kept_until", "last_heard", "noticed"} (the last three in epoch seconds).
LOST_WORKERS = "lost_workers"


def lost_worker_lines(end: dict[str, Any] | None) -> list[str]:
    """One sentence per worker the end line says was lost (a malformed entry still counts); the run is invalid when any.

    ``at_s``/``kept_s`` are seconds since the test started: when the master last heard the worker, and the
    end of the last interval it pushed (its intervals up to there are in the snapshots; ``None`` = it pushed none).
    """
    raw = (end or {}).get(LOST_WORKERS)
    if raw is None:
        return []
    unreadable = "a worker was lost mid-run (its end-line entry is unreadable): its share of the schedule was not all sent or counted"
    out = []
    for row in raw if isinstance(raw, list) else [None]:
        if not (isinstance(row, dict) and isinstance(row.get("worker"), str) and _field_ok(row.get("at_s"), _NUM)):
            out.append(unreadable)  # never read as a complete run
            continue
        index = f" (index {row['index']})" if _is_int(row.get("index")) else ""
        kept_s, kept = row.get("kept_s"), row.get("requests_kept")
        n = f" ({kept} requests)" if _is_int(kept) else ""
        kept_text = f"its intervals up to {kept_s:.1f} s are kept{n}" if _field_ok(kept_s, _NUM) else "it had reported nothing"
        out.append(
            f"worker {row['worker'][:120]}{index} lost {row['at_s']:.1f} s into the test (no heartbeat after that): {kept_text}; "
            "its share of the schedule after that was not sent or not counted"
        )
    return out[:100]
