"""Follow snapshots.jsonl while a run is in progress: live progress line and live gate.

Usage::

    tail = SnapshotTail(path); for obj in tail.poll(): ...
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from peakload.core.inputs import parse_json_line
from reports.results import Interval, RequestTotals

__all__ = ["SnapshotTail", "progress_line"]


class SnapshotTail:
    """Yields complete JSON lines appended since the last poll (partial lines wait)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._buf = b""

    def poll(self) -> Iterator[dict[str, Any]]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        self._buf += chunk
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if line.strip():
                try:
                    obj = parse_json_line(line)
                except ValueError:
                    continue
                if isinstance(obj, dict):
                    yield obj


def progress_line(elapsed: float, total: float, iv: Interval) -> str:
    merged = RequestTotals(name="all", method="")
    for row in iv.requests:
        try:
            merged.add(row)
        except Exception:  # progress is best effort; the report says what was unreadable
            continue
    p95 = merged.percentile(95)
    rps = iv.count / iv.seconds
    err = 100.0 * iv.failures / iv.count if iv.count else 0.0
    p95s = f"{p95 * 1000:6.0f}ms" if p95 is not None else "     n/a"
    dropped = iv.arrivals.get("dropped", 0)
    extra = f"  dropped {dropped}" if dropped else ""
    return f"[{elapsed:5.0f}s/{total:.0f}s] users {iv.users:5d}  rps {rps:8.1f}  p95 {p95s}  errors {err:5.2f}%{extra}"


def write_progress(text: str, *, final: bool = False) -> None:
    if sys.stdout.isatty():
        sys.stdout.write("\r\x1b[2K" + text + ("\n" if final else ""))
    elif not final:  # not a terminal: every line was already printed once
        sys.stdout.write(text + "\n")
    sys.stdout.flush()
