"""`peakload run`: validate → target → pre-flight → Locust (headless) → reconciliation → reports.

Usage::

    outcome = run(RunOptions(profile_path=Path("profiles/smoke.yaml")))
    sys.exit(outcome.exit_code)

Locust runs in a child process (it monkey-patches its process with gevent);
this process follows the snapshot stream for live progress and the live gate.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from peakload.app.control import ControlServer, ControlSpec, check_control
from peakload.app.progress import progress_line, write_progress
from peakload.app.serverside import ServerPlan, ServerSampler, check_server_thresholds, server_plan, with_target
from peakload.app.target import EmbeddedStorefront, check_allowed, preflight
from peakload.core import (
    ConfigError,
    Profile,
    SLOSpec,
    Threshold,
    UsageError,
    load_profile,
    load_slo_spec,
)
from peakload.core.inputs import MAX_RESULTS_BYTES, check_out_dir, make_dirs, read_json, write_atomic
from peakload.core.net import free_port, is_loopback
from peakload.core.records import (
    OUTCOME_JSON,
    PROFILE_COPY,
    RECONCILIATION_JSON,
    RUN_JSON,
    SLO_COPY,
    SNAPSHOTS,
    Outcome,
    RunMeta,
    SnapshotTail,
)
from peakload.core.runenv import RunEnv, new_run_id
from peakload.core.serverside import SERVER_JSONL
from peakload.core.shard import Shard, check_start_at
from peakload.core.steps import WRITE_STEPS
from reports.build import Report, write_reports
from reports.gate import LiveGate
from reports.results import _interval
from reports.summary import SCHEMA_ID
from scenarios.dialects import load_dialect, not_offered
from scenarios.feeders import check_feeders, feeder_rows
from scenarios.replay import ReplaySchedule
from scenarios.schedule import ArrivalsPlan, RateCurve, arrivals_plan
from scenarios.shop import BOOKS_FIELDS, BaseShop

__all__ = ["RunOptions", "RunContext", "plan", "run", "thresholds_for", "thresholds_from_results", "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO_ROOT / "locustfile.py"
PLUGIN = REPO_ROOT / "scenarios" / "plugin.py"  # loaded before a user's own locustfile (instrumentation, shape, arrivals)
LOCUSTFILE_COPY = "locustfile"  # the results folder keeps the user's locustfile under this folder
_PR_SET_PDEATHSIG = 1


@dataclass
class RunOptions:
    profile_path: Path
    target: str | None = None
    allow_targets: list[str] = field(default_factory=list)
    duration: float | None = None
    users: int | None = None
    scale: float | None = None
    results_root: Path = Path("results")
    seed: int | None = None
    workers: int = 0
    expect_workers: int = 0  # --expect-workers N: a master whose N workers run elsewhere (with --master-bind)
    master_bind: str | None = None  # --master-bind HOST:PORT: where those workers connect
    metrics_port: int = 0
    snapshot_interval: float = 2.0
    baseline: Path | None = None
    quiet: bool = False
    run_id: str | None = None
    with_prometheus: bool = False
    # called with every snapshot interval and the run folder; a returned string aborts the run (peakload capacity)
    on_interval: Callable[..., str | None] | None = None
    accept_real_orders: bool = False  # writes against a non-isolating, non-loopback shop
    locustfile: Path | None = None  # the user's own Locust code (--locustfile); None = the profile's, else the built-in journeys
    shard: Shard | None = None  # --shard I/N: this master's share of one schedule (None = the profile's arrivals.shard, if any)
    start_at: float | None = None  # --start-at: the schedule's start (epoch s), shared by every shard
    control: str | None = None  # --control HOST:PORT: the endpoint the fleet gate stops this run through
    control_token_file: Path | None = None  # --control-token-file: the fleet's shared token
    allow_control: list[str] = field(default_factory=list)  # --allow-control: non-loopback addresses it may listen on


def _die_with_parent(sig: int) -> None:
    """Child processes die with `peakload run` (no orphaned load loop after a crash)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except OSError:
        pass


def thresholds_for(profile: Profile) -> tuple[list[Threshold], SLOSpec | None]:
    """SLO-derived thresholds first, then the profile's own (which may override by id)."""
    slo = None
    out: dict[str, Threshold] = {}
    path = profile.slo_path()
    if path is not None:
        try:
            slo = load_slo_spec(path)
        except ConfigError as exc:  # name the profile that points at the spec, and the spec
            raise ConfigError(f"{profile.source or 'profile'}: slo: {exc}") from None
        for t in slo.gate_thresholds():
            out[t.id] = t
    for t in profile.profile_thresholds():
        # A profile threshold on the same scope+metric (and window: during:/after:) replaces the SLO's one (per-profile override).
        for key in [k for k, v in out.items() if v.scope == t.scope and v.metric == t.metric and v.window == t.window]:
            del out[key]
        out[t.id] = t
    return list(out.values()), slo


def thresholds_from_results(run_dir: Path) -> tuple[list[Threshold], Profile | None]:
    """The thresholds a saved run was judged by (its copies of the profile and SLO spec)."""
    if not (run_dir / "profile.yaml").exists():
        return [], None
    profile = load_profile(run_dir / "profile.yaml")
    if profile.slo is not None:
        slo_copy = run_dir / "slo.yaml"
        profile = profile.model_copy(update={"slo": "slo.yaml" if slo_copy.exists() else None})
    return thresholds_for(profile)[0], profile


def _git_revision() -> str | None:
    try:
        res = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return res.stdout.strip() or None if res.returncode == 0 else None


def _scale(profile: Profile, opts: RunOptions) -> float:
    if opts.users is not None and opts.scale is not None:
        raise UsageError("--users and --scale: give one of them, not both")
    if opts.users is not None:
        if profile.shape is None:
            raise UsageError("--users: this profile is an open model (arrivals); scale its rates with --scale")
        if opts.users < 1:
            raise UsageError(f"--users: expected a positive number, got {opts.users}")
        peak = max(s.users for s in profile.shape.stages) or 1
        return opts.users / peak
    if opts.scale is not None and opts.scale <= 0:
        raise UsageError(f"--scale: expected a positive factor, got {opts.scale:g}")
    return opts.scale or 1.0


def _locust_command(
    url: str, run_dir: Path, workers: int, own: OwnLocustfile | None = None, remote: RemoteWorkers | None = None
) -> list[str]:
    files = str(LOCUSTFILE) if own is None else f"{PLUGIN},{own.path}"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        files,
        "--headless",
        "--host",
        url,
        "--csv",
        str(run_dir / "locust"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--logfile",
        str(run_dir / "locust.log"),
        "--exit-code-on-error",
        "0",
        # let users finish the request in flight when the shape ends, so client and shop counts agree
        "--stop-timeout",
        "10",
    ]
    # user classes picked by name are positional, as in `locust -f FILE ClassA ClassB`
    locust_args = remote.locust_args() if remote is not None else distributed_args(workers)
    return cmd + locust_args + (list(own.classes) if own is not None else [])


def distributed_args(workers: int) -> list[str]:
    """Locust flags for a master with ``workers`` local worker processes ([] for one local runner).

    The master binds loopback on a free port: Locust's default binds *:5557, so another run on the machine collides.
    """
    if workers <= 0:
        return []
    port = free_port()
    return [
        "--processes",
        str(workers),
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(port),
    ]


REMOTE_WORKERS_WAIT_S = 120  # a master with --expect-workers gives up when they are not all in by then
_RUN_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass(frozen=True, kw_only=True)
class RemoteWorkers:
    """``--expect-workers N --master-bind HOST:PORT``: the master waits for N ``locust --worker`` processes started
    elsewhere (other hosts, network namespaces, pods) that connect to HOST:PORT (docs/kubernetes.md, "Real hosts")."""

    count: int
    host: str
    port: int
    run_id: str | None  # PEAKLOAD_RUN_ID of this process: the workers must send under the same run id

    def locust_args(self) -> list[str]:
        return [
            "--master",
            "--expect-workers",
            str(self.count),
            "--expect-workers-max-wait",
            str(REMOTE_WORKERS_WAIT_S),
            "--master-bind-host",
            self.host,
            "--master-bind-port",
            str(self.port),
        ]


def _check_remote_workers(opts: RunOptions) -> RemoteWorkers | None:
    """--expect-workers and --master-bind, together and without --workers; HOST an IP address, PORT 1..65535."""
    if not opts.expect_workers and opts.master_bind is None:
        return None
    if opts.expect_workers < 1 or opts.master_bind is None:
        missing = "--master-bind HOST:PORT" if opts.master_bind is None else "--expect-workers N (N >= 1)"
        raise UsageError(f"--expect-workers/--master-bind: give both (missing {missing}): the master waits for N workers at HOST:PORT")
    if opts.workers:
        raise UsageError("--workers: local worker processes and --expect-workers (workers elsewhere) exclude each other")
    import ipaddress

    host, sep, port_text = opts.master_bind.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        ipaddress.ip_address(host)
        port = int(port_text)
    except ValueError:
        raise UsageError(
            f"--master-bind: expected HOST:PORT with HOST an IP address of this machine (e.g. 10.0.0.5:5557), got {opts.master_bind[:80]!r}"
        ) from None
    if not sep or not 1 <= port <= 65535:
        raise UsageError(f"--master-bind: expected a port 1..65535 after the address, got {opts.master_bind[:80]!r}")
    run_id = os.environ.get("PEAKLOAD_RUN_ID", "").strip() or None
    if run_id is not None and (len(run_id) > 100 or not set(run_id) <= _RUN_ID_CHARS or run_id[0] in ".-"):
        raise UsageError(f"PEAKLOAD_RUN_ID: expected letters, digits, '.', '_' or '-' (at most 100, a folder name), got {run_id[:80]!r}")
    return RemoteWorkers(count=opts.expect_workers, host=host, port=port, run_id=run_id)


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """Everything one run decided before any side effect: built once by :func:`plan`, never mutated."""

    opts: RunOptions
    profile: Profile
    thresholds: list[Threshold]
    slo: SLOSpec | None
    target: str | None  # None = start the embedded storefront
    run_id: str
    seed: int
    scale: float
    total: float  # planned seconds of load
    metrics_port: int
    baseline: dict | None
    shop: type[BaseShop]  # the dialect adapter (target.dialect)
    not_offered: tuple[str, ...]  # journey steps and books fields the platform does not offer
    own: OwnLocustfile | None = None  # the user's own locustfile, checked
    replay: ReplaySchedule | None = None  # journey: replay, its log read (offsets only)
    shard: Shard | None = None  # --shard, else the profile's arrivals.shard
    remote_workers: RemoteWorkers | None = None  # --expect-workers N --master-bind HOST:PORT
    arrivals_plan: ArrivalsPlan | None = None  # open model: the global schedule's arrivals and this shard's share
    control: ControlSpec | None = None  # --control: where the fleet gate can stop this run, and its token
    server: ServerPlan | None = None  # the target's own figures to sample (server.jsonl)


@dataclass(frozen=True, kw_only=True)
class OwnLocustfile:
    """A user's locustfile as checked before the load: its absolute path and the classes picked by name."""

    path: Path
    classes: tuple[str, ...]  # () = every user class of the file
    found: tuple[str, ...]  # every user class Locust finds in it


def plan(opts: RunOptions) -> RunContext:
    """Validate every input (profile, flags, target, baseline, output folder); raises before anything is written."""
    profile = load_profile(opts.profile_path)
    thresholds, slo = thresholds_for(profile)
    scale = _scale(profile, opts)
    if opts.duration is not None and opts.duration <= 0:
        raise UsageError(f"--duration: expected a positive duration, got {opts.duration:g}")
    remote = _check_remote_workers(opts)
    if opts.workers < 0:
        raise UsageError(f"--workers: expected 0 or more, got {opts.workers}")
    target = opts.target or profile.target.url
    if target:
        check_allowed(target, allow=[*profile.target.allow, *opts.allow_targets])
    baseline = _load_baseline(opts.baseline) if opts.baseline is not None else None
    base_dir = Path(opts.profile_path).resolve().parent
    shop = load_dialect(profile.target, base_dir=base_dir)
    check_feeders(feeder_rows(profile.target.feeders, base_dir), peak_users=_peak_users(profile, scale, opts))
    if not _replays_reads_only(profile):  # a GET-only replay writes nothing: nothing to isolate
        _check_isolation(shop, target, accept=opts.accept_real_orders or profile.target.accept_real_orders)
    check_out_dir(opts.results_root, field="--results")
    replay = _check_replay(opts, profile, scale)
    own = _check_locustfile(opts, profile)
    shard = _check_shard(opts, profile)
    control = check_control(opts.control, opts.control_token_file, allow=opts.allow_control)
    metrics_port = opts.metrics_port
    if opts.with_prometheus:
        if shutil.which("prometheus") is None:
            raise UsageError(
                "--with-prometheus: the prometheus binary is not installed (Debian: apt-get install --no-install-recommends prometheus)"
            )
        metrics_port = metrics_port or free_port()  # Prometheus needs the generator's /metrics
    server = server_plan(profile, target, interval=opts.snapshot_interval, allow=[*profile.target.allow, *opts.allow_targets])
    check_server_thresholds(thresholds, server)
    return RunContext(
        opts=opts,
        profile=profile,
        thresholds=thresholds,
        slo=slo,
        target=target,
        run_id=opts.run_id or (remote.run_id if remote is not None else None) or new_run_id(),
        seed=opts.seed if opts.seed is not None else profile.seed,
        scale=scale,
        total=replay.duration if replay is not None else min(profile.total_seconds, opts.duration or float("inf")),
        metrics_port=metrics_port,
        baseline=baseline,
        shop=shop,
        not_offered=(*not_offered(shop), *sorted(BOOKS_FIELDS - shop.BOOKS)),
        own=own,
        replay=replay,
        shard=shard,
        remote_workers=remote,
        arrivals_plan=_arrivals_plan(profile, scale, opts.duration, replay, shard),
        control=control,
        server=server,
    )


def _check_shard(opts: RunOptions, profile: Profile) -> Shard | None:
    """--shard (else the profile's ``arrivals.shard``) and --start-at: open model only, and a shard needs a start instant."""
    shard = opts.shard or (profile.arrivals.shard_of if profile.arrivals is not None else None)
    if profile.arrivals is None and (opts.shard is not None or opts.start_at is not None):
        flag = "--shard" if opts.shard is not None else "--start-at"
        raise UsageError(
            f"{flag}: {opts.profile_path} is a closed-model profile (shape); shards split an open-model schedule (arrivals) only"
        )
    if shard is not None and opts.start_at is None:
        source = f"--shard {shard}" if opts.shard is not None else f"arrivals.shard: {shard} ({opts.profile_path})"
        raise UsageError(
            f"{source}: give --start-at too (one ISO-8601 UTC instant or epoch seconds, the same for every shard), "
            "so the shards start the schedule together"
        )
    if opts.start_at is not None:
        try:
            check_start_at(opts.start_at)
        except ValueError as exc:
            raise UsageError(f"--start-at: {exc}") from None
    return shard


def _arrivals_plan(
    profile: Profile, scale: float, duration: float | None, replay: ReplaySchedule | None, shard: Shard | None
) -> ArrivalsPlan | None:
    if profile.arrivals is None:
        return None
    index, of = (shard.index, shard.of) if shard is not None else (0, 1)
    if replay is not None:
        return arrivals_plan(replay, kind="replay", slot=index, of=of)  # type: ignore[arg-type]
    curve = RateCurve.from_spec(profile.arrivals, scale=scale, duration=duration)
    return arrivals_plan(curve, kind=profile.arrivals.kind, slot=index, of=of)


def _replays_reads_only(profile: Profile) -> bool:
    """``journey: replay`` of GET/HEAD/OPTIONS only (it changes nothing on the shop)."""
    arrivals = profile.arrivals
    return arrivals is not None and arrivals.replay is not None and arrivals.replay.reads_only


def _check_replay(opts: RunOptions, profile: Profile, scale: float) -> ReplaySchedule | None:
    """``journey: replay``: its log read once (ConfigError naming ``arrivals.replay.*``); None for other journeys."""
    if profile.arrivals is None or profile.arrivals.replay is None:
        return None
    if opts.locustfile is not None or profile.locustfile is not None:
        field = "--locustfile" if opts.locustfile is not None else "locustfile"
        raise UsageError(f"{field}: arrivals.journey: replay sends the log's requests itself; drop the locustfile or the replay")
    try:
        return ReplaySchedule.from_profile(profile, scale=scale, duration=opts.duration, keep_records=False)
    except ConfigError as exc:  # name the profile, as its schema errors do
        raise ConfigError(f"{profile.source or opts.profile_path}: {exc}") from None


def _check_locustfile(opts: RunOptions, profile: Profile) -> OwnLocustfile | None:
    """The user's locustfile (--locustfile, else the profile's ``locustfile``), loaded once in a child process.

    Refuses in one line: a missing or non-.py file, one that fails to import, no user class, a class
    name the profile picks that the file lacks, a traffic shape of its own, and (open model) a class
    without a ``@journey`` method.
    """
    if opts.locustfile is not None:
        field, path = "--locustfile", Path(opts.locustfile)
    elif profile.locustfile is not None:
        field, path = "locustfile.path", profile.locustfile_path()
        assert path is not None
    else:
        return None
    if path.suffix != ".py":
        raise UsageError(f"{field}: {path}: expected a Python file ending in .py (a Locust locustfile)")
    if not path.is_file():
        raise UsageError(f"{field}: {path}: {'is a folder' if path.is_dir() else 'no such file'} (expected a locustfile)")
    path = path.resolve()
    env = {**os.environ, **RunEnv(profile_path=str(opts.profile_path), run_id="check", seed=profile.seed).to_environ()}
    try:
        res = subprocess.run(
            [sys.executable, "-m", "scenarios.custom", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=REPO_ROOT,
            env=env,
        )
    except subprocess.TimeoutExpired:
        raise UsageError(f"{field}: {path}: importing it did not finish within 120 s") from None
    lines = (res.stderr or "").strip().splitlines()
    if res.returncode != 0:
        raise UsageError(f"{field}: {path}: cannot load it: {lines[-1][:300] if lines else f'exit {res.returncode}'}")
    try:
        info = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise UsageError(f"{field}: {path}: loading it printed no class list ({res.stdout.strip()[-200:]!r})") from None
    classes = {c["name"]: c for c in info["classes"]}
    if not classes:
        raise UsageError(f"{field}: {path}: no Locust user class (a non-abstract subclass of User, HttpUser or FastHttpUser)")
    shapes = [s for s in info["shapes"] if s != "ProfileShape"]
    if shapes:
        raise UsageError(
            f"{field}: {path}: defines its own LoadTestShape {shapes[0]}; under peakload the profile's shape or arrivals "
            "drive the users (remove the shape, or run the file with plain locust)"
        )
    picked = tuple(profile.locustfile.classes) if profile.locustfile is not None else ()
    missing = [n for n in picked if n not in classes]
    if missing:
        raise UsageError(f"locustfile.classes: {path.name} has no user class {missing[0]!r} (it has: {', '.join(sorted(classes))})")
    chosen = [classes[n] for n in (picked or sorted(classes))]
    if profile.arrivals is not None:
        for c in chosen:
            if c["problem"]:
                raise UsageError(f"{field}: {path.name}: {c['problem']}")
            if c["journey"] is None:
                raise UsageError(
                    f"{field}: {path.name}: class {c['name']} has no journey for the open model (arrivals): mark the method "
                    "that is one whole visit with @journey (from scenarios.custom import journey), or pick other classes "
                    "with locustfile.classes"
                )
    return OwnLocustfile(path=path, classes=picked, found=tuple(sorted(classes)))


def _peak_users(profile: Profile, scale: float, opts: RunOptions) -> int:
    """The most simulated users alive at once (each needs its own feeder row)."""
    if profile.shape is not None:
        peak = opts.users if opts.users is not None else max(st.users for st in profile.shape.stages) * scale
        return int(peak)
    arrivals = profile.arrivals
    return int(arrivals.pool or arrivals.max_pool) if arrivals is not None else 0


def _check_isolation(shop: type[BaseShop], target: str | None, *, accept: bool, why: str | None = None) -> None:
    """Refuse writes against a real (non-loopback) shop that does not keep test traffic apart, unless accepted.

    Before the load: on the adapter's word (``ISOLATES``); after the pre-flight probe: on its result (``why``).
    """
    if target is None or accept or (why is None and shop.ISOLATES):
        return
    host = urlsplit(target).hostname or ""
    writes = sorted(WRITE_STEPS & shop.OFFERS)
    if is_loopback(host) or not writes:
        return
    reason = why or f"{shop.__name__}.ISOLATES is false"
    raise UsageError(
        f"target.dialect: {host} does not isolate test traffic ({reason}) and the journey writes "
        f"({', '.join(writes)}): refusing real orders; set target.accept_real_orders: true or pass --accept-real-orders"
    )


def run(opts: RunOptions) -> Report:
    """Run one load test and write its results folder. Raises PeakloadError before anything is written on bad input."""
    ctx = plan(opts)
    profile = ctx.profile
    run_dir = opts.results_root / ctx.run_id
    created: list[Path] = []  # the run folder, once this run made it (the storefront log is copied there)
    with ExitStack() as stack:  # unwinds in reverse: Prometheus, then the storefront, then the work folder
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="peakload-")))
        control = None
        if ctx.control is not None:  # bound first: an address in use is refused before anything starts
            control = ControlServer(ctx.control, run_id=ctx.run_id, shard=str(ctx.shard) if ctx.shard is not None else None)
            control.start()
            stack.callback(control.stop)
        target = ctx.target
        embedded = None
        if not target:
            embedded = EmbeddedStorefront(workdir, options=profile.embedded, seed=ctx.seed, log_path=workdir / "storefront.log")
            stack.callback(_stop_embedded, embedded, created)
            target = embedded.start()
        preflight(target, ctx.shop.health_path(profile.target))
        if profile.arrivals is not None and profile.arrivals.journey == "single_request":
            # one GET per arrival: nothing is written, so there is nothing to isolate and no probe to send
            isolated, isolation, probe_requests = None, "not probed: the journey writes nothing", {}
        elif _replays_reads_only(profile):
            isolated, isolation, probe_requests = None, "not probed: the replay sends only GET/HEAD/OPTIONS", {}
        else:
            isolated, isolation, probe_requests = ctx.shop.confirm_isolation(target=profile.target, base_url=target, run_id=ctx.run_id)
        if isolated is False:
            _check_isolation(ctx.shop, target, accept=opts.accept_real_orders or profile.target.accept_real_orders, why=isolation)
        books_before = ctx.shop.books_before(target=profile.target, base_url=target)
        make_dirs(run_dir, field="--results", exist_ok=False)
        created.append(run_dir)
        shutil.copyfile(opts.profile_path, run_dir / PROFILE_COPY)
        if profile.slo_path() is not None:
            shutil.copyfile(profile.slo_path(), run_dir / SLO_COPY)
        if ctx.own is not None:  # the code that ran, beside the profile it ran under
            (run_dir / LOCUSTFILE_COPY).mkdir()
            shutil.copyfile(ctx.own.path, run_dir / LOCUSTFILE_COPY / ctx.own.path.name)
        meta = RunMeta(
            run_id=ctx.run_id,
            profile=profile.name,
            profile_path=str(opts.profile_path),
            target=target,
            embedded=embedded is not None,
            git_revision=_git_revision(),
            seed=ctx.seed,
            scale=ctx.scale,
            workers=opts.workers or opts.expect_workers,
            planned_duration_s=ctx.total,
            started_ts=time.time(),
            thresholds=tuple(t.id for t in ctx.thresholds),
            not_offered=ctx.not_offered,
            dialect=profile.target.dialect,
            isolated=isolated,
            isolation=isolation,
            preflight_requests=probe_requests,
            locustfile=str(ctx.own.path) if ctx.own is not None else None,
            user_classes=ctx.own.classes if ctx.own is not None else (),
            launched_by="peakload run",
            shard=ctx.shard.to_json() if ctx.shard is not None else None,
            start_at=opts.start_at,
            arrivals_plan=ctx.arrivals_plan.to_json() if ctx.arrivals_plan is not None else None,
        )
        write_atomic(run_dir / RUN_JSON, json.dumps(meta.to_json(), indent=2) + "\n")
        if opts.with_prometheus:
            prom = _start_prometheus(ctx, target, run_dir)
            stack.callback(_stop_prometheus, prom, run_dir, quiet=opts.quiet)
        if ctx.server is not None:  # the shop's own figures, on the snapshot boundaries
            stack.enter_context(ServerSampler(with_target(ctx.server, target), run_dir / SERVER_JSONL))
        outcome = replace(_drive(ctx, target, run_dir, control), reconciliation_url=target)
        rec = ctx.shop.reconcile(
            target=profile.target,
            base_url=target,
            run_id=ctx.run_id,
            context={"before": books_before, "started_ts": meta.started_ts, "ended_ts": time.time()},
        )
        write_atomic(run_dir / RECONCILIATION_JSON, json.dumps(rec, indent=2) + "\n")
        write_atomic(run_dir / RUN_JSON, json.dumps(replace(meta, ended_ts=time.time()).to_json(), indent=2) + "\n")
        write_atomic(run_dir / OUTCOME_JSON, json.dumps(outcome.to_json(), indent=2) + "\n")
        if control is not None:
            control.finish()
    return write_reports(run_dir, ctx.thresholds, baseline=ctx.baseline, baseline_id=str(opts.baseline or ""), tolerances=profile.compare)


def _stop_embedded(embedded: EmbeddedStorefront, created: list[Path]) -> None:
    embedded.stop()
    if embedded.log_path.exists() and created:
        shutil.copyfile(embedded.log_path, created[0] / "storefront.log")
    if embedded.access_log_path is not None and embedded.access_log_path.exists() and created:
        shutil.move(embedded.access_log_path, created[0] / "access.log")  # `peakload profile fit` reads it


def _stop_prometheus(prom: Any, run_dir: Path, *, quiet: bool) -> None:
    from dashboards.prometheus import stop_prometheus

    stop_prometheus(prom)
    if not quiet:
        folder = prom_dir(run_dir)
        print(
            f"prometheus stopped; its data stays in {folder} "
            f"(reopen: prometheus --config.file={folder / 'prometheus.yml'} --storage.tsdb.path={folder / 'data'})"
        )


def prom_dir(run_dir: Path) -> Path:
    return run_dir / "prometheus"


def _start_prometheus(ctx: RunContext, target: str, run_dir: Path) -> Any:
    """A local Prometheus scraping the load generator and the target, with the SLO rules loaded."""
    from urllib.parse import urlsplit

    from dashboards import write_rules
    from dashboards.prometheus import start_prometheus

    folder = prom_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    rule_files = [write_rules(ctx.slo, folder)] if ctx.slo is not None else []
    shop = urlsplit(target)
    jobs = {
        "peakload": [f"127.0.0.1:{ctx.metrics_port}"],
        "storefront": [f"{shop.hostname}:{shop.port or (443 if shop.scheme == 'https' else 80)}"],
    }
    prom = start_prometheus(folder, jobs=jobs, rule_files=rule_files)
    if not ctx.opts.quiet:
        print(
            f"prometheus: {prom.url}  (load generator metrics: http://127.0.0.1:{ctx.metrics_port}/metrics, "
            f"shop metrics: {target.rstrip('/')}/metrics; import dashboards/generated/*.json into Grafana)"
        )
    return prom


def _load_baseline(path: Path, *, field: str = "--baseline") -> dict:
    """A saved summary.json (of a results folder, or the file itself), checked to be one."""
    p = path / "summary.json" if path.is_dir() else path
    if path.is_dir() and not p.exists():
        raise UsageError(
            f"{field}: {path}: no summary.json (expected a results folder written by peakload run; `peakload report` rebuilds it)"
        )
    try:
        data = read_json(p, what="summary", max_bytes=MAX_RESULTS_BYTES)
    except ConfigError as exc:
        raise ConfigError(f"{field}: {exc} (expected a results folder or its summary.json)") from None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA_ID or not isinstance(data.get("requests"), dict):
        raise ConfigError(f"{field}: {p}: expected a peakload summary.json (schema {SCHEMA_ID})")
    return data


def _drive(ctx: RunContext, url: str, run_dir: Path, control: ControlServer | None = None) -> Outcome:
    opts = ctx.opts
    env = {
        **os.environ,
        **RunEnv(
            profile_path=str(opts.profile_path),
            run_id=ctx.run_id,
            results_dir=str(run_dir),
            seed=ctx.seed,
            scale=ctx.scale,
            duration=opts.duration,
            metrics_port=ctx.metrics_port,
            snapshot_interval=opts.snapshot_interval,
            workers=max(opts.workers, opts.expect_workers, 1),
            shard=ctx.shard,
            start_at=opts.start_at,
        ).to_environ(),
    }
    out = open(run_dir / "locust.out", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        _locust_command(url, run_dir, opts.workers, ctx.own, ctx.remote_workers),
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=REPO_ROOT,
        preexec_fn=lambda: _die_with_parent(signal.SIGKILL),
    )
    gate = LiveGate(ctx.thresholds, run_dir=run_dir)  # run_dir: scoped (during:/after:) abort thresholds judge their window live
    total = ctx.total
    tail = SnapshotTail(run_dir / SNAPSHOTS)
    aborted: str | None = None
    invalid: str | None = None
    t0 = time.monotonic()
    lead = max(0.0, opts.start_at - time.time()) if opts.start_at is not None else 0.0  # waiting for --start-at
    hard_deadline = t0 + lead + total + 60 + 30 * max(opts.workers, 1)
    if ctx.remote_workers is not None:  # Locust waits up to this long for them before the load starts
        hard_deadline += REMOTE_WORKERS_WAIT_S + 30 * ctx.remote_workers.count
    last_line = ""
    if control is not None:
        control.running()
    try:
        while proc.poll() is None:
            for obj in tail.poll():
                if obj.get("kind"):
                    continue
                try:
                    iv = _interval(obj)
                except (KeyError, TypeError, ValueError):
                    continue
                last_line = progress_line(time.monotonic() - t0, total, iv)
                if not opts.quiet:
                    write_progress(last_line)
                reason = gate.feed(iv)
                if reason is None and opts.on_interval is not None:
                    reason = opts.on_interval(iv, run_dir)
                if reason and not aborted:
                    aborted = f"aborted: {reason}"
                    proc.send_signal(signal.SIGTERM)
            asked = control.poll(aborted) if control is not None else None  # the fleet gate's abort: the same path
            if asked and not aborted:
                aborted = f"aborted: {asked}"
                proc.send_signal(signal.SIGTERM)
            if time.monotonic() > hard_deadline:
                invalid = f"the load generator did not stop within {total + 60:.0f}s of the planned end; killed"
                proc.kill()
            time.sleep(0.2)
    except KeyboardInterrupt:
        aborted = "aborted: interrupted by the user (Ctrl-C)"
        proc.send_signal(signal.SIGTERM)
    if control is not None:
        control.close(aborted)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    out.close()
    if last_line and not opts.quiet:
        write_progress(last_line, final=True)
    log = (run_dir / "locust.log").read_text(errors="replace") if (run_dir / "locust.log").exists() else ""
    if proc.returncode not in (0, 1) and not aborted and not invalid:
        tail_lines = (run_dir / "locust.out").read_text(errors="replace").strip().splitlines()[-3:]
        invalid = f"locust exited with {proc.returncode}: {' | '.join(tail_lines)[:300]}"
    return Outcome(
        aborted=aborted,
        invalid=invalid,
        locust_exit_code=proc.returncode,
        cpu_warning="CPU usage above" in log or "CPU usage was too high" in log,
    )
