"""The snapshot stream ``<results>/snapshots.jsonl`` (contracts §5): the one writer.

Usage::

    writer = SnapshotWriter(results_dir / "snapshots.jsonl", header={"run_id": run_id, "profile": "smoke"})
    writer.write_interval(store.drain_delta(), t_start=t0, t_end=t1, users=20, workers=2,
                          target_rate=None, cpu_warning=False)
    writer.close(reason="completed")

Every line is flushed and fsync'ed as it is written, so a crash loses at most
the line being written; the reader (:mod:`peakload.core.records`) skips such a line and says so.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from peakload.core.records import SNAPSHOT_VERSION, SNAPSHOTS

__all__ = ["SNAPSHOT_FILE", "interval_line", "SnapshotWriter"]

SNAPSHOT_FILE = SNAPSHOTS


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
    bucket edge, edges in the header's ``bucket_edges``) next to ``hdr``, and its
    ``step`` (only on a journey step's row; absent means no step). The delta's
    ``generator`` lag histograms follow ``arrivals`` when it has any (absent otherwise).
    """
    line: dict[str, Any] = {
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
    }
    if delta.get("generator"):
        line["generator"] = dict(delta["generator"])
    line["cpu_warning"] = cpu_warning
    return line


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

    def abandon(self) -> None:
        """Close without an end line: the stream stays "cut short" (a merge whose shards did not all end)."""
        if not self.closed:
            self._file.close()
            self.closed = True

    def _write(self, obj: Mapping[str, Any]) -> None:
        if self.closed:
            raise ValueError(f"{self.path}: snapshot writer is closed")
        self._file.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
