"""The snapshot stream ``<results>/snapshots.jsonl`` (contracts §5): writer and tolerant reader.

Usage::

    writer = SnapshotWriter(results_dir / "snapshots.jsonl", header={"run_id": run_id, "profile": "smoke"})
    writer.write_interval(store.drain_delta(), t_start=t0, t_end=t1, users=20, workers=2,
                          target_rate=None, cpu_warning=False)
    writer.close(reason="completed")

    lines, problems = read_snapshots(results_dir / "snapshots.jsonl")
    header, intervals, end = split_snapshots(lines)

Every line is flushed and fsync'ed as it is written, so a crash loses at most
the line being written; the reader skips such a line and says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SNAPSHOT_VERSION", "SNAPSHOT_FILE", "interval_line", "SnapshotWriter", "read_snapshots", "split_snapshots"]

SNAPSHOT_VERSION = 1
SNAPSHOT_FILE = "snapshots.jsonl"


def interval_line(
    delta: Mapping[str, Any],
    *,
    seq: int,
    t_start: float,
    t_end: float,
    users: int,
    workers: int,
    target_rate: float | None,
    cpu_warning: bool,
) -> dict[str, Any]:
    """One interval object in contract order from a :meth:`StatsStore.drain_delta` dict.

    Request rows keep the delta's ``buckets`` (non-cumulative counts per
    bucket edge, edges in the header's ``bucket_edges``) next to ``hdr``.
    """
    return {
        "v": SNAPSHOT_VERSION,
        "seq": seq,
        "t_start": t_start,
        "t_end": t_end,
        "users": users,
        "workers": workers,
        "target_rate": target_rate,
        "requests": list(delta["requests"]),
        "business": dict(delta["business"]),
        "arrivals": dict(delta["arrivals"]),
        "cpu_warning": cpu_warning,
    }


class SnapshotWriter:
    """Append-only JSON-lines writer; header on open, one line per interval, end line on close."""

    def __init__(self, path: str | Path, *, header: Mapping[str, Any]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._seq = 0
        self.closed = False
        self._write({"v": SNAPSHOT_VERSION, "kind": "header", **header})

    @property
    def seq(self) -> int:
        """Number of interval lines written so far."""
        return self._seq

    def write_interval(
        self,
        delta: Mapping[str, Any],
        *,
        t_start: float,
        t_end: float,
        users: int,
        workers: int,
        target_rate: float | None,
        cpu_warning: bool,
    ) -> dict[str, Any]:
        """Append one interval line (seq 1, 2, ...) and return it."""
        self._seq += 1
        line = interval_line(
            delta,
            seq=self._seq,
            t_start=t_start,
            t_end=t_end,
            users=users,
            workers=workers,
            target_rate=target_rate,
            cpu_warning=cpu_warning,
        )
        self._write(line)
        return line

    def close(self, *, reason: str, **extra: Any) -> None:
        """Write the end line (``{"v":1,"kind":"end","reason":...}``) and close; idempotent."""
        if self.closed:
            return
        self._write({"v": SNAPSHOT_VERSION, "kind": "end", "reason": reason, "intervals": self._seq, **extra})
        self._file.close()
        self.closed = True

    def _write(self, obj: Mapping[str, Any]) -> None:
        if self.closed:
            raise ValueError(f"{self.path}: snapshot writer is closed")
        self._file.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())


def read_snapshots(path: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every readable line of a snapshot file, and one message per problem.

    Never raises for bad content: a missing file, an undecodable or truncated
    line, a non-object or wrong-version line, or a gap in ``seq`` become
    problems (``"snapshots.jsonl line 7: ..."``); the other lines are returned
    in file order (header and end lines included; see :func:`split_snapshots`).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        return [], [f"{p}: file not found"]
    except OSError as exc:
        return [], [f"{p}: cannot read: {exc.strerror}"]
    lines: list[dict[str, Any]] = []
    problems: list[str] = []
    chunks = raw.split(b"\n")
    last = len(chunks) - 1
    if chunks[-1] == b"":
        chunks.pop()
        last = -1  # file ends with a newline: no partial last line
    expected_seq = 1
    for i, chunk in enumerate(chunks):
        where = f"{p.name} line {i + 1}"
        if not chunk.strip():
            problems.append(f"{where}: empty line")
            continue
        try:
            obj = json.loads(chunk.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            cut = " (truncated last line: the writer stopped mid-line)" if i == last else ""
            problems.append(f"{where}: not valid JSON{cut}: {exc}")
            continue
        if not isinstance(obj, dict):
            problems.append(f"{where}: expected a JSON object, got {type(obj).__name__}")
            continue
        if obj.get("v") != SNAPSHOT_VERSION:
            problems.append(f"{where}: expected \"v\": {SNAPSHOT_VERSION}, got {obj.get('v')!r}")
            continue
        if obj.get("kind") == "header":
            expected_seq = 1  # a reused results folder holds one run after another
        elif "kind" not in obj:
            seq = obj.get("seq")
            if not isinstance(seq, int):
                problems.append(f"{where}: interval line without an integer seq")
                continue
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
