"""The traffic profile (``version: peakload/v1``): shape or arrivals, target, journey, flash sale, thresholds.

Usage::

    profile = load_profile("profiles/smoke.yaml")      # peakload.core.loading
    profile.total_seconds, profile.profile_thresholds()

Every field is typed and bounded; a violation is one line naming the file and field.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, GetPydanticSchema, ValidationInfo, ValidatorFunctionWrapHandler, WrapValidator, field_validator, model_validator

from peakload.core.accesslog import JSON_FIELDS, AccessLog, LogRecord, parse_field_map, parse_tz
from peakload.core.errors import ConfigError, UsageError
from peakload.core.fields import (
    MAX_RATE,
    MAX_USERS,
    Duration,
    Model,
    Name,
    Range,
    Ratio,
)
from peakload.core.inputs import check_host, check_url
from peakload.core.serverside import ServerSpec
from peakload.core.shard import Shard, parse_shard
from peakload.core.thresholds import Threshold, ThresholdEntry, parse_threshold

__all__ = [
    "Stage",
    "LocustfileSpec",
    "ShapeSpec",
    "DEFAULT_PATHS",
    "TargetSpec",
    "FeedersSpec",
    "EmbeddedSpec",
    "FunnelRatios",
    "JourneySpec",
    "FlashSaleSpec",
    "ArrivalStage",
    "ArrivalsSpec",
    "ReplaySpec",
    "REPLAY_TAIL_S",
    "SAFE_METHODS",
    "CapacitySpec",
    "CompareSpec",
    "Profile",
    "StageSpan",
]

# ---------------------------------------------------------------- traffic shape


class Stage(Model):
    """One stage of a traffic shape.

    ``ramp``: linear from the previous level to ``users`` over ``duration``;
    ``steady``: hold ``users``; ``spike``: jump to ``users`` within ``rise``
    (the midnight cliff) then hold; ``decay``: exponential from the previous
    level toward ``users`` with ``half_life``.
    """

    name: Name = ""
    kind: Literal["ramp", "steady", "spike", "decay"]
    duration: Duration = Field(gt=0)
    users: int = Field(ge=0, le=MAX_USERS)
    rise: Duration = Field(default=1.0, gt=0)
    half_life: Duration = Field(default=10.0, gt=0)
    spawn_rate: float | None = Field(default=None, gt=0, le=MAX_USERS)


class ShapeSpec(Model):
    stages: list[Stage] = Field(min_length=1, max_length=10_000)

    @property
    def total_seconds(self) -> float:
        return sum(s.duration for s in self.stages)


# ---------------------------------------------------------------- target


DEFAULT_PATHS: dict[str, str] = {
    "health": "/healthz",
    "home": "/api/home",
    "category": "/api/categories/{category_id}/products",
    "search": "/api/search",
    "product": "/api/products/{sku}",
    "register": "/api/users",
    "login": "/api/sessions",
    "cart": "/api/cart",
    "cart_item": "/api/cart/items/{sku}",
    "checkout": "/api/orders",
    "pay": "/api/orders/{order_id}/payment",
    "order": "/api/orders/{order_id}",
    "reconcile": "/api/admin/reconciliation",
    "metrics": "/metrics",
}


_DIALECT_RE = r"^(storefront|oscar|[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*)$"
_FEEDER_PATH = Field(default=None, min_length=1, max_length=4096)


class FeedersSpec(Model):
    """CSV files (relative to the profile's folder) whose rows are split without overlap across users and workers.

    ``users``: ``username,password``; ``skus``: ``sku``; ``coupons``: ``code``;
    ``addresses``: one column per address field (``name,line1,city,postcode,country``).
    """

    users: str | None = _FEEDER_PATH
    skus: str | None = _FEEDER_PATH
    coupons: str | None = _FEEDER_PATH
    addresses: str | None = _FEEDER_PATH


class TargetSpec(Model):
    """Where the traffic goes, which platform dialect it speaks, and what its URLs look like."""

    url: str | None = None  # None = the embedded storefront
    # storefront (default) | oscar | module:Class (a user's adapter, importable from the profile's folder)
    dialect: str = Field(default="storefront", pattern=_DIALECT_RE, max_length=300)
    feeders: FeedersSpec = FeedersSpec()
    # writes (cart, checkout, pay) against a non-loopback platform that does not isolate test traffic
    # are refused unless this says real orders are acceptable (or --accept-real-orders)
    accept_real_orders: bool = False
    # env var holding a read-only database URL the adapter may reconcile the books from (SQLAlchemy URL)
    books_url_env: str = Field(default="PEAKLOAD_BOOKS_DB_URL", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
    allow: list[str] = []  # hosts allowed besides loopback
    run_header: str = Field(default="X-Peakload-Run", pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$")
    paths: dict[str, str] = {}
    categories: int = Field(default=20, ge=1, le=1_000_000)  # the storefront seeds 20 by default
    skus: int = Field(default=10_000, ge=1, le=100_000_000)
    sku_format: str = Field(default="SKU-{n:06d}", max_length=200)  # n = 1..skus (the storefront seeds SKU-000001..)
    users: int = Field(default=200, ge=1, le=MAX_USERS)  # the storefront seeds 200 (user00001..)
    user_format: str = Field(default="user{n:05d}", max_length=200)
    password: str = Field(default="peakload", max_length=1000)
    admin_token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")  # env var with a bearer token

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                check_url(v, field="url")
            except UsageError as exc:
                raise ValueError(str(exc).removeprefix("url: ")) from None
        return v

    @field_validator("allow")
    @classmethod
    def _hosts(cls, v: list[str]) -> list[str]:
        try:
            return [check_host(h, field="host") for h in v]
        except UsageError as exc:
            raise ValueError(str(exc).removeprefix("host: ")) from None

    @field_validator("sku_format", "user_format")
    @classmethod
    def _format(cls, v: str) -> str:
        try:
            v.format(n=1)
        except (KeyError, IndexError, ValueError, AttributeError) as exc:
            raise ValueError(f"expected a format with {{n}} like 'SKU-{{n:06d}}', got {v!r} ({exc.__class__.__name__}: {exc})") from None
        if "{n" not in v:
            raise ValueError(f"expected a format with {{n}} like 'SKU-{{n:06d}}', got {v!r}")
        return v

    @field_validator("paths")
    @classmethod
    def _known_paths(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        # the keys are the dialect's: the storefront's checked here, an adapter's against its PATHS when it loads
        if info.data.get("dialect", "storefront") == "storefront":
            unknown = sorted(set(v) - set(DEFAULT_PATHS))
            if unknown:
                raise ValueError(f"unknown path key {unknown[0]!r}; expected one of {sorted(DEFAULT_PATHS)}")
        for key, path in v.items():
            if not isinstance(key, str) or not 0 < len(key) <= 100:
                raise ValueError(f"path key must be a name of at most 100 characters, got {key!r}")
            if not path.startswith("/"):
                raise ValueError(f"path {key!r} must start with '/', got {path!r}")
            if len(path) > 2000 or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in path):
                raise ValueError(f"path {key!r} must be at most 2000 characters without spaces or control characters, got {path[:80]!r}")
        return v

    def path(self, key: str) -> str:
        return self.paths.get(key, DEFAULT_PATHS[key])


class EmbeddedSpec(Model):
    """Options for the embedded storefront (ignored for external targets)."""

    skus: int = Field(default=10_000, ge=100, le=10_000_000)
    flash_stock: int = Field(default=50, ge=0, le=1_000_000_000)
    gateway_latency_ms: float = Field(default=20, ge=0, le=60_000)
    gateway_failure_rate: float = Field(default=0.02, ge=0, le=1)
    inject_latency: dict[str, Annotated[Duration, Field(le=3600)]] = {}  # route template -> extra seconds
    access_log: bool = False  # the storefront writes access.log (combined format) into the results folder
    db_pool_size: int = Field(default=10, ge=1, le=1000)  # database connections (+ as many overflow): small to make the DB the bottleneck

    @field_validator("inject_latency")
    @classmethod
    def _routes(cls, v: dict[str, float]) -> dict[str, float]:
        for route in v:
            if not route.startswith("/") or len(route) > 2000:
                raise ValueError(f"expected route templates like '/api/products/{{sku}}', got {route[:80]!r}")
        return v


# ---------------------------------------------------------------- journeys


class FunnelRatios(Model):
    search: Ratio = 0.3  # share of browse steps that start with a search
    view_to_cart: Ratio = 0.3  # product views that add to cart
    cart_edit: Ratio = 0.1  # cart adds followed by an update/removal
    cart_to_checkout: Ratio = 0.5  # sessions with a cart that check out
    checkout_to_pay: Ratio = 0.9  # orders that get paid
    coupon: Ratio = 0.2  # checkouts with a coupon


class JourneySpec(Model):
    think_time: Range = Range(min=0.5, max=2.0)
    session_actions: Range = Range(min=3, max=10)  # product views per session
    zipf_exponent: float = Field(default=1.1, gt=0, le=10)
    # hot items picked by their own share of product views (SKU -> 0..1, summing to at most 1); the rest by Zipf.
    # `peakload profile fit` writes them when a log's popularity is not Zipf-like.
    hot_skus: dict[Annotated[str, Field(min_length=1, max_length=200)], Ratio] = Field(default={}, max_length=10_000)
    ratios: FunnelRatios = FunnelRatios()
    login_ratio: Ratio = 1.0  # sessions that log in (needed for cart)

    @field_validator("hot_skus")
    @classmethod
    def _shares(cls, v: dict[str, float]) -> dict[str, float]:
        total = sum(v.values())
        if total > 1 + 1e-9:
            raise ValueError(f"the shares add up to {total:.4g}; expected at most 1 (the rest is picked by Zipf)")
        return v


class FlashSaleSpec(Model):
    """A flash sale (秒杀): buyers race for one hot SKU at ``at`` seconds into the run."""

    sku: str = Field(default="FLASH-0001", min_length=1, max_length=200)
    at: Duration = 10.0
    quantity: int = Field(default=1, ge=1, le=10)
    retries: int = Field(default=2, ge=0, le=10)  # client retries with the same idempotency key


# ---------------------------------------------------------------- open model (arrivals)


class ArrivalStage(Model):
    """One stage of an arrival-rate schedule: ``rate`` journeys/s for ``duration`` (sub-second allowed: ``500ms``).

    With a ``linear`` curve the rate moves linearly from the previous stage's
    rate (``start_rate`` for the first) to ``rate`` over ``duration``; with a
    ``step`` curve it jumps to ``rate`` at the start of the stage.
    """

    name: Name = ""
    duration: Duration = Field(gt=0)
    rate: float = Field(ge=0, le=MAX_RATE)


REPLAY_TAIL_S = 1.0  # a replay's schedule ends this long after its last request (the last one is due before the end)
SAFE_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS"})  # methods that change nothing on the shop
_LATE_S = 60.0  # a log is "nearly in order": records this late after the window's end still count, later ones stop the read
_DAY = 86_400


def _time_of_day(text: str) -> int:
    """``23:50`` / ``23:50:30`` → seconds since midnight; ValueError otherwise."""
    parts = [int(p) for p in text.split(":")]
    hh, mm, ss = (parts + [0])[:3]
    if hh > 23 or mm > 59 or ss > 59:
        raise ValueError(f"expected a time of day like 23:50 or 23:50:30, got {text!r}")
    return hh * 3600 + mm * 60 + ss


class ReplaySpec(Model):
    """``arrivals.journey: replay``: the logged requests again, at their original offsets ÷ ``speed``.

    ``log`` (relative to the profile's folder) is read with
    :mod:`peakload.core.accesslog` (``format``, ``field_map``, ``tz``). Only
    ``methods`` are replayed (GET by default); a method with a body (POST, PUT,
    PATCH, DELETE) needs a ``rewrite`` map (regex on the path → replacement),
    because logged ids and tokens are not valid on another shop. ``window``
    (``23:50..00:30``, the log's time of day in ``tz``) and ``limit`` bound
    what is read; the schedule starts at the first replayed request.
    """

    log: str = Field(min_length=1, max_length=4096)
    format: Literal["combined", "haproxy", "jsonl"] = "combined"
    field_map: dict[str, str] = {}
    tz: str = Field(default="UTC", max_length=10)
    speed: float = Field(default=1.0, gt=0, le=1000)
    methods: list[Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]] = Field(default=["GET"], min_length=1)
    rewrite: dict[Annotated[str, Field(min_length=1, max_length=1000)], Annotated[str, Field(max_length=1000)]] = {}
    window: str | None = Field(default=None, pattern=r"^\d{2}:\d{2}(:\d{2})?\.\.\d{2}:\d{2}(:\d{2})?$")
    limit: int = Field(default=1_000_000, ge=1, le=100_000_000)

    @field_validator("field_map")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(JSON_FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; expected some of {', '.join(JSON_FIELDS)}")
        return v

    @field_validator("tz")
    @classmethod
    def _tz(cls, v: str) -> str:
        parse_tz(v)  # ValueError: expected UTC or an offset like +0800
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        if v is not None:
            start, end = (_time_of_day(side) for side in v.split(".."))
            if start == end:
                raise ValueError(f"the window {v!r} is empty; expected start..end like 23:50..00:30 (it may cross midnight)")
        return v

    @field_validator("rewrite")
    @classmethod
    def _regexes(cls, v: dict[str, str]) -> dict[str, str]:
        for pattern, replacement in v.items():
            try:
                re.compile(pattern).sub(replacement, "")  # a bad group reference in the replacement fails here too
            except re.error as exc:
                raise ValueError(f"[{pattern!r}]: {exc} (a Python regex → a replacement with \\1 or \\g<name>)") from None
        return v

    @model_validator(mode="after")
    def _bodies_need_rewrites(self) -> ReplaySpec:
        with_body = sorted(set(self.methods) - SAFE_METHODS)
        if with_body and not self.rewrite:
            raise ValueError(
                f"methods {', '.join(with_body)} change the shop with logged ids and tokens; add a rewrite map "
                "(path regex → replacement) or replay GET only"
            )
        return self

    @property
    def reads_only(self) -> bool:
        """True when every replayed method leaves the shop as it was (GET, HEAD, OPTIONS)."""
        return set(self.methods) <= SAFE_METHODS

    def window_span(self) -> tuple[int, int] | None:
        """(start, length) in seconds of the day of ``window`` (the length wraps past midnight); None without one."""
        if self.window is None:
            return None
        start, end = (_time_of_day(side) for side in self.window.split(".."))
        return start, (end - start) % _DAY

    def records(self, path: Path) -> Iterator[LogRecord]:
        """The replayed records of the log at ``path`` in log order: ``methods``, the window's first occurrence, ``limit``.

        The window's first occurrence is the one holding the log's first record
        inside it (of any method); the read stops past its end (or at ``limit``).
        Raises ConfigError naming ``arrivals.replay.log`` (one line): a missing or
        unreadable file, one that is not a ``format`` log, no request to replay.

        Usage: ``for rec in spec.records(profile.replay_log_path()): ...``
        """
        where = "arrivals.replay.log"
        tz = parse_tz(self.tz)
        offset = (tz.utcoffset(None) or dt.timedelta(0)).total_seconds()
        methods = frozenset(self.methods)
        span = self.window_span()
        log = AccessLog([path], fmt=self.format, tz=tz, field_map={**parse_field_map(None), **self.field_map})
        n = 0
        lo = hi = None
        stream = log.records()
        assert isinstance(stream, Generator)  # closed below: a read that stops early releases the file at once
        try:
            with closing(stream):
                for rec in stream:
                    if span is not None:
                        if lo is None or hi is None:
                            into = (rec.t + offset - span[0]) % _DAY
                            if into >= span[1]:
                                continue
                            lo = rec.t - into
                            hi = lo + span[1]
                        elif rec.t >= hi:
                            if rec.t >= hi + _LATE_S:
                                break
                            continue
                        elif rec.t < lo:
                            continue
                    if rec.method not in methods:
                        continue
                    n += 1
                    yield rec
                    if n >= self.limit:
                        break
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if n == 0:
            inside = f" in the window {self.window} {self.tz}" if span is not None else ""
            wanted = "/".join(sorted(methods))
            raise ConfigError(f"{where}: {path}: no {wanted} request{inside} to replay ({log.stats.parsed:,} records read)")


class ArrivalsSpec(Model):
    """Open workload model: journeys start at a target rate, independent of response times.

    ``kind``: ``constant`` (evenly spaced arrivals, step curve), ``ramping``
    (evenly spaced in cumulative expected arrivals, linear curve) or
    ``poisson`` (exponential gaps, step curve unless ``curve: linear``).
    ``journey``: what one arrival does — a ``shopper`` visit of the funnel, or
    one ``single_request`` to ``path`` (calibration, capacity probes).
    ``pool``: users that execute journeys (an arrival that finds none free is
    dropped); default = peak rate × expected journey time × 2, within ``max_pool``.
    """

    kind: Literal["constant", "ramping", "poisson"] = "constant"
    curve: Literal["step", "linear"] | None = None
    start_rate: float = Field(default=0.0, ge=0, le=MAX_RATE)
    stages: list[ArrivalStage] = Field(default=[], max_length=100_000)  # at least one, except for journey: replay
    journey: Literal["shopper", "single_request", "replay"] = "shopper"
    replay: ReplaySpec | None = None  # journey: replay
    path: str = Field(default="/", max_length=2000)
    pool: int | None = Field(default=None, ge=1, le=1_000_000)
    max_pool: int = Field(default=10_000, ge=1, le=1_000_000)
    expected_journey: Duration | None = Field(default=None, gt=0)
    # this master's share of a schedule several masters share ("I/N", 0-based; docs/open-model.md#shards); --shard overrides
    shard: str | None = Field(default=None, max_length=40)

    @field_validator("shard")
    @classmethod
    def _shard(cls, v: str | None) -> str | None:
        return None if v is None else str(parse_shard(v))

    @property
    def shard_of(self) -> Shard | None:
        """``shard`` parsed (None = this master runs the whole schedule)."""
        return None if self.shard is None else parse_shard(self.shard)

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"expected a path starting with '/', got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ArrivalsSpec:
        if self.kind == "constant" and self.curve == "linear":
            raise ValueError("kind constant holds each stage's rate (curve step); use kind ramping for a linear curve")
        if self.kind == "ramping" and self.curve == "step":
            raise ValueError("kind ramping interpolates linearly (curve linear); use kind constant for steps")
        if self.pool is not None and self.pool > self.max_pool:
            raise ValueError(f"pool ({self.pool}) must be <= max_pool ({self.max_pool})")
        if (self.journey == "replay") != (self.replay is not None):
            raise ValueError("journey: replay needs a replay section (log, speed), and a replay section needs journey: replay")
        if self.journey == "replay":
            if self.stages:
                raise ValueError("journey: replay takes its schedule from the log; remove stages")
            return self
        if not self.stages:
            raise ValueError("stages: expected at least one stage ({duration: 30s, rate: 10})")
        if self.peak_rate <= 0:
            raise ValueError("at least one stage needs a rate > 0")
        return self

    @property
    def curve_kind(self) -> str:
        """``step`` or ``linear`` (the default follows ``kind``)."""
        return self.curve or ("linear" if self.kind == "ramping" else "step")

    @property
    def total_seconds(self) -> float:
        """The stages' seconds (0 for ``journey: replay``: the log decides, see :attr:`Profile.total_seconds`)."""
        return sum(s.duration for s in self.stages)

    @property
    def peak_rate(self) -> float:
        """The stages' highest rate (0 for ``journey: replay``: the log's busiest moment is the replay schedule's)."""
        rates = [s.rate for s in self.stages]
        if self.curve_kind == "linear":
            rates.append(self.start_rate)
        return max(rates, default=0.0)

    def journey_seconds(self, journey: JourneySpec) -> float:
        """Expected seconds one journey keeps a user busy (``expected_journey`` or an estimate)."""
        if self.expected_journey is not None:
            return self.expected_journey
        if self.journey in ("single_request", "replay"):
            return 0.25
        # A visit: first screen, per product view a listing + the product (+ maybe cart), then maybe checkout + pay;
        # one think time and ~50 ms of answer per step.
        views = journey.session_actions.mean
        steps = 2 + 2 * views + 3 * journey.ratios.view_to_cart * views
        think = journey.think_time.mean
        return steps * (think + 0.05)

    def pool_size(self, journey: JourneySpec, *, scale: float = 1.0, peak_rate: float | None = None) -> int:
        """Users in the pool: ``pool`` × scale, or peak rate × scale × journey seconds × 2 (Little's law, 2x headroom).

        ``peak_rate`` (journeys/s, scale included) replaces the stages' peak: a replay passes its log's busiest moment.
        """
        if self.pool is not None:
            wanted = self.pool * scale
        elif peak_rate is not None:
            wanted = peak_rate * self.journey_seconds(journey) * 2 + 1
        else:
            wanted = self.peak_rate * scale * self.journey_seconds(journey) * 2 + 1
        return max(1, min(self.max_pool, int(wanted + 0.999999)))


class CapacitySpec(Model):
    """``peakload capacity``: arrival-rate steps ``start_rate × factor**k`` of ``step`` seconds each, up to ``max_steps``.

    The knee is the first step where a threshold breaks or arrivals drop; the
    journey, pool and path come from the ``arrivals`` section when there is one.
    """

    start_rate: float = Field(gt=0, le=MAX_RATE)
    factor: float = Field(default=1.5, gt=1, le=100)
    step: Duration = Field(default=10.0, ge=1, le=86_400)
    max_steps: int = Field(default=8, ge=1, le=100)
    stop_on_drop: bool = True
    journey: Literal["shopper", "single_request"] | None = None  # default: arrivals.journey or shopper

    @model_validator(mode="after")
    def _bounded(self) -> CapacitySpec:
        # log space: start_rate × factor**(max_steps-1) must not overflow nor pass the rate ceiling
        top = math.log10(self.start_rate) + (self.max_steps - 1) * math.log10(self.factor)
        if top > math.log10(MAX_RATE):
            raise ValueError(
                f"the last step's rate start_rate × factor^(max_steps-1) = 10^{top:.1f}/s is above "
                f"{MAX_RATE:g}/s; lower factor or max_steps"
            )
        return self

    def rates(self) -> list[float]:
        return [self.start_rate * self.factor**k for k in range(self.max_steps)]


class CompareSpec(Model):
    """Regression tolerances for ``peakload compare`` (relative changes)."""

    p95_increase: Ratio = 0.10
    p99_increase: Ratio = 0.15
    error_ratio_increase: float = Field(default=0.005, ge=0, le=1)  # absolute
    throughput_decrease: Ratio = 0.10
    min_requests: int = Field(default=20, ge=1, le=1_000_000_000)  # ignore request names with fewer samples
    # request names that may vanish from the baseline without counting as a regression
    allow_missing: list[str] = []


class LocustfileSpec(Model):
    """``locustfile:``: the user's own Locust code instead of the built-in journeys.

    ``path`` is relative to the profile's folder; ``classes`` picks user classes by
    name as ``locust -f FILE ClassA ClassB`` does ([] = every class in the file,
    weighted by their own ``weight``/``fixed_count``). The string form is the path alone.
    """

    path: str = Field(min_length=1, max_length=1000, pattern=r"\.py$")
    classes: list[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]] = Field(default=[], max_length=100)

    @model_validator(mode="before")
    @classmethod
    def _path_alone(cls, v: Any) -> Any:
        return {"path": v} if isinstance(v, str) else v


# ---------------------------------------------------------------- profile


@dataclass(frozen=True, slots=True)
class StageSpan:
    """One stage on the run's timeline: ``[start, end)`` seconds from the run's start; ``label`` is the
    name, or ``#N`` (1-based) for an unnamed stage."""

    index: int
    name: str
    start: float
    end: float

    @property
    def label(self) -> str:
        return self.name or f"#{self.index + 1}"


def _stage_spans(shape: Any, arrivals: Any) -> list[StageSpan]:
    stages: list[Any] = (
        list(shape.stages) if isinstance(shape, ShapeSpec) else list(arrivals.stages) if isinstance(arrivals, ArrivalsSpec) else []
    )
    out, t = [], 0.0
    for i, st in enumerate(stages):
        out.append(StageSpan(index=i, name=st.name, start=t, end=t + st.duration))
        t += st.duration
    return out


def _check_stage(kind: str, name: str, spans: list[StageSpan], *, where: str) -> None:
    """ValueError unless ``name`` names exactly one stage (the message lists the named stages)."""
    hits = [s for s in spans if s.name == name]
    if len(hits) == 1:
        return
    known = ", ".join(dict.fromkeys(s.name for s in spans if s.name)) or "none (give the stages a name: to refer to them)"
    if not hits:
        raise ValueError(f"{where}.{kind}: unknown stage {name!r}; known stages: {known}")
    raise ValueError(f"{where}.{kind}: stage name {name!r} names {len(hits)} stages; a window needs a unique name")


_ThresholdMap = dict[Annotated[str, Field(min_length=1, max_length=500)], list[str | ThresholdEntry]]
NO_THRESHOLDS = "none"  # ``thresholds: none``: judged by design on nothing (verdict "ungated")


def _none_or_map(v: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """``none``, or the scope → thresholds mapping (validated as before, so its errors name the same paths)."""
    if v == NO_THRESHOLDS:
        return NO_THRESHOLDS
    if not isinstance(v, dict):
        got = repr(v) if len(repr(v)) <= 60 else repr(v)[:57] + "…"
        raise ValueError(f"expected a mapping of scope to thresholds (all: [p95 < 500ms]) or none (no thresholds by design), got {got}")
    return handler(v)


# The schema is the mapping's alone (a plain union would prefix every error path with its branch name).
Thresholds = Annotated[
    _ThresholdMap | Literal["none"],
    GetPydanticSchema(lambda _tp, handler: handler(_ThresholdMap)),
    WrapValidator(_none_or_map),
]


class Profile(Model):
    version: Literal["peakload/v1"]
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field(default="", max_length=10_000)
    seed: int = Field(default=42, ge=0, le=2**63 - 1)
    target: TargetSpec = TargetSpec()
    embedded: EmbeddedSpec = EmbeddedSpec()
    shape: ShapeSpec | None = None  # closed model: users over time
    arrivals: ArrivalsSpec | None = None  # open model: journeys per second over time
    capacity: CapacitySpec | None = None  # `peakload capacity` steps
    users: dict[Literal["shopper", "flash_buyer"], Annotated[float, Field(ge=0, le=1_000_000)]] = {"shopper": 1.0}
    journey: JourneySpec = JourneySpec()
    flash_sale: FlashSaleSpec | None = None
    slo: str | None = Field(default="slo.yaml", min_length=1, max_length=1000)  # relative to the profile's folder; null = none
    # scope → thresholds, or "none": no thresholds by design (then no SLO spec either: ``slo`` defaults to none)
    thresholds: Thresholds = {}
    compare: CompareSpec = CompareSpec()
    locustfile: LocustfileSpec | None = None  # the user's own Locust code (relative to the profile's folder)
    server: ServerSpec | None = None  # the target's own figures during the run (peakload.core.serverside)
    # set by the loader, not the YAML
    source: str = ""

    @field_validator("users")
    @classmethod
    def _weights(cls, v: dict[str, float]) -> dict[str, float]:
        if not v or sum(v.values()) <= 0 or any(w < 0 for w in v.values()):
            raise ValueError("expected non-negative weights with a positive sum, e.g. {shopper: 9, flash_buyer: 1}")
        return v

    @model_validator(mode="before")
    @classmethod
    def _no_slo_without_thresholds(cls, data: Any) -> Any:
        # ``thresholds: none`` opts out of judging: the default SLO spec (slo.yaml) must not sneak thresholds back in
        if isinstance(data, dict) and data.get("thresholds") == NO_THRESHOLDS and "slo" not in data:
            return {**data, "slo": None}
        return data

    @field_validator("thresholds")
    @classmethod
    def _parse_thresholds(cls, v: dict[str, list[Any]] | str, info: ValidationInfo) -> dict[str, list[Any]] | str:
        if isinstance(v, str):  # "none"
            slo = info.data.get("slo")
            if slo is not None:
                raise ValueError(f"none: the profile also names an slo spec (slo: {slo}); drop one")
            return v
        spans = _stage_spans(info.data.get("shape"), info.data.get("arrivals"))
        for scope, entries in v.items():
            for i, entry in enumerate(entries):
                expr = entry if isinstance(entry, str) else entry.expr
                during = None if isinstance(entry, str) else entry.during
                after = None if isinstance(entry, str) else entry.after
                abort = False if isinstance(entry, str) else entry.abort
                try:
                    t = parse_threshold(scope, expr, during=during, after=after, abort=abort)
                except ValueError as exc:
                    raise ValueError(f"[{scope!r}][{i}]: {exc}") from None
                if t.window is not None and t.window.stage is not None:
                    _check_stage(t.window.kind, t.window.stage, spans, where=f"[{scope!r}][{i}]")
        return v

    @model_validator(mode="after")
    def _one_model(self) -> Profile:
        if self.shape is None and self.arrivals is None:
            raise ValueError("expected a shape (closed model: users) or an arrivals section (open model: journeys/s)")
        if self.shape is not None and self.arrivals is not None:
            raise ValueError("give either shape (closed model) or arrivals (open model), not both")
        return self

    @property
    def total_seconds(self) -> float:
        """Planned length of the load: the shape's or the arrival schedule's.

        For ``journey: replay`` the log decides: its replayed span ÷ ``speed`` plus
        ``REPLAY_TAIL_S``, read from the file once per file version (ConfigError as
        :meth:`ReplaySpec.records`). ``--scale`` shortens a replay further (the runner's figure).
        """
        if self.shape is not None:
            return self.shape.total_seconds
        assert self.arrivals is not None
        replay = self.arrivals.replay
        if replay is None:
            return self.arrivals.total_seconds
        path = self.replay_log_path()
        assert path is not None
        return _replay_seconds(replay, path)

    @model_validator(mode="after")
    def _flash(self) -> Profile:
        if self.users.get("flash_buyer", 0) > 0 and self.flash_sale is None:
            raise ValueError("users.flash_buyer > 0 needs a flash_sale section")
        return self

    def profile_thresholds(self) -> list[Threshold]:
        """The profile's own thresholds (none for ``thresholds: none``)."""
        out: list[Threshold] = []
        if isinstance(self.thresholds, str):
            return out
        for scope, entries in self.thresholds.items():
            for entry in entries:
                if isinstance(entry, str):
                    out.append(parse_threshold(scope, entry))
                else:
                    out.append(
                        parse_threshold(scope, entry.expr, abort=entry.abort, grace=entry.grace, during=entry.during, after=entry.after)
                    )
        return out

    def stage_spans(self) -> list[StageSpan]:
        """The stages of the shape or the arrival schedule as [start, end) offsets (s) from the run's start
        (none for ``journey: replay``); what ``during: NAME`` and ``after: NAME`` thresholds refer to."""
        return _stage_spans(self.shape, self.arrivals)

    def slo_path(self) -> Path | None:
        if self.slo is None:
            return None
        base = Path(self.source).parent if self.source else Path("profiles")
        return base / self.slo

    def replay_log_path(self) -> Path | None:
        """``arrivals.replay.log``, relative to the profile's folder (None without a replay)."""
        if self.arrivals is None or self.arrivals.replay is None:
            return None
        base = Path(self.source).parent if self.source else Path("profiles")
        return base / self.arrivals.replay.log

    def locustfile_path(self) -> Path | None:
        """The profile's ``locustfile.path``, relative to the profile's folder (None without one)."""
        if self.locustfile is None:
            return None
        base = Path(self.source).parent if self.source else Path("profiles")
        return base / self.locustfile.path


_SPANS: dict[tuple[str, int, int, str], float] = {}  # (file, size, mtime, replay spec) → seconds: a log is read once


def _replay_seconds(spec: ReplaySpec, path: Path) -> float:
    """Seconds of a replay at ``spec.speed``: first to last replayed request, plus the tail."""
    try:
        st = path.stat()
        key = (str(path.resolve()), st.st_size, st.st_mtime_ns, spec.model_dump_json())
    except OSError:
        key = None  # records() names the problem
    if key is not None and key in _SPANS:
        return _SPANS[key]
    first = last = None
    for rec in spec.records(path):
        first = rec.t if first is None else min(first, rec.t)
        last = rec.t if last is None else max(last, rec.t)
    assert first is not None and last is not None  # records() refuses a log without one
    seconds = (last - first) / spec.speed + REPLAY_TAIL_S
    if key is not None:
        _SPANS[key] = seconds
    return seconds
