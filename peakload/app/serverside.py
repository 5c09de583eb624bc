"""Sample the target's own figures while a run is in progress: ``server.jsonl`` beside ``snapshots.jsonl``.

Usage::

    plan = server_plan(profile, target_url, interval=2.0, allow=["shop.staging"])   # None: nothing to sample
    with ServerSampler(plan, run_dir / SERVER_JSONL):
        ...  # the run; one line per interval, on the snapshot boundaries

A background thread scrapes every endpoint (Prometheus text) at each
wall-clock multiple of the interval, the same boundaries the snapshot lines
end on, and asks a Prometheus server its PromQL queries at that instant. A
scrape that fails leaves that interval's figures n/a (null) and records the
reason; the run goes on. Figures are defined in :mod:`peakload.core.serverside`.
"""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from peakload.core import Profile, UsageError
from peakload.core.inputs import check_url
from peakload.core.net import http_request, is_loopback
from peakload.core.serverside import (
    MAX_SCRAPE_BYTES,
    STOREFRONT_FIGURES,
    FigureSpec,
    Scrape,
    ServerSpec,
    evaluate,
    parse_exposition,
)
from peakload.core.thresholds import SERVER_SCOPE, Threshold

__all__ = ["ServerPlan", "server_plan", "with_target", "check_server_thresholds", "ServerSampler"]

MAX_ERRORS_PER_LINE = 5
TARGET_PLACEHOLDER = "{target}"  # an endpoint on the run's target: "{target}/metrics"


@dataclass(frozen=True)
class ServerPlan:
    interval: float
    endpoints: tuple[str, ...]
    figures: dict[str, FigureSpec]
    prometheus: str | None = None
    queries: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    source: str = "profile"  # or "storefront defaults"


def _check(url: str, *, field_name: str, allow: list[str]) -> str:
    check_url(url, field=field_name)
    host = urlsplit(url).hostname or ""
    if not (is_loopback(host) or host in allow):
        raise UsageError(
            f"{field_name}: refusing to scrape {host!r}: only loopback addresses unless the host is allowlisted "
            f"(--allow-target {host} or target.allow in the profile)"
        )
    return url


def server_plan(profile: Profile, target: str | None, *, interval: float, allow: list[str]) -> ServerPlan | None:
    """What this run samples, validated (UsageError naming the field); None when nothing is to be sampled."""
    spec: ServerSpec | None = profile.server
    if spec is not None and not spec.enabled:
        return None
    every = spec.interval if spec is not None and spec.interval is not None else interval
    endpoints = [
        u if u.startswith(TARGET_PLACEHOLDER) else _check(u, field_name=f"server.endpoints[{i}]", allow=allow)
        for i, u in enumerate(spec.endpoints if spec else [])
    ]
    figures: dict[str, FigureSpec] = dict(spec.figures) if spec is not None else {}
    source = "profile"
    if not endpoints and not figures and profile.target.dialect == "storefront":
        # the storefront's own /metrics (embedded or not): the shop's view of the same requests
        endpoints = [TARGET_PLACEHOLDER + "/metrics"]
        figures, source = dict(STOREFRONT_FIGURES), "storefront defaults"
    prom = spec.prometheus if spec is not None else None
    prom_url = _check(prom.url, field_name="server.prometheus.url", allow=allow).rstrip("/") if prom is not None else None
    units = {name: f.unit for name, f in figures.items()}
    if prom is not None:
        units.update({name: prom.units.get(name, "") for name in prom.queries})
    if not figures and prom is None:
        return None
    return ServerPlan(
        interval=every,
        endpoints=tuple(endpoints),
        figures=figures,
        prometheus=prom_url,
        queries=dict(prom.queries) if prom is not None else {},
        units=units,
        source=source,
    )


def check_server_thresholds(thresholds: list[Threshold], plan: ServerPlan | None) -> None:
    """Every ``server`` threshold names a figure this run samples (UsageError naming it and the figures otherwise)."""
    for t in thresholds:
        if t.scope != SERVER_SCOPE:
            continue
        if plan is None:
            raise UsageError(
                f"thresholds.server: {t.metric!r}: this run samples no server-side figures "
                "(add a `server` section with endpoints and figures, or prometheus queries)"
            )
        known = sorted(set(plan.figures) | set(plan.queries))
        if t.metric not in known:
            raise UsageError(f"thresholds.server: no server figure {t.metric!r}; this run samples {', '.join(known)}")


def with_target(plan: ServerPlan, target: str) -> ServerPlan:
    """``{target}`` in the endpoints replaced by the target's base URL, once it is known (the embedded shop's port)."""
    base = target.rstrip("/")
    endpoints = tuple(base + u[len(TARGET_PLACEHOLDER) :] if u.startswith(TARGET_PLACEHOLDER) else u for u in plan.endpoints)
    return ServerPlan(**{**plan.__dict__, "endpoints": endpoints})


class ServerSampler:
    """The sampling thread (a context manager: started on enter, stopped — last line written — on exit)."""

    def __init__(self, plan: ServerPlan, path: Path, *, timeout: float | None = None) -> None:
        self.plan = plan
        self.path = path
        self.timeout = timeout if timeout is not None else min(max(plan.interval / 2, 0.5), 5.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="peakload-server-sampler", daemon=True)
        self._prev: Scrape | None = None
        self._prev_t: float | None = None
        self.lines = 0

    def __enter__(self) -> ServerSampler:
        header = {
            "v": 1,
            "kind": "header",
            "interval_s": self.plan.interval,
            "source": self.plan.source,
            "endpoints": list(self.plan.endpoints),
            "prometheus": self.plan.prometheus,
            "figures": {name: {"unit": unit} for name, unit in self.plan.units.items()},
        }
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        self._write(header)
        self._prev, _errors = self._scrape()
        self._prev_t = round(time.time(), 6)
        self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=self.timeout * (len(self.plan.endpoints) + len(self.plan.queries) + 2))
        if not self._thread.is_alive():
            self._sample(time.time())  # the part-interval up to the run's end
        self._fh.close()

    def _write(self, obj: dict[str, Any]) -> None:
        self._fh.write(json.dumps(obj, separators=(",", ":"), allow_nan=False) + "\n")
        self._fh.flush()

    def _loop(self) -> None:
        every = self.plan.interval
        while True:
            boundary = (math.floor(time.time() / every) + 1) * every
            if self._stop.wait(max(boundary - time.time(), 0.0)):
                return
            self._sample(boundary)

    def _scrape(self) -> tuple[Scrape, list[str]]:
        scrape: Scrape = {}
        errors: list[str] = []
        for url in self.plan.endpoints:
            status, body = http_request(url, timeout=self.timeout, headers={"Accept": "text/plain"})
            if status != 200:
                reason = body[:120].decode("utf-8", "replace") if status == 0 else f"HTTP {status}"
                errors.append(f"{url}: {reason}")
                continue
            if len(body) > MAX_SCRAPE_BYTES:
                errors.append(f"{url}: exposition larger than {MAX_SCRAPE_BYTES >> 20} MiB; skipped")
                continue
            try:
                for name, samples in parse_exposition(body.decode("utf-8", "replace")).items():
                    scrape.setdefault(name, []).extend(samples)
            except ValueError as exc:
                errors.append(f"{url}: not Prometheus text ({str(exc)[:80]})")
        return scrape, errors

    def _query(self, at: float) -> tuple[dict[str, float | None], list[str]]:
        out: dict[str, float | None] = {}
        errors: list[str] = []
        for name, promql in self.plan.queries.items():
            out[name] = None
            url = f"{self.plan.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
            status, body = http_request(url, timeout=self.timeout)
            try:
                doc = json.loads(body) if status == 200 else None
            except ValueError:
                doc = None
            if not isinstance(doc, dict) or doc.get("status") != "success":
                errors.append(f"{name}: Prometheus answered {status or body[:80].decode('utf-8', 'replace')}")
                continue
            data = doc.get("data") or {}
            result = data.get("result")
            if data.get("resultType") == "scalar" and isinstance(result, list) and len(result) == 2:
                values = [result[1]]
            elif data.get("resultType") == "vector" and isinstance(result, list):
                values = [r.get("value", [0, "NaN"])[1] for r in result if isinstance(r, dict)]
            else:
                errors.append(f"{name}: expected a scalar or an instant vector")
                continue
            if len(values) > 1:
                errors.append(f"{name}: the query gives {len(values)} series; aggregate it to one (sum(...), max(...))")
                continue
            try:
                value = float(values[0]) if values else math.nan
            except (TypeError, ValueError):
                value = math.nan
            out[name] = round(value, 9) if math.isfinite(value) else None
        return out, errors

    def _sample(self, t_end: float) -> None:
        cur, errors = self._scrape()
        t_end = round(t_end, 6)  # the line's own times: a rate × its interval's seconds gives the counter's increase back
        t_start = self._prev_t if self._prev_t is not None else t_end
        seconds = t_end - t_start
        figures = evaluate(self.plan.figures, self._prev if self._prev else None, cur, seconds=seconds) if seconds > 0.05 else {}
        if seconds <= 0.05:
            return
        if self.plan.queries:
            queried, query_errors = self._query(t_end)
            figures.update(queried)
            errors.extend(query_errors)
        self._prev, self._prev_t = (cur if cur else None), t_end
        self.lines += 1
        line: dict[str, Any] = {"seq": self.lines, "t_start": t_start, "t_end": t_end, "figures": figures}
        if errors:
            line["errors"] = errors[:MAX_ERRORS_PER_LINE]
        self._write(line)
