"""Follow snapshots.jsonl while a run is in progress: live progress line and live gate.

Usage::

    tail = SnapshotTail(path); for obj in tail.poll(): ...
"""

from __future__ import annotations

import sys

from reports.results import Interval, RunData

__all__ = ["progress_line", "write_progress"]


def progress_line(elapsed: float, total: float, iv: Interval) -> str:
    merged = RunData.from_intervals([iv]).all_requests()
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
