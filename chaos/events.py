"""Event lines for report annotations: ``<results>/events.jsonl``.

Usage::

    events = EventLog(Path("results/run-1"))
    events.write("fault-start", detail="kill storefront-1")

Each line is ``{"t": unix, "kind": "chaos", "name": ..., "detail": ...}``,
appended and flushed, so a report can annotate graphs even if the run dies.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["EventLog", "read_events"]


class EventLog:
    """Append-only ``events.jsonl`` in a results dir (or nowhere when ``results_dir`` is None)."""

    def __init__(self, results_dir: Path | None, *, kind: str = "chaos") -> None:
        self.path = Path(results_dir) / "events.jsonl" if results_dir else None
        self.kind = kind
        self.events: list[dict[str, Any]] = []

    def write(self, name: str, *, detail: Any = "", t: float | None = None) -> dict[str, Any]:
        ev = {"t": round(time.time() if t is None else t, 3), "kind": self.kind, "name": name, "detail": detail}
        self.events.append(ev)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(ev, default=str) + "\n")
                f.flush()
                os.fsync(f.fileno())
        return ev


def read_events(results_dir: Path) -> list[dict[str, Any]]:
    """Events from ``events.jsonl`` (a torn last line is skipped)."""
    out = []
    try:
        lines = (Path(results_dir) / "events.jsonl").read_text().splitlines()
    except FileNotFoundError:
        return []
    for ln in lines:
        try:
            out.append(json.loads(ln))
        except ValueError:
            continue
    return out
