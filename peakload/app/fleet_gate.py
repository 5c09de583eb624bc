"""`peakload fleet-gate`: one live abort for every shard, judged on the Prometheus that scrapes them all.

Every ``interval`` the gate evaluates the profile's ``abort: true`` thresholds in
PromQL over the exporter's series summed across shards (each master's series are
exact merges of its workers), and asks every shard's control endpoint
(``peakload run --control``) for its state. A threshold breached for its grace, or
a shard that aborted itself, stops every shard (``POST /abort`` with the reason);
the gate then exits 1 naming the threshold. It exits 0 when every shard finished
without a breach, 3 when nothing could be judged, 2 on bad input.

Judged live (cumulative over the run, like the live gate of ``peakload run``):
``requests``, ``failures``, ``error_ratio``, ``avg``, ``pNN`` (``histogram_quantile``
over ``sum by (le)`` of the SLO-aligned buckets), ``rps`` and ``orders_per_s``
(``rate`` over ``rate_window``), ``dropped``, ``dropped_ratio``,
``payment_success_ratio``. Not judged live: ``min``/``max`` (a histogram has
none), the reconciliation's metrics, thresholds limited to a window.

Usage::

    code = fleet_gate(FleetGateOptions(profile_path=Path("p.yaml"), prometheus="http://127.0.0.1:9090",
                                       controls=["http://127.0.0.1:9700"], token_file=Path("fleet.token")))
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dashboards.errors import PrometheusError
from dashboards.prometheus import query
from dashboards.promql import selector
from exporters.prometheus import (
    ARRIVALS_TOTAL,
    DROPPED_ARRIVALS_TOTAL,
    ORDERS_TOTAL,
    PAYMENTS_TOTAL,
    REQUEST_DURATION_SECONDS,
    REQUEST_FAILURES_TOTAL,
    REQUESTS_TOTAL,
)
from peakload.app.control import MAX_REASON_CHARS, read_token
from peakload.app.runner import thresholds_for
from peakload.core import LATENCY_METRICS, Threshold, UsageError, format_value, load_profile
from peakload.core.errors import EXIT_FAIL, EXIT_INVALID, EXIT_PASS
from peakload.core.inputs import check_url
from peakload.core.net import http_get, is_loopback
from peakload.core.steps import step_scope

__all__ = ["FleetGateOptions", "LiveQuery", "live_queries", "promql_for", "fleet_gate"]

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
_OPS = {"<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__, "==": float.__eq__}
_CALL_TIMEOUT_S = 5.0
_STOP_WAIT_S = 120.0  # after the abort: how long the gate waits for every shard to report it stopped
_UNSEEN_WAIT_S = 60.0  # every shard that answered is done: how long the gate still waits for one that never answered
_DONE = ("stopping", "finished", "gone")


@dataclass(frozen=True, kw_only=True)
class FleetGateOptions:
    profile_path: Path
    prometheus: str
    controls: list[str]
    token_file: Path
    interval: float = 2.0
    until: float = 86_400.0  # stop watching after this long (the gate never runs unbounded)
    rate_window: float = 30.0  # the window of rps and orders_per_s
    allow_hosts: list[str] = field(default_factory=list)  # non-loopback hosts of --prometheus / --control
    match: dict[str, str] = field(default_factory=dict)  # extra label matchers on every series (job="fleet-a")


@dataclass(frozen=True)
class LiveQuery:
    threshold: Threshold
    promql: str


class _NotLive(Exception):
    pass


def _matchers(scope: str) -> dict[str, str]:
    step = step_scope(scope)
    if step is not None:
        return {"step": step}
    if scope == "all":
        return {}
    method, sep, name = scope.partition(" ")
    if sep and method in _METHODS and name:  # a request key "GET /api/home"; else a bare route, every method
        return {"method": method, "name": name}
    return {"name": scope}


def promql_for(t: Threshold, *, match: dict[str, str] | None = None, rate_window: float = 30.0) -> str:
    """The PromQL whose single value is ``t``'s observed value across every shard; _NotLive(why) when none is."""
    extra = dict(match or {})
    window = f"{max(1, round(rate_window))}s"
    if getattr(t, "during", None) is not None or getattr(t, "after", None) is not None or getattr(t, "window", None) is not None:
        raise _NotLive("judged on a window of the run (during/after) when the run ends, not live")
    m = t.metric
    if m in ("dropped", "dropped_ratio", "orders_per_s", "payment_success_ratio"):
        if m == "dropped":
            return f"sum({selector(DROPPED_ARRIVALS_TOTAL, extra)})"
        if m == "dropped_ratio":
            return f"sum({selector(DROPPED_ARRIVALS_TOTAL, extra)}) / sum({selector(ARRIVALS_TOTAL, extra)})"
        if m == "orders_per_s":
            return f"sum(rate({selector(ORDERS_TOTAL, extra)}[{window}]))"
        return f"sum({selector(PAYMENTS_TOTAL, {**extra, 'outcome': 'success'})}) / sum({selector(PAYMENTS_TOTAL, extra)})"
    if t.scope == "business" or m in ("oversold", "duplicates", "payments_mismatch"):
        raise _NotLive("needs the shop's reconciliation, which is read when each shard ends")
    if m in ("min", "max"):
        raise _NotLive(f"a histogram has no {m}; judged from the HDR histograms when the shards are merged")
    labels = {**extra, **_matchers(t.scope)}
    requests, failures = selector(REQUESTS_TOTAL, labels), selector(REQUEST_FAILURES_TOTAL, labels)
    if m == "requests":
        return f"sum({requests})"
    if m == "failures":
        return f"sum({failures})"
    if m == "error_ratio":
        # no failure series yet means 0 failures, not "no data": `or` gives 0 where requests exist
        return f"(sum({failures}) or sum({requests}) * 0) / sum({requests})"
    if m == "rps":
        return f"sum(rate({requests}[{window}]))"
    if m == "avg":
        return f"sum({selector(REQUEST_DURATION_SECONDS + '_sum', labels)}) / sum({selector(REQUEST_DURATION_SECONDS + '_count', labels)})"
    if LATENCY_METRICS.match(m) and m.startswith("p"):
        q = float(m[1:]) / 100
        return f"histogram_quantile({q:g}, sum by (le) ({selector(REQUEST_DURATION_SECONDS + '_bucket', labels)}))"
    raise _NotLive(f"{m} has no PromQL form")


def live_queries(
    thresholds: list[Threshold], *, match: dict[str, str] | None = None, rate_window: float = 30.0
) -> tuple[list[LiveQuery], list[tuple[Threshold, str]]]:
    """The abort thresholds as PromQL, and the ones that cannot be judged live with why."""
    judged, not_live = [], []
    for t in thresholds:
        if not t.abort:
            continue
        try:
            judged.append(LiveQuery(t, promql_for(t, match=match, rate_window=rate_window)))
        except _NotLive as exc:
            not_live.append((t, str(exc)))
    return judged, not_live


def _check_host(url: str, field_name: str, allow: list[str]) -> str:
    check_url(url, field=field_name)
    parts = urlsplit(url)
    if parts.path not in ("", "/"):
        raise UsageError(f"{field_name}: expected a base URL without a path like http://127.0.0.1:9700, got {url!r}")
    host = parts.hostname or ""
    if not is_loopback(host) and host not in allow:
        raise UsageError(f"{field_name}: refusing {host!r}: only loopback hosts unless allowlisted (--allow-host {host})")
    return url.rstrip("/")


def _call(url: str, *, token: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any] | None, bool]:
    """(HTTP status, JSON body, refused): status 0 when unreachable; ``refused`` when nothing listens any more."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if data is not None:
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=_CALL_TIMEOUT_S) as resp:  # noqa: S310 - loopback or allowlisted
            status, raw = int(resp.status), resp.read(65536)
    except urllib.error.HTTPError as exc:
        status, raw = int(exc.code), exc.read(65536)
    except urllib.error.URLError as exc:
        return 0, None, isinstance(exc.reason, ConnectionRefusedError)
    except ConnectionRefusedError:
        return 0, None, True
    except OSError:
        return 0, None, False
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    return status, doc if isinstance(doc, dict) else None, False


@dataclass
class _Shard:
    url: str
    state: str = "unseen"  # unseen | starting | running | stopping | finished | gone | unreachable
    label: str = ""
    aborted: str | None = None
    seen: bool = False

    def update(self, status: int, doc: dict[str, Any] | None, refused: bool, token_file: Path) -> None:
        if status == 401:
            raise UsageError(f"--control-token-file: {self.url}/status refused the token in {token_file} (HTTP 401)")
        if status == 200 and doc is not None:
            self.seen = True
            self.state = str(doc.get("state") or "unknown")
            self.label = f"shard {doc.get('shard') or '-'} (run {doc.get('run_id')})"
            self.aborted = doc.get("aborted") if isinstance(doc.get("aborted"), str) else None
        elif refused and self.seen:
            self.state = "gone"
        elif self.seen:
            self.state = "unreachable"

    @property
    def name(self) -> str:
        return f"{self.label or 'shard'} at {self.url}"


def _value(prometheus: str, promql: str) -> tuple[float | None, str]:
    """The query's one value (None: no series, or NaN as of 0/0), and the error when Prometheus failed."""
    try:
        result = query(prometheus, promql)
    except PrometheusError as exc:
        return None, str(exc)
    if not result:
        return None, ""
    try:
        value = float(result[0]["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None, f"unexpected answer {str(result)[:200]}"
    return (None if math.isnan(value) else value), ""


def _check_prometheus(url: str, *, wait: float = 5.0) -> None:
    """A Prometheus answers at ``url`` (retried for ``wait`` seconds: it may be starting); UsageError otherwise."""
    deadline = time.monotonic() + wait
    while True:
        status, body = http_get(f"{url}/api/v1/query?query=vector(1)", timeout=_CALL_TIMEOUT_S)
        if status == 200:
            return
        if time.monotonic() >= deadline:
            what = f"cannot reach {url}: {body.decode(errors='replace')[:200]}" if status == 0 else f"{url} answered HTTP {status}"
            raise UsageError(f"--prometheus: {what} (expected the Prometheus that scrapes every shard)")
        time.sleep(0.5)


def fleet_gate(opts: FleetGateOptions, *, out: Any = print) -> int:
    """Watch the fleet; stop every shard on a breach. Returns the exit code (0 pass, 1 aborted, 3 not judged)."""
    prometheus = _check_host(opts.prometheus, "--prometheus", opts.allow_hosts)
    urls = [_check_host(u, "--control", opts.allow_hosts) for u in opts.controls]
    if not urls:
        raise UsageError("--control: give the control URL of every shard (peakload run --control HOST:PORT), at least one")
    dup = next((u for i, u in enumerate(urls) if u in urls[:i]), None)
    if dup is not None:
        raise UsageError(f"--control: {dup} is given twice; expected one URL per shard")
    token = read_token(opts.token_file)
    thresholds, _ = thresholds_for(load_profile(opts.profile_path))
    judged, not_live = live_queries(thresholds, match=opts.match, rate_window=opts.rate_window)
    _check_prometheus(prometheus)
    out(f"fleet gate: {len(judged)} abort threshold(s) judged live on {prometheus}, {len(urls)} shard(s)")
    for t, why in not_live:
        out(f"  not judged live: {t.id}: {why}")
    shards = [_Shard(u) for u in urls]
    last: dict[str, float | None] = {q.threshold.id: None for q in judged}
    ever: set[str] = set()
    since: dict[str, float] = {}
    started = time.monotonic()
    done_since: float | None = None
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=min(32, len(shards))) as pool:

        def poll_all() -> None:
            answers = list(pool.map(lambda s: _call(f"{s.url}/status", token=token), shards))
            for s, (status, doc, refused) in zip(shards, answers):
                before = s.state
                s.update(status, doc, refused, opts.token_file)
                if s.state != before:
                    out(f"  {s.name}: {s.state}")

        while True:
            tick = time.monotonic()
            poll_all()
            reason = None
            for q in judged:
                value, error = _value(prometheus, q.promql)
                t = q.threshold
                if error and error != errors.get(t.id):  # said once per distinct failure, not every interval
                    out(f"  warning: {t.id}: not judged this time: {error}")
                errors[t.id] = error
                if value is None:  # no series this time (e.g. the shards just stopped): the last observation stands
                    continue
                last[t.id] = value
                ever.add(t.id)
                if _OPS[t.op](value, t.value):
                    since.pop(t.id, None)
                    continue
                first = since.setdefault(t.id, tick)
                if tick - first >= t.grace:
                    reason = (
                        f"threshold {t.id!r} breached for {tick - first:.0f}s (grace {t.grace:g}s): "
                        f"observed {format_value(t.metric, value)} across the fleet"
                    )
                    break
            if reason is None:
                self_aborted = next((s for s in shards if s.aborted and "(from the fleet gate at" not in s.aborted), None)
                if self_aborted is not None:
                    reason = f"{self_aborted.label or self_aborted.url} {self_aborted.aborted}"
            if reason is not None:
                return _stop_all(shards, reason[:MAX_REASON_CHARS], token=token, pool=pool, out=out, poll_all=poll_all)
            seen = [s for s in shards if s.seen]
            if seen and all(s.state in _DONE for s in seen):
                if len(seen) == len(shards):
                    return _verdict(judged, last, ever, out=out, why="every shard finished without a breach")
                done_since = done_since or tick
                if tick - done_since >= _UNSEEN_WAIT_S:  # the others finished long ago: a wrong URL, or a shard that never started
                    unseen = [s.url for s in shards if not s.seen]
                    out(
                        f"fleet gate: NOT JUDGED: {len(unseen)} control endpoint(s) never answered: {', '.join(unseen)} (exit {EXIT_INVALID})"
                    )
                    return EXIT_INVALID
            if tick - started >= opts.until:
                running = [s.url for s in shards if s.state not in _DONE]
                return _verdict(judged, last, ever, out=out, why=f"stopped watching after {opts.until:g}s; still running: {running}")
            time.sleep(max(0.0, opts.interval - (time.monotonic() - tick)))


def _stop_all(shards: list[_Shard], reason: str, *, token: str, pool: ThreadPoolExecutor, out: Any, poll_all: Any) -> int:
    out(f"fleet gate: ABORT: {reason}")
    t0 = time.monotonic()
    answers = list(pool.map(lambda s: _call(f"{s.url}/abort", token=token, body={"reason": reason}), shards))
    for s, (status, _doc, refused) in zip(shards, answers):
        word = {202: "abort accepted", 409: "already stopping"}.get(status, f"not reached (HTTP {status or 'n/a'})")
        if status == 0 and refused:
            word = "already stopped (its endpoint is gone)"
        out(f"  {s.name}: {word}")
    while any(s.state not in _DONE for s in shards) and time.monotonic() - t0 < _STOP_WAIT_S:
        time.sleep(0.2)
        poll_all()
    stopped = sum(s.state in _DONE for s in shards)
    out(f"fleet gate: {stopped}/{len(shards)} shard(s) stopped within {time.monotonic() - t0:.1f}s of the abort (exit {EXIT_FAIL})")
    return EXIT_FAIL


def _verdict(judged: list[LiveQuery], last: dict[str, float | None], ever: set[str], *, out: Any, why: str) -> int:
    for q in judged:
        t = q.threshold
        if t.id in ever:
            out(f"  ok {t.id}: last observed {format_value(t.metric, last[t.id])}")
        else:
            out(f"  not judged: {t.id}: no series matched in Prometheus ({q.promql})")
    if not ever:
        out(f"fleet gate: NOT JUDGED: {why}, but no abort threshold could be evaluated (exit {EXIT_INVALID})")
        return EXIT_INVALID
    out(f"fleet gate: PASS: {why} (exit {EXIT_PASS})")
    return EXIT_PASS
