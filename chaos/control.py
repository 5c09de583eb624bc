"""Chaos Toolkit control: measure every experiment (prober, canary, HAProxy watcher, events).

Declared in each experiment::

    "controls": [{"name": "peakload-measurement",
                  "provider": {"type": "python", "module": "chaos.control",
                               "arguments": {"state_dir": "${state_dir}", "results_dir": "${results_dir}"}}}]

During the experiment a prober sends ``probe_rate`` requests/s through
HAProxy, a canary places orders (each acknowledged one logged), and a
watcher records HAProxy's own up/down decisions. Activities named
``inject-*`` mark the start of a fault, ``heal-*`` (and the rollbacks) its
end. At the end ``<results_dir>`` holds ``events.jsonl``, ``probe.jsonl``,
``canary.jsonl`` and ``measurement.json``; the measurement is also put into
the journal under ``"peakload_measurement"``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC
from pathlib import Path
from typing import Any

from chaos.canary import CanaryWriter, compute_rpo, read_acks
from chaos.events import EventLog
from chaos.measure import Measurement, measure
from chaos.platform import postgres as pg
from chaos.platform.core import current_primary
from chaos.platform.health import haproxy_servers
from chaos.platform.layout import require_platform
from chaos.prober import Prober
from chaos.probes import product_paths

__all__ = [
    "MeasurementSession",
    "before_experiment_control",
    "before_method_control",
    "after_method_control",
    "before_activity_control",
    "after_activity_control",
    "before_rollback_control",
    "after_rollback_control",
    "after_experiment_control",
]


class MeasurementSession:
    """Prober + canary + HAProxy watcher + event log for one experiment run."""

    def __init__(
        self,
        *,
        state_dir: str,
        results_dir: str,
        probe_rate: float = 20.0,
        canary_rate: float = 5.0,
        latency_threshold_s: float = 0.3,
        slo_ratio: float = 0.95,
        max_seconds: float = 300.0,
    ) -> None:
        self.lay, self.spec = require_platform(state_dir)
        self.results = Path(results_dir)
        self.results.mkdir(parents=True, exist_ok=True)
        self.events = EventLog(self.results)
        self.latency_threshold_s, self.slo_ratio = latency_threshold_s, slo_ratio
        base = f"http://127.0.0.1:{self.spec.ports.haproxy}"
        self.prober = Prober(base_url=base, paths=product_paths(state_dir), rate=probe_rate, timeout=2.0, max_seconds=max_seconds)
        self.canary = CanaryWriter(
            base_url=base, log=self.results / "canary.jsonl", rate=canary_rate, max_seconds=max_seconds, username="user00005"
        )
        self.detections: list[tuple[float, str]] = []
        self.fault_start: float | None = None
        self.fault_end: float | None = None
        self.phase = "setup"
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="haproxy-watcher", daemon=True)

    def start(self, title: str) -> None:
        self.events.write("experiment-start", detail=title)
        self.prober.start()
        self.canary.start()
        self._watcher.start()

    def _watch(self) -> None:
        last: dict[str, str] = {}
        while not self._stop.wait(0.2):
            servers = haproxy_servers(self.spec)
            for name, st in servers.items():
                prev = last.get(name)
                if prev is not None and prev.split()[0] != st.split()[0]:
                    what = f"haproxy {name} {prev.split()[0]}->{st.split()[0]}"
                    self.detections.append((time.time(), what))
                    self.events.write("haproxy", detail=what)
                last[name] = st

    def fault(self, name: str, *, start: bool, t: float | None = None) -> None:
        now = time.time() if t is None else t
        if start:
            if self.fault_start is None:
                self.fault_start = now
            self.events.write("fault-start", detail=name, t=now)
        else:
            self.fault_end = now
            self.events.write("fault-end", detail=name, t=now)

    def finish(self, *, observe_after_s: float = 2.0) -> Measurement:
        time.sleep(observe_after_s)  # see the platform settle after the rollbacks
        self._stop.set()
        samples = self.prober.stop()
        self.canary.stop()
        self._watcher.join(2)
        self.prober.write(self.results / "probe.jsonl")
        m = measure(
            samples,
            fault_start=self.fault_start,
            fault_end=self.fault_end,
            detections=self.detections,
            latency_threshold_s=self.latency_threshold_s,
            slo_ratio=self.slo_ratio,
        )
        m.rpo = self._rpo()
        if m.time_to_detect_s is not None and self.fault_start is not None:
            self.events.write("detection", detail=m.detected_by, t=self.fault_start + m.time_to_detect_s)
        if m.recovered and m.rto_seconds:
            self.events.write("recovery", detail=f"back to SLO (RTO {m.rto_seconds}s)", t=m.recovery_t)
        elif m.recovered and self.fault_start is not None:
            self.events.write("no-impact", detail="the SLO held throughout the fault", t=self.fault_start)
        self.events.write("experiment-end", detail=m.summary())
        (self.results / "measurement.json").write_text(json.dumps(m.to_dict(), indent=2))
        return m

    def _rpo(self) -> dict[str, Any] | None:
        acks = read_acks(self.results / "canary.jsonl")
        if not acks:
            return None
        idx = current_primary(self.lay, self.spec)
        if idx is None or pg.in_recovery(self.lay.pg_node(idx, self.spec)) is not False:
            return {"error": "no primary to check the canary's orders against", "acked": len(acks)}
        node = self.lay.pg_node(idx, self.spec)
        present: set[str] = set()
        ids = [a.id for a in acks]
        for i in range(0, len(ids), 500):
            quoted = ",".join(f"'{x}'" for x in ids[i : i + 500] if x.isalnum())
            if quoted:
                present.update(pg.psql(node, f"SELECT id FROM orders WHERE id IN ({quoted})", dbname=self.spec.app_db).split())
        return compute_rpo(acks, present).to_dict()


def _run_end(state: Any) -> float | None:
    """When the activity itself ended (the journal's ``end``, before any ``pauses.after``)."""
    from datetime import datetime

    end = state.get("end") if isinstance(state, dict) else None
    if not isinstance(end, str):
        return None
    try:
        stamp = datetime.fromisoformat(end)
    except ValueError:
        return None
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


# Chaos Toolkit calls the control's module functions; one experiment runs per process at a time.
_SESSION: dict[str, MeasurementSession] = {}


def before_experiment_control(
    context: dict,
    state_dir: str,
    results_dir: str,
    probe_rate: float = 20.0,
    canary_rate: float = 5.0,
    latency_threshold_s: float = 0.3,
    slo_ratio: float = 0.95,
    **_: Any,
) -> None:
    """Start measuring before the steady-state hypothesis is first checked."""
    session = MeasurementSession(
        state_dir=state_dir,
        results_dir=results_dir,
        probe_rate=probe_rate,
        canary_rate=canary_rate,
        latency_threshold_s=latency_threshold_s,
        slo_ratio=slo_ratio,
    )
    _SESSION["current"] = session
    session.start(context.get("title", "experiment"))


def before_method_control(context: dict, **_: Any) -> None:
    if s := _SESSION.get("current"):
        s.phase = "method"
        s.events.write("method-start", detail="")


def after_method_control(context: dict, **_: Any) -> None:
    if s := _SESSION.get("current"):
        s.phase = "after-method"
        s.events.write("method-end", detail="")


def before_activity_control(context: dict, **_: Any) -> None:
    s = _SESSION.get("current")
    if s and s.phase == "method" and str(context.get("name", "")).startswith("inject-"):
        s.fault(context["name"], start=True)


def after_activity_control(context: dict, state: Any = None, **_: Any) -> None:
    s = _SESSION.get("current")
    if not s:
        return
    name = str(context.get("name", ""))
    if s.phase == "method" and name.startswith("heal-"):
        s.fault(name, start=False, t=_run_end(state))
    elif s.phase in ("method", "rollback") and context.get("type") == "action":
        outcome = state.get("status") if isinstance(state, dict) else ""
        s.events.write("action", detail=f"{name}: {outcome}")


def before_rollback_control(context: dict, **_: Any) -> None:
    if s := _SESSION.get("current"):
        s.phase = "rollback"
        if s.fault_start is not None and s.fault_end is None:
            s.fault("rollbacks", start=False)
        s.events.write("rollback-start", detail="")


def after_rollback_control(context: dict, **_: Any) -> None:
    if s := _SESSION.get("current"):
        s.phase = "done"
        s.events.write("rollback-end", detail="")


def after_experiment_control(context: dict, state: Any = None, **_: Any) -> None:
    """Stop measuring, compute the figures, write them and attach them to the journal."""
    s = _SESSION.pop("current", None)
    if s is None:
        return
    m = s.finish()
    if isinstance(state, dict):
        state["peakload_measurement"] = m.to_dict()
