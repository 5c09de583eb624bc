"""The `peakload` command line.

Exit codes: 0 all thresholds pass · 1 a threshold failed (or a regression) ·
2 usage/config error · 3 run invalid (target unreachable, generator
overloaded, results incomplete).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from peakload.core import (
    MAX_USERS,
    CompareSpec,
    PeakloadError,
    UsageError,
    parse_duration,
)
from peakload.core.inputs import (
    check_finite,
    check_host,
    check_out_dir,
    check_path,
    check_url,
)
from peakload.core.summary import Summary

__all__ = ["main", "build_parser"]

MAX_WORKERS = 1024  # local worker processes; a fleet is several masters (shards), not one host with thousands


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _arg(convert: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """An argparse ``type=``: the check's own message (without a field prefix) becomes the one-line error."""

    def wrapped(text: str) -> Any:
        try:
            return convert(text)
        except (ValueError, PeakloadError) as exc:
            raise argparse.ArgumentTypeError(str(exc).removeprefix(": ")) from None

    wrapped.__name__ = name  # argparse names the type in "invalid <name> value"
    return wrapped


def _positive_duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds <= 0:
        raise ValueError(f"expected a positive duration like 30s or 5m, got {text!r}")
    return seconds


def _int_in(lo: int, hi: int) -> Callable[[str], Any]:
    def convert(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise ValueError(f"expected a whole number {lo}..{hi}, got {text[:40]!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a whole number {lo}..{hi}, got {value}")
        return value

    return _arg(convert, "int")


def _float_in(lo: float, hi: float) -> Callable[[str], Any]:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"expected a number, got {text[:40]!r}") from None
        return check_finite(value, field="", lo=lo, hi=hi, lo_open=True)

    return _arg(convert, "float")


def _checked(check: Callable[..., Any]) -> Callable[[str], Any]:
    return _arg(lambda text: check(text, field=""), check.__name__.removeprefix("check_"))


_duration = _arg(_positive_duration, "duration")
_duration_or_zero = _arg(parse_duration, "duration")
_path = _arg(check_path, "path")
_url = _checked(check_url)
_host = _checked(check_host)
_out = _checked(check_out_dir)
_port = _int_in(0, 65535)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="peakload", description="Rehearse an e-commerce pre-sale peak: load, measure, gate, report.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run a profile against a target (the embedded storefront by default)")
    r.add_argument("--profile", type=_path, default=Path("profiles/smoke.yaml"), help="profile YAML (default: %(default)s)")
    r.add_argument("--target", type=_url, help="base URL of the shop (default: start the embedded storefront)")
    r.add_argument("--allow-target", type=_host, action="append", default=[], metavar="HOST", help="allow this non-loopback host")
    r.add_argument("--duration", type=_duration, help="cap the run, e.g. 30s or 5m")
    g = r.add_mutually_exclusive_group()
    g.add_argument("--users", type=_int_in(1, MAX_USERS), help="scale the shape so its peak is this many users")
    g.add_argument("--scale", type=_float_in(0, 10_000), help="multiply every user count by this factor")
    r.add_argument("--results", type=_out, default=Path("results"), help="results root folder (default: %(default)s)")
    r.add_argument("--seed", type=_int_in(0, 2**63 - 1), help="random seed (default: the profile's)")
    r.add_argument("--workers", type=_int_in(0, MAX_WORKERS), default=0, help="local Locust worker processes (0 = one local runner)")
    r.add_argument(
        "--expect-workers",
        type=_int_in(1, MAX_WORKERS),
        default=0,
        metavar="N",
        help="wait for N `locust --worker` processes started elsewhere (other hosts); needs --master-bind (docs/kubernetes.md)",
    )
    r.add_argument("--master-bind", metavar="HOST:PORT", help="the address those workers connect to (HOST an IP address of this machine)")
    r.add_argument("--metrics-port", type=_port, default=0, help="serve the load generator's /metrics on this port (0 = off)")
    r.add_argument("--baseline", type=_path, help="compare against this earlier results folder")
    r.add_argument("--quiet", action="store_true", help="no live progress line")
    r.add_argument(
        "--locustfile", type=_path, help="your own Locust user classes instead of the built-in journeys (docs/own-locustfile.md)"
    )
    r.add_argument(
        "--with-prometheus", action="store_true", help="start a local Prometheus scraping the run and the shop, with the SLO rules"
    )
    r.add_argument(
        "--accept-real-orders",
        action="store_true",
        help="allow cart, checkout and pay against a non-loopback shop that does not isolate test traffic",
    )
    r.add_argument(
        "--shard",
        type=_arg(_shard, "shard"),
        metavar="I/N",
        help="run shard I of N (0-based: 0/3 1/3 2/3) of the open-model schedule; needs --start-at (docs/open-model.md#shards)",
    )
    r.add_argument(
        "--start-at",
        type=_arg(_start_at, "instant"),
        metavar="WHEN",
        help="start the arrival schedule at this instant (ISO-8601 UTC like 2026-12-03T10:50:00Z, or epoch seconds); within 24 h",
    )
    r.add_argument(
        "--control",
        type=_arg(_listen, "address"),
        metavar="HOST:PORT",
        help="serve the control endpoint here (POST /abort, GET /status) so peakload fleet-gate can stop this run; loopback only",
    )
    r.add_argument("--control-token-file", type=_path, metavar="FILE", help="the fleet's shared token for --control (16+ characters)")
    r.add_argument(
        "--allow-control", type=_host, action="append", default=[], metavar="ADDR", help="let --control listen on this non-loopback address"
    )

    fg = sub.add_parser(
        "fleet-gate", help="judge the abort thresholds on the Prometheus that scrapes every shard; stop every shard on a breach"
    )
    fg.add_argument("--profile", type=_path, required=True, help="the profile whose abort: true thresholds are judged")
    fg.add_argument("--prometheus", type=_url, required=True, help="base URL of the Prometheus that scrapes every shard's /metrics")
    fg.add_argument(
        "--control", type=_url, action="append", required=True, metavar="URL", help="a shard's control endpoint (repeat for every shard)"
    )
    fg.add_argument("--control-token-file", type=_path, required=True, metavar="FILE", help="the fleet's shared token")
    fg.add_argument("--interval", type=_arg(_gate_interval, "duration"), default=2.0, help="evaluate this often (default 2s)")
    fg.add_argument("--until", type=_arg(_gate_until, "duration"), default=86_400.0, help="stop watching after this long (default 24h)")
    fg.add_argument("--rate-window", type=_arg(_gate_window, "duration"), default=30.0, help="window of rps and orders_per_s (default 30s)")
    fg.add_argument(
        "--match", type=_arg(_label_match, "matcher"), action="append", default=[], metavar="LABEL=VALUE", help="only these series"
    )
    fg.add_argument(
        "--allow-host", type=_host, action="append", default=[], metavar="HOST", help="allow this non-loopback Prometheus/control host"
    )

    c = sub.add_parser("capacity", help="step the arrival rate up until a threshold breaks or arrivals drop (the knee)")
    c.add_argument(
        "--profile", type=_path, default=Path("profiles/capacity.yaml"), help="profile with a capacity section (default: %(default)s)"
    )
    c.add_argument("--target", type=_url, help="base URL of the shop (default: start the embedded storefront)")
    c.add_argument("--allow-target", type=_host, action="append", default=[], metavar="HOST", help="allow this non-loopback host")
    c.add_argument("--results", type=_out, default=Path("results"), help="results root folder (default: %(default)s)")
    c.add_argument("--seed", type=_int_in(0, 2**63 - 1), help="random seed (default: the profile's)")
    c.add_argument("--workers", type=_int_in(0, MAX_WORKERS), default=0, help="local Locust worker processes (0 = one local runner)")
    c.add_argument("--metrics-port", type=_port, default=0, help="serve the load generator's /metrics on this port (0 = off)")
    c.add_argument("--quiet", action="store_true", help="no live progress line")
    c.add_argument(
        "--locustfile", type=_path, help="your own Locust user classes instead of the built-in journeys (docs/own-locustfile.md)"
    )

    rep = sub.add_parser("report", help="(re)build the reports of a results folder, even a partial one")
    rep.add_argument("results_dir", type=_path)
    rep.add_argument("--baseline", type=_path, help="an earlier results folder to compare with")

    gate = sub.add_parser("gate", help="evaluate the thresholds of a results folder; exit 0/1/3")
    gate.add_argument("results_dir", type=_path)

    merge = sub.add_parser("merge", help="merge shard results folders into one run, then gate and report it; exit 0/1/3")
    merge.add_argument("results_dirs", type=_path, nargs="*", metavar="RESULTS", help="one results folder per shard")
    merge.add_argument("--out", type=_out, required=True, help="the merged results folder (new, or an empty folder)")

    slo = sub.add_parser("slo", help="Prometheus rules from the SLO spec")
    slo_sub = slo.add_subparsers(dest="slo_command", required=True, parser_class=_Parser)
    rules = slo_sub.add_parser("rules", help="write recording rules and burn-rate alerts")
    rules.add_argument("--spec", type=_path, default=Path("profiles/slo.yaml"), help="SLO spec (default: %(default)s)")
    rules.add_argument("--out", type=_out, required=True, help="output folder")

    dash = sub.add_parser("dashboards", help="Grafana dashboards as code")
    dash_sub = dash.add_subparsers(dest="dash_command", required=True, parser_class=_Parser)
    build = dash_sub.add_parser("build", help="write the dashboard JSON files")
    build.add_argument("--spec", type=_path, default=Path("profiles/slo.yaml"), help="SLO spec (default: %(default)s)")
    build.add_argument("--out", type=_out, required=True, help="output folder")
    push = dash_sub.add_parser("push", help="upload the dashboards to a Grafana (token from $GRAFANA_TOKEN)")
    push.add_argument("--url", type=_url, required=True, help="Grafana base URL")
    push.add_argument("--dir", type=_path, default=None, help="dashboards folder (default: the generated ones)")

    plat = sub.add_parser(
        "platform", help="the full platform on this machine (HAProxy, 3 shops, PostgreSQL primary+standby, Redis, Prometheus)"
    )
    plat.add_argument("action", choices=["up", "down", "status"])
    plat.add_argument(
        "--state-dir", type=_out, default=Path(".peakload/platform"), help="where its config, data and logs live (default: %(default)s)"
    )
    plat.add_argument(
        "--replicas", type=_int_in(1, 16), default=3, help="storefront replicas behind HAProxy (up only; default: %(default)s)"
    )

    drill = sub.add_parser("drill", help="recovery drills: the 3-2-1 backup drill, or a corrupted repository")
    drill.add_argument("kind", choices=["backup", "corruption"])
    drill.add_argument("--state-dir", type=_out, default=Path(".peakload/drill"), help="the drill's own small site (default: %(default)s)")
    drill.add_argument("--results", type=_out, help="folder for the drill's evidence (default: results/<stamp>-drill-KIND)")
    drill.add_argument("--max-rpo", type=_duration_or_zero, default=10.0, help="RPO the backup drill accepts (default: 10s)")
    drill.add_argument(
        "--require-321",
        action="store_true",
        help="fail the backup drill when the 3-2-1 policy is not met (media by device, a real off-site copy)",
    )

    ch = sub.add_parser("chaos", help="chaos experiments on the running platform")
    ch_sub = ch.add_subparsers(dest="chaos_command", required=True, parser_class=_Parser)
    ch_run = ch_sub.add_parser("run", help="run an experiment while a profile's load runs")
    ch_run.add_argument("experiment", help="a bundled name (see `peakload chaos list`) or a path")
    ch_run.add_argument(
        "--profile", type=_path, default=Path("profiles/chaos.yaml"), help="the load during the experiment (default: %(default)s)"
    )
    ch_run.add_argument("--state-dir", type=_out, default=Path(".peakload/platform"))
    ch_run.add_argument("--results", type=_out, default=Path("results"))
    ch_val = ch_sub.add_parser("validate", help="Chaos Toolkit validation of one or every bundled experiment")
    ch_val.add_argument("experiment", nargs="?")
    ch_sub.add_parser("list", help="the bundled experiments")

    ad = sub.add_parser("adapter", help="platform dialect adapters")
    ad_sub = ad.add_subparsers(dest="adapter_command", required=True)
    ad_check = ad_sub.add_parser("check", help="call each journey step once against the live target: step | request | status | verdict")
    ad_check.add_argument("--profile", type=_path, required=True)
    ad_check.add_argument("--target", type=_url, help="base URL of the shop (default: the profile's, else the embedded storefront)")
    ad_check.add_argument("--allow-target", type=_host, action="append", default=[], metavar="HOST", help="allow this non-loopback host")
    cmp_ = sub.add_parser("compare", help="compare a run with a baseline run; exit 1 on regression")
    cmp_.add_argument("run", type=_path)
    cmp_.add_argument("baseline", type=_path)
    hist = sub.add_parser("history", help="every run under a results root in time order: a table, JSON, or an HTML trend")
    hist.add_argument("results_root", type=_path, metavar="RESULTS_ROOT", help="the folder holding the run folders (results/)")
    hist.add_argument("--profile", help="only the runs of this profile (its name)")
    hist.add_argument("--out", type=_path, help="also write a self-contained HTML trend to this file (.html)")
    hist.add_argument("--format", choices=["table", "json"], default="table", help="what to print (default: %(default)s)")

    prof = sub.add_parser("profile", help="profiles from production: fit one from access logs")
    prof_sub = prof.add_subparsers(dest="profile_command", required=True)
    fit = prof_sub.add_parser(
        "fit", help="fit arrivals, funnel ratios, think times and popularity from access logs; write a profile and a fit report"
    )
    fit.add_argument("logs", nargs="+", type=_path, metavar="LOG", help="access logs (plain or .gz), merged by time")
    fit.add_argument("--out", type=_path, required=True, help="the profile to write (.yaml); the report goes beside it (.fit.json)")
    fit.add_argument("--report", type=_path, help="where the fit report goes (default: OUT with .fit.json)")
    fit.add_argument("--format", choices=["combined", "haproxy", "jsonl"], default="combined", help="log format (default: combined)")
    fit.add_argument(
        "--field-map", type=_arg(_field_map, "field map"), metavar="F=NAME,...", help="jsonl: field names, e.g. time=ts,path=uri"
    )
    fit.add_argument(
        "--tz", type=_arg(_tz, "time zone"), default=None, help="zone of --window and of HAProxy's zone-less dates (default UTC)"
    )
    fit.add_argument("--dialect", default="storefront", help="whose routes the log holds: storefront, oscar or module:Class")
    fit.add_argument("--idle-gap", type=_duration, default=1800.0, help="a session ends after this long without a request (default 30m)")
    fit.add_argument(
        "--entry",
        type=_arg(_step, "step"),
        action="append",
        default=[],
        metavar="STEP",
        help="a new visit starts at this step even without a gap (e.g. home; repeatable)",
    )
    fit.add_argument("--window", type=_arg(_window, "window"), help="fit this time of day only, e.g. 23:50..00:30 (crosses midnight)")
    fit.add_argument("--growth", type=_float_in(0.0, 1000.0), default=1.0, help="multiply every rate (this year's growth, e.g. 1.3)")
    fit.add_argument(
        "--compress", type=_float_in(0.0, 10_000.0), default=1.0, help="replay the curve this many times faster (10: an hour in 6 min)"
    )
    fit.add_argument("--resolution", type=_arg(_resolution, "duration"), default=0.1, help="grid of the arrival curve (default 100ms)")
    fit.add_argument(
        "--catalogue", type=_int_in(1, 100_000_000), help="items in the shop's catalogue (Zipf is fitted over them; default: items seen)"
    )
    fit.add_argument("--max-stages", type=_int_in(1, 10_000), default=40, help="at most this many arrival stages (default 40)")
    fit.add_argument("--name", type=_arg(_profile_name, "name"), default="fitted", help="the profile's name")
    fit.add_argument("--quiet", action="store_true", help="no progress bar and no summary")
    return p


def _shard(text: str) -> Any:
    from peakload.core.shard import parse_shard

    return parse_shard(text)


def _start_at(text: str) -> float:
    from peakload.core.shard import check_start_at, parse_start_at

    return check_start_at(parse_start_at(text))


def _listen(text: str) -> str:
    from peakload.app.control import parse_listen

    parse_listen(text, field_name="")
    return text


def _bounded_duration(lo: float, hi: float, example: str) -> Callable[[str], float]:
    def convert(text: str) -> float:
        seconds = parse_duration(text)
        if not lo <= seconds <= hi:
            raise ValueError(f"expected a duration {example}, got {text[:40]!r}")
        return seconds

    return convert


_gate_interval = _bounded_duration(0.2, 10.0, "from 200ms to 10s")
_gate_until = _bounded_duration(1.0, 86_400.0, "from 1s to 24h")
_gate_window = _bounded_duration(2.0, 3600.0, "from 2s to 1h")


def _label_match(text: str) -> tuple[str, str]:
    import re

    label, sep, value = text.partition("=")
    if not sep or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]{0,99}", label) or len(value) > 200 or not value.isprintable():
        raise ValueError(f"expected LABEL=VALUE like job=peakload, got {text[:40]!r}")
    return label, value


def _field_map(text: str) -> dict[str, str]:
    from peakload.core.accesslog import parse_field_map

    return parse_field_map(text)


def _tz(text: str) -> Any:
    from peakload.core.accesslog import parse_tz

    return parse_tz(text)


def _step(text: str) -> str:
    from peakload.core.steps import check_step

    return check_step(text)


def _window(text: str) -> tuple[float, float]:
    start, sep, end = text.partition("..")

    def seconds(part: str) -> float:
        bits = part.strip().split(":")
        if sep and 2 <= len(bits) <= 3 and all(b.isdigit() and len(b) == 2 for b in bits):
            h, m, sec = int(bits[0]), int(bits[1]), int(bits[2]) if len(bits) == 3 else 0
            if h < 24 and m < 60 and sec < 60:
                return float(h * 3600 + m * 60 + sec)
        raise ValueError(f"expected a time-of-day window like 23:50..00:30, got {text[:40]!r}")

    a, b = seconds(start), seconds(end)
    if a == b:
        raise ValueError(f"expected a window with a length, got {text[:40]!r}")
    return a, b


def _resolution(text: str) -> float:
    seconds = parse_duration(text)
    if not 0.001 <= seconds <= 60:
        raise ValueError(f"expected a resolution from 1ms to 60s, got {text!r}")
    return seconds


def _profile_name(text: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,100}", text):
        raise ValueError(f"expected 1..100 of A-Z a-z 0-9 _ . -, got {text[:40]!r}")
    return text


def _cmd_profile(a: argparse.Namespace) -> int:
    import datetime as dt

    from peakload.app.fit import FitRequest, fit_command
    from scenarios.fit import FitOptions

    options = FitOptions(
        fmt=a.format,
        tz=a.tz or dt.UTC,
        field_map=a.field_map,
        idle_gap=a.idle_gap,
        entry=frozenset(a.entry),
        window=a.window,
        growth=a.growth,
        compress=a.compress,
        resolution=a.resolution,
        catalogue=a.catalogue,
        max_stages=a.max_stages,
        name=a.name,
    )
    return fit_command(FitRequest(logs=list(a.logs), out=a.out, options=options, dialect=a.dialect, report=a.report, quiet=a.quiet))


def _cmd_run(a: argparse.Namespace) -> int:
    from peakload.app.runner import RunOptions, run

    report = run(
        RunOptions(
            profile_path=a.profile,
            target=a.target,
            allow_targets=a.allow_target,
            duration=a.duration,
            users=a.users,
            scale=a.scale,
            results_root=a.results,
            seed=a.seed,
            workers=a.workers,
            expect_workers=a.expect_workers,
            master_bind=a.master_bind,
            metrics_port=a.metrics_port,
            baseline=a.baseline,
            quiet=a.quiet,
            with_prometheus=a.with_prometheus,
            accept_real_orders=a.accept_real_orders,
            locustfile=a.locustfile,
            shard=a.shard,
            start_at=a.start_at,
            control=a.control,
            control_token_file=a.control_token_file,
            allow_control=a.allow_control,
        )
    )
    _print_verdict(report.summary, report.data.path)
    return report.exit_code


def _cmd_fleet_gate(a: argparse.Namespace) -> int:
    from peakload.app.fleet_gate import FleetGateOptions, fleet_gate

    opts = FleetGateOptions(
        profile_path=a.profile,
        prometheus=a.prometheus,
        controls=list(a.control),
        token_file=a.control_token_file,
        interval=a.interval,
        until=a.until,
        rate_window=a.rate_window,
        allow_hosts=a.allow_host,
        match=dict(a.match),
    )
    return fleet_gate(opts, out=lambda line: print(line, flush=True))


def _cmd_capacity(a: argparse.Namespace) -> int:
    from peakload.app.capacity import CapacityOptions, capacity

    result = capacity(
        CapacityOptions(
            profile_path=a.profile,
            target=a.target,
            allow_targets=a.allow_target,
            results_root=a.results,
            seed=a.seed,
            workers=a.workers,
            metrics_port=a.metrics_port,
            quiet=a.quiet,
            locustfile=a.locustfile,
        )
    )
    c = result.section
    print(f"capacity {result.report.summary.run_id}: {c['verdict']}")
    print(f"  {'step':>4} {'rate/s':>9} {'requests':>9} {'rps':>8} {'p95 ms':>8} {'p99 ms':>8} {'dropped':>8}  result")
    for st in c["steps"]:
        p95 = "n/a" if st["p95_ms"] is None else f"{st['p95_ms']:.0f}"
        p99 = "n/a" if st["p99_ms"] is None else f"{st['p99_ms']:.0f}"
        word = "ok" if st["passed"] else "KNEE: " + st["messages"][0]
        print(f"  {st['step']:>4} {st['rate']:>9g} {st['requests']:>9} {st['rps']:>8.1f} {p95:>8} {p99:>8} {st['dropped']:>8}  {word}")
    if c["first_failing_threshold"]:
        print(f"  first failing threshold: {c['first_failing_threshold']} (latency basis: {c['latency_basis']})")
    path = result.report.data.path
    print(f"  results: {path}/  (report: {path / 'report.html'})")
    return result.exit_code


def _ms(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.1f} ms"


def _print_verdict(s: Summary, path: Path) -> None:
    tot = s.total
    print(f"run {s.run_id}: {s.status.upper()} (exit {s.exit_code})" + (f" — {s.reason}" if s.reason else ""))
    print(
        f"  {tot.requests} requests, {tot.error_ratio * 100:.2f}% errors, {tot.rps:.1f} rps, "
        f"p50 {_ms(tot.p50_ms)}, p95 {_ms(tot.p95_ms)}, p99 {_ms(tot.p99_ms)}"
    )
    if s.dialect is not None and s.dialect != "storefront":
        print(f"  platform: {s.dialect}; writes {'isolated' if s.isolated else 'NOT isolated (real orders)'}")
    if s.not_offered:
        print(f"  not offered by this platform (n/a): {', '.join(s.not_offered)}")
    rec = s.reconciliation or {}
    if rec and "error" not in rec:

        def n(key: str) -> str:
            v = rec.get(key)
            return "n/a" if not isinstance(v, int) or isinstance(v, bool) else str(v)

        unknown = "n/a" in (n("duplicate_orders"), n("duplicate_charges")) or rec.get("gateway_checked") is False
        dups = "n/a" if unknown else str(rec["duplicate_orders"] + rec["duplicate_charges"])
        print(f"  reconciliation: {n('orders_created')} orders, {n('orders_paid')} paid, oversold {n('oversold_units')}, duplicates {dups}")
    for t in s.thresholds:
        if t.passed is False:
            print(f"  FAIL {t.id}: {t.message}")
    print(f"  decided by: {s.decided_by}")
    print(f"  results: {path}/  (report: {path / 'report.html'})")


def _results_dir(path: Path, *, field: str = "results folder") -> Path:
    """A folder written by `peakload run` (it has run.json or snapshots.jsonl); refused before anything is written."""
    try:
        is_dir = path.is_dir()
    except OSError as exc:
        raise UsageError(f"{field}: {path}: cannot use: {exc.strerror or exc}") from None
    if not is_dir:
        what = "does not exist" if not path.exists() else "is a file"
        raise UsageError(f"{field}: {path}: not a results folder ({what}); expected a folder written by peakload run")
    if not ((path / "run.json").is_file() or (path / "snapshots.jsonl").is_file()):
        raise UsageError(
            f"{field}: {path}: not a results folder (no run.json or snapshots.jsonl); expected a folder written by peakload run"
        )
    return path


def _cmd_report(a: argparse.Namespace, *, gate: bool) -> int:
    from peakload.app.runner import _load_baseline, thresholds_from_results
    from reports.build import write_reports

    d = _results_dir(a.results_dir)
    baseline = _load_baseline(a.baseline) if getattr(a, "baseline", None) else None
    thresholds, profile = thresholds_from_results(d)
    report = write_reports(
        d,
        thresholds,
        baseline=baseline,
        baseline_id=str(getattr(a, "baseline", "") or ""),
        tolerances=profile.compare if profile else CompareSpec(),
    )
    for problem in report.summary.problems:
        print(f"  note: {problem}")
    _print_verdict(report.summary, d)
    return report.exit_code if gate else 0


def _cmd_merge(a: argparse.Namespace) -> int:
    from peakload.app.runner import thresholds_from_results
    from reports.build import write_reports
    from reports.merge import merge_results

    result = merge_results(list(a.results_dirs), out=a.out)
    thresholds, profile = thresholds_from_results(result.out)
    report = write_reports(result.out, thresholds, tolerances=profile.compare if profile else CompareSpec())
    print(
        f"merged {len(result.shards)} shard(s) into {result.out}: {result.intervals} intervals"
        + ("" if result.complete else ", INCOMPLETE")
    )
    for problem in result.problems:
        print(f"  problem: {problem}")
    _print_verdict(report.summary, result.out)
    return report.exit_code


def _cmd_compare(a: argparse.Namespace) -> int:
    from peakload.app.runner import _load_baseline, thresholds_from_results
    from reports.compare import compare, format_row, samples_of, verdict_of
    from reports.results import load_results

    current = _load_baseline(_results_dir(a.run, field="run") if a.run.is_dir() else a.run, field="run")
    base = _load_baseline(_results_dir(a.baseline, field="baseline") if a.baseline.is_dir() else a.baseline, field="baseline")
    _, profile = thresholds_from_results(a.run) if a.run.is_dir() else ([], None)
    tolerances = profile.compare if profile else CompareSpec()
    # the percentile tests draw from the folders' histograms; a bare summary.json has none
    samples = [samples_of(load_results(p)) if p.is_dir() else None for p in (a.run, a.baseline)]
    rows = compare(current, base, tolerances, current_samples=samples[0], baseline_samples=samples[1])
    for r in rows:
        print(format_row(r))
    code, rule, reason = verdict_of(current, base, rows)
    print(f"{sum(r.regression for r in rows)} regression(s) against {a.baseline}: {reason} (exit {code}; decided by: {rule})")
    return code


def _cmd_history(a: argparse.Namespace) -> int:
    import json

    from peakload.core.inputs import write_atomic
    from reports.history import render_history_html, render_table, scan_history

    root = a.results_root
    if not root.is_dir():
        raise UsageError(f"RESULTS_ROOT: {root}: {'is a file' if root.exists() else 'does not exist'}; expected the folder of run folders")
    if a.out is not None and (a.out.suffix.lower() not in (".html", ".htm") or a.out.is_dir() or not a.out.parent.is_dir()):
        raise UsageError(f"--out: {a.out}: expected an .html file in an existing folder")
    try:
        h = scan_history(root, profile=a.profile)
    except OSError as exc:
        raise UsageError(f"RESULTS_ROOT: {root}: cannot read: {exc.strerror or exc}") from None
    print(json.dumps(h.to_json(), indent=2) if a.format == "json" else render_table(h))
    if a.out is not None:
        write_atomic(a.out, render_history_html(h))
        if a.format == "table":
            print(f"wrote {a.out}")
    if not h.runs:
        what = f"no run of profile {a.profile!r}" if a.profile else "no readable run"
        print(f"peakload history: {what} under {root}", file=sys.stderr)
        return 3
    return 0


def _cmd_slo(a: argparse.Namespace) -> int:
    from dashboards import write_rules
    from peakload.core import load_slo_spec

    path = write_rules(load_slo_spec(a.spec), a.out)
    print(f"wrote {path}")
    return 0


def _cmd_dashboards(a: argparse.Namespace) -> int:
    import os

    from dashboards import GENERATED_DIR, push_dashboards, write_dashboards
    from peakload.core import load_slo_spec

    if a.dash_command == "build":
        for path in write_dashboards(load_slo_spec(a.spec), a.out):
            print(f"wrote {path}")
        return 0
    folder = a.dir or GENERATED_DIR
    if not folder.is_dir() or not any(folder.glob("*.json")):
        raise UsageError(f"--dir: {folder}: expected a folder of dashboard JSON files (peakload dashboards build --out {folder})")
    token = os.environ.get("GRAFANA_TOKEN")
    if not token:
        raise UsageError("dashboards push: set GRAFANA_TOKEN to a Grafana service-account token (it is never printed)")
    push_dashboards(a.url, token, folder)
    print(f"pushed the dashboards in {folder} to {a.url} (folder 'peakload')")
    return 0


def _cmd_platform(a: argparse.Namespace) -> int:
    from chaos.cli_entry import platform_down, platform_status, platform_up

    if a.action == "up":
        if a.replicas < 1:
            raise UsageError(f"--replicas: expected 1 or more, got {a.replicas}")
        result = platform_up(a.state_dir, replicas=a.replicas)
    else:
        result = platform_down(a.state_dir) if a.action == "down" else platform_status(a.state_dir)
    print(result.summary())
    return result.exit_code


def _cmd_drill(a: argparse.Namespace) -> int:
    from chaos.cli_entry import drill_backup, drill_corruption

    if a.kind == "backup":
        report = drill_backup(a.state_dir, results_dir=a.results, max_rpo_seconds=a.max_rpo, require_policy=a.require_321)
    else:
        report = drill_corruption(a.state_dir, results_dir=a.results)
    print(report.summary())
    return report.exit_code


def _cmd_chaos(a: argparse.Namespace) -> int:
    from chaos.cli_entry import chaos_list, chaos_validate

    if a.chaos_command == "list":
        print("\n".join(chaos_list()))
        return 0
    if a.chaos_command == "validate":
        result = chaos_validate(a.experiment)
        print(result.summary())
        return result.exit_code
    from chaos.cli_entry import chaos_check
    from peakload.app.drills import chaos_under_load

    # a bad experiment file or a stopped platform is refused before the load starts and writes a results folder
    chaos_check(a.experiment, state_dir=a.state_dir)
    if not a.profile.exists():
        raise UsageError(f"--profile: {a.profile}: file not found")
    exp, report = chaos_under_load(a.experiment, profile=a.profile, state_dir=a.state_dir, results_root=a.results)
    print(exp.summary())
    _print_verdict(report.summary, report.data.path)
    return exp.exit_code or report.exit_code


def _one_line(text: str) -> str:
    """User text quoted inside a message (a name with a newline, a CR) must not break the one-line contract."""
    return "".join(ch if ch.isprintable() or ch == " " else repr(ch)[1:-1] for ch in text)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "capacity":
            return _cmd_capacity(args)
        if args.command == "fleet-gate":
            return _cmd_fleet_gate(args)
        if args.command == "report":
            return _cmd_report(args, gate=False)
        if args.command == "gate":
            return _cmd_report(args, gate=True)
        if args.command == "merge":
            return _cmd_merge(args)
        if args.command == "compare":
            return _cmd_compare(args)
        if args.command == "history":
            return _cmd_history(args)
        if args.command == "slo":
            return _cmd_slo(args)
        if args.command == "platform":
            return _cmd_platform(args)
        if args.command == "drill":
            return _cmd_drill(args)
        if args.command == "chaos":
            return _cmd_chaos(args)
        if args.command == "dashboards":
            return _cmd_dashboards(args)
        if args.command == "profile":
            return _cmd_profile(args)
        if args.command == "adapter":
            from peakload.app.adapter import adapter_check

            return adapter_check(args.profile, target=args.target, allow=args.allow_target)
    except PeakloadError as exc:
        print(f"peakload {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"peakload {args.command}: interrupted", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
