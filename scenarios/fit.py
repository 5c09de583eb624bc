"""Last year's peak as a profile: fit arrivals, funnel, think times and popularity from access logs.

``peakload profile fit LOG... --out profile.yaml`` streams the logs
(:mod:`peakload.core.accesslog`), maps each request to a journey step with
the dialect's route templates (``PATHS`` and ``LOG_STEPS``), rebuilds
sessions and fits what a profile holds:

- **arrivals**: session starts on a fine grid (``resolution``, 100 ms), cut
  into stages by binary segmentation of a Poisson likelihood (a stage ends
  where the rate changes by more than noise), each change point placed on
  the fine grid, so a 0.5 s midnight cliff stays a cliff;
- **funnel ratios** as the journey decides them (``search`` of browse steps,
  ``view_to_cart`` of product views, ``cart_edit`` of cart adds,
  ``cart_to_checkout`` of sessions holding a cart, ``checkout_to_pay`` of
  placed orders, ``coupon`` of checkouts when the log has it);
- **session length** (product views) and **think times** (the gap from one
  answer to the next request of a session) as empirical quantiles;
- **popularity**: a Zipf exponent by maximum likelihood over the catalogue,
  corrected for the bias of ranking items by their own counts (a parametric
  bootstrap), with its goodness of fit; the top items as ``hot_skus`` when
  Zipf fits badly; flash-sale candidates (bursts on one product).

Sessions: a key (the log's session field, else the user, else address +
user agent) with an idle gap (30 min); with ``entry`` steps (``home``) a
new visit also starts at each entry step — the storefront's pool users go
from one visit to the next without a gap.

Usage::

    fit = fit_logs([Path("access.log")], FitOptions(entry=frozenset({"home"}), catalogue=10_000))
    fit.profile_yaml(), fit.report
"""

from __future__ import annotations

import array
import collections
import datetime as dt
import hashlib
import heapq
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from peakload.core import MAX_RATE, ConfigError, TargetSpec
from peakload.core.accesslog import AccessLog, LogStats
from peakload.core.steps import STEPS
from scenarios.shop import BaseShop, fold_path, route_pattern
from scenarios.zipf import zipf_cdf

__all__ = ["FitOptions", "Fit", "RouteTable", "fit_logs", "fit_zipf", "segment_rate", "QUANTILES"]

QUANTILES = (5, 10, 25, 50, 75, 90, 95)  # written into think_time / session_actions besides min and max
BROWSE = frozenset({"home", "category", "search", "product"})
CART_OPS = frozenset({"cart_add", "cart_update", "cart_remove"})
MAX_UNKNOWN = 20  # unknown routes listed in the report
MAX_OPEN = 2_000_000  # open sessions kept; beyond, the stalest are closed early (counted)
MAX_CARTS = 50_000  # non-empty carts remembered across visits (the least recently seen forgotten first: ~25 MB at most)


@dataclass(frozen=True)
class FitOptions:
    fmt: str = "combined"
    tz: dt.tzinfo = dt.UTC
    field_map: Mapping[str, str] | None = None
    idle_gap: float = 1800.0
    entry: frozenset[str] = frozenset()
    window: tuple[float, float] | None = None  # seconds of the day in tz; end < start crosses midnight
    growth: float = 1.0
    compress: float = 1.0
    resolution: float = 0.1
    catalogue: int | None = None
    max_stages: int = 40
    name: str = "fitted"
    seed: int = 42


# ---------------------------------------------------------------- routes → steps


class RouteTable:
    """(method, path) → (step, item) from a dialect's ``PATHS`` (with ``target.paths``) and ``LOG_STEPS``."""

    def __init__(self, shop: type[BaseShop], target: TargetSpec) -> None:
        if not shop.LOG_STEPS:
            raise ConfigError(
                f"target.dialect: {target.dialect} does not say which of its routes are which journey steps "
                "(LOG_STEPS on the adapter class, docs/traffic-models.md)"
            )
        self.static: dict[tuple[str, str], tuple[str, str]] = {}
        self.patterns: dict[str, list[tuple[re.Pattern[str], str, str]]] = collections.defaultdict(list)
        for (method, key), step in shop.LOG_STEPS.items():
            if step and step not in STEPS:
                raise ConfigError(f"target.dialect: {target.dialect}.LOG_STEPS names unknown step {step!r}")
            template = target.paths.get(key, shop.PATHS.get(key, ""))
            if not template:
                raise ConfigError(f"target.dialect: {target.dialect}.LOG_STEPS names unknown path key {key!r}")
            template = template.split("?", 1)[0]
            if "{" not in template:
                self.static[(method, template)] = (step, template)
                continue
            rx, first = route_pattern(template)
            self.patterns[method].append((rx, step, first))
        self._cache: dict[tuple[str, str], tuple[str, str] | None] = {}

    def match(self, method: str, path: str) -> tuple[str, str] | None:
        """(step, item) — item is the route's first placeholder value ("" for a static route); None when unknown."""
        key = (method, path)
        hit = self._cache.get(key, False)
        if hit is not False:
            return hit  # type: ignore[return-value]
        found = self.static.get(key)
        if found is not None:
            out: tuple[str, str] | None = (found[0], "")
        else:
            out = None
            for rx, step, first in self.patterns.get(method, ()):
                m = rx.match(path)
                if m is not None:
                    out = (step, m.group(first) if first else "")
                    break
        if len(self._cache) > 32_768:  # order ids make endless distinct paths: a small cache, cleared when full
            self._cache.clear()
        self._cache[key] = out
        return out


def _route_shape(method: str, path: str) -> str:
    """``GET /api/things/{id}``: an unknown route with its id-like segments folded, so the list stays short."""
    return f"{method} {fold_path(path)[:120]}"


# ---------------------------------------------------------------- small statistics


class _Histogram:
    """Counts of values on a grid (``step`` wide); quantiles by the empirical CDF."""

    __slots__ = ("step", "counts", "n")

    def __init__(self, step: float) -> None:
        self.step = step
        self.counts: collections.Counter[int] = collections.Counter()
        self.n = 0

    def add(self, value: float) -> None:
        self.counts[int(round(value / self.step))] += 1
        self.n += 1

    def quantile(self, q: float) -> float:
        """The smallest grid value v with P(X <= v) >= q."""
        target = q * self.n
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= target - 1e-9:
                return key * self.step
        return max(self.counts) * self.step

    def mean(self) -> float:
        return sum(k * c for k, c in self.counts.items()) * self.step / self.n if self.n else 0.0


@dataclass
class _Ratio:
    num: int = 0
    den: int = 0

    def value(self) -> float | None:
        return self.num / self.den if self.den else None

    def stderr(self) -> float | None:
        p = self.value()
        return None if p is None else math.sqrt(max(p * (1 - p), 0.0) / self.den)

    def as_dict(self) -> dict[str, Any]:
        p, se = self.value(), self.stderr()
        return {
            "value": None if p is None else round(p, 4),
            "of": self.den,
            "count": self.num,
            "stderr": None if se is None else round(se, 4),
        }


# ---------------------------------------------------------------- sessions


class _Session:
    """One open visit, folded request by request (constant memory per visit, whatever its length).

    The figures of the requests seen so far wait here until the visit ends: a visit without a
    browsing step (a sign-in alone, a flash buyer's direct checkout) is then dropped, not counted.
    """

    __slots__ = (
        "key", "start", "last_t", "last_end", "last_step", "last_product", "browsing", "cart", "views", "searches",
        "categories", "adds", "adds_ok", "edits", "decided", "with_cart", "checked_out", "ordered", "coupon", "paid",
        "has_checkout", "only_sign_in",
    )  # fmt: skip

    def __init__(self, key: str, t: float, cart: set[str]) -> None:
        self.key, self.start, self.last_t = key, t, t
        self.last_end: float | None = None
        self.last_step = ""
        self.last_product: str | None = None
        self.browsing = False
        self.cart = cart  # the visitor's cart, carried from visit to visit as the journey's client does
        self.views = self.searches = self.categories = self.adds = self.adds_ok = self.edits = 0
        self.decided = self.with_cart = self.checked_out = self.ordered = self.coupon = self.paid = False
        self.has_checkout = False
        self.only_sign_in = True

    def feed(self, t: float, step: str, item: str, status: int, duration: float | None, coupon: str, think: _Histogram) -> None:
        self.last_t = t
        if not step:  # part of the step before it (a product's price request): extends it
            if self.last_end is not None and duration is not None:
                self.last_end = max(self.last_end, t + duration)
            return
        if step != "sign_in":
            self.only_sign_in = False
        if self.last_end is not None and self.last_step != "sign_in" and self.browsing:
            gap = t - self.last_end
            if 0 <= gap <= 3600:
                think.add(gap)
        self.last_end = t + (duration or 0.0)
        last_product, self.last_product = self.last_product, None
        self.last_step = step
        if step == "product":
            self.browsing = True
            self.views += 1
            self.last_product = item
        elif step == "search":
            self.browsing = True
            self.searches += 1
        elif step == "category":
            self.browsing = True
            self.categories += 1
        elif step == "home":
            self.browsing = True
        elif step in CART_OPS:
            ok = 200 <= status < 300
            cart = self.cart
            if not item and step == "cart_add" and last_product is not None:
                item = last_product  # the item is in the body (Oscar's add-product): the view it follows names it
            if not self.checked_out and last_product is not None and item == last_product and step != "cart_remove":
                self.adds += 1  # the view led to a cart request: the journey's decision
                if ok:
                    self.adds_ok += 1
                    cart.add(item)
            elif not self.checked_out:
                if ok:
                    self.edits += 1
                    if step == "cart_remove":
                        cart.discard(item)
                    else:
                        cart.add(item)
            elif ok and step == "cart_remove":
                cart.discard(item)  # giving a sold-out cart up after the checkout
        elif step == "cart" or step == "checkout" or step == "flash_checkout":
            if not self.decided:
                self.decided = True
                self.with_cart = bool(self.cart)
            if step != "cart":
                self.checked_out = self.has_checkout = True
                if status in (200, 201):
                    if not self.ordered:
                        self.ordered = True
                        self.coupon = bool(coupon)
                    self.cart.clear()
        elif step == "pay":
            if self.ordered:
                self.paid = True


@dataclass
class _Accumulator:
    resolution: float
    origin: float | None = None
    starts: array.array = field(default_factory=lambda: array.array("I"))  # session starts per fine bin
    sessions: int = 0
    dropped: collections.Counter[str] = field(default_factory=collections.Counter)
    search: _Ratio = field(default_factory=_Ratio)
    view_to_cart: _Ratio = field(default_factory=_Ratio)
    cart_edit: _Ratio = field(default_factory=_Ratio)
    cart_to_checkout: _Ratio = field(default_factory=_Ratio)
    checkout_to_pay: _Ratio = field(default_factory=_Ratio)
    coupon: _Ratio = field(default_factory=_Ratio)
    coupons_logged: bool = False
    views: _Histogram = field(default_factory=lambda: _Histogram(1.0))
    think: _Histogram = field(default_factory=lambda: _Histogram(0.001))
    visit_seconds: _Histogram = field(default_factory=lambda: _Histogram(0.1))
    items: collections.Counter[str] = field(default_factory=collections.Counter)
    carts: collections.OrderedDict[str, set[str]] = field(default_factory=collections.OrderedDict)  # non-empty ones only
    steps: collections.Counter[str] = field(default_factory=collections.Counter)
    visitors: _Distinct = field(default_factory=lambda: _Distinct())
    carts_forgotten: int = 0
    cut: int = 0  # sessions the end of the log cut off: arrivals, but not in the funnel or session lengths
    orders: int = 0  # sessions that placed an order (cut ones too)
    paid: int = 0  # of those, sessions that paid

    def start_at(self, t: float) -> None:
        if self.origin is None:
            self.origin = math.floor(t / self.resolution) * self.resolution
        i = max(int((t - self.origin) / self.resolution), 0)
        starts = self.starts
        if i >= len(starts):
            starts.extend([0] * (i + 1 - len(starts)))
        starts[i] += 1

    def open(self, key: str, t: float) -> _Session:
        cart = self.carts.pop(key, None)
        return _Session(key, t, cart if cart is not None else set())

    def close(self, s: _Session, *, cut: bool = False) -> None:
        """Fold one finished visit into the figures; ``cut``: the log ended mid-visit."""
        if s.cart:  # carts outlive visits; only non-empty ones are kept, the stalest dropped first beyond the bound
            self.carts[s.key] = s.cart
            if len(self.carts) > MAX_CARTS:
                self.carts.popitem(last=False)
                self.carts_forgotten += 1
        if not s.browsing:
            if s.has_checkout:
                self.dropped["direct checkout, no browsing (a flash buyer?)"] += 1
            elif s.only_sign_in:
                self.dropped["sign-in only"] += 1
            else:
                self.dropped["no browsing step"] += 1
            return
        self.sessions += 1
        self.visitors.add(s.key)
        self.start_at(s.start)
        self.view_to_cart.num += s.adds
        self.view_to_cart.den += s.views
        self.cart_edit.num += s.edits
        self.cart_edit.den += s.adds_ok
        self.search.num += s.searches
        self.search.den += s.searches + s.categories
        self.orders += s.ordered
        self.paid += s.ordered and s.paid
        if s.decided and s.with_cart:
            self.cart_to_checkout.den += 1
            self.cart_to_checkout.num += 1
        if s.ordered:
            self.coupon.den += 1
            if s.coupon:
                self.coupon.num += 1
                self.coupons_logged = True
        if cut:  # what it did counts; the decisions it did not reach and its length are unknown
            self.cut += 1
            if s.ordered and s.paid:
                self.checkout_to_pay.den += 1
                self.checkout_to_pay.num += 1
            return
        if not s.decided and s.cart:
            self.cart_to_checkout.den += 1
        if s.ordered:
            self.checkout_to_pay.den += 1
            if s.paid:
                self.checkout_to_pay.num += 1
        self.views.add(s.views)
        self.visit_seconds.add((s.last_end or s.last_t) - s.start)


class _Distinct:
    """How many distinct keys: exact up to 65,536, then a K-minimum-values estimate (constant memory)."""

    K = 1024

    def __init__(self) -> None:
        self.exact: set[str] | None = set()
        self.mins: list[int] = []  # max-heap (negated) of the K smallest hashes

    def add(self, key: str) -> None:
        if self.exact is not None:
            self.exact.add(key)
            if len(self.exact) <= 65_536:
                return
            keys, self.exact = self.exact, None
            for k in keys:
                self._hash(k)
            return
        self._hash(key)

    def _hash(self, key: str) -> None:
        h = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")
        mins = self.mins
        if len(mins) < self.K:
            heapq.heappush(mins, -h)
        elif h < -mins[0] and -h not in mins:
            heapq.heapreplace(mins, -h)

    def __len__(self) -> int:
        if self.exact is not None:
            return len(self.exact)
        kth = -self.mins[0]
        return int((self.K - 1) / (kth / 2**64))


# ---------------------------------------------------------------- flash-sale bursts


class _Bursts:
    """Windows where one product takes a crowd: ≥ 30 views, ≥ 10× its usual rate, ≥ 25 % of the window's views.

    The read loop counts a window's product views in a plain dict and hands it over with :meth:`roll`
    when the window ends (a method call per window, not per request).
    """

    WINDOW = 10.0

    def __init__(self) -> None:
        self.totals: collections.Counter[str] = collections.Counter()
        self.windows = 0
        self.found: list[dict[str, Any]] = []

    def roll(self, counts: dict[str, int], window_start: float) -> None:
        if counts:
            total = sum(counts.values())
            item = max(counts, key=counts.__getitem__)
            n = counts[item]
            usual = self.totals[item] / self.windows if self.windows else 0.0
            if n >= 30 and n >= 10 * max(usual, 0.1) and n >= 0.25 * total and len(self.found) < 20:
                self.found.append(
                    {"item": item, "at": window_start, "views": n, "window_s": self.WINDOW, "usual_per_window": round(usual, 2)}
                )
            self.totals.update(counts)
        self.windows += 1


# ---------------------------------------------------------------- arrival curve


def _ll(n: float, seconds: float) -> float:
    return n * math.log(n / seconds) - n if n > 0 and seconds > 0 else 0.0


def segment_rate(counts: list[int], width: float, *, max_stages: int = 40, penalty: float | None = None) -> list[tuple[int, int]]:
    """Cut counts per bin into stages of one rate each: binary segmentation of a Poisson likelihood.

    Returns ``[(first_bin, end_bin), ...]`` covering every bin. A split is kept when it raises the
    log-likelihood by more than ``penalty`` (default 3·ln(bins), a BIC-like bar that noise rarely clears).
    """
    n = len(counts)
    if n == 0:
        return []
    cum = [0]
    for c in counts:
        cum.append(cum[-1] + c)
    bar = penalty if penalty is not None else 3.0 * math.log(max(n, 2))

    def best(a: int, b: int) -> tuple[float, int]:
        whole = _ll(cum[b] - cum[a], (b - a) * width)
        top, at = 0.0, -1
        for c in range(a + 1, b):
            gain = _ll(cum[c] - cum[a], (c - a) * width) + _ll(cum[b] - cum[c], (b - c) * width) - whole
            if gain > top:
                top, at = gain, c
        return top, at

    segments = [(0, n)]
    candidates = {(0, n): best(0, n)}
    while len(segments) < max_stages:
        seg = max(segments, key=lambda s: candidates[s][0])
        gain, at = candidates[seg]
        if at < 0 or gain <= bar:
            break
        segments.remove(seg)
        left, right = (seg[0], at), (at, seg[1])
        segments += [left, right]
        candidates[left], candidates[right] = best(*left), best(*right)
    return sorted(segments)


def _refine(fine: list[int], coarse_edges: list[int], factor: int) -> list[int]:
    """Each coarse change point moved to the fine bin (within ±1 coarse bin) that maximises the likelihood."""
    cum = [0]
    for c in fine:
        cum.append(cum[-1] + c)
    edges = [0, *[e * factor for e in coarse_edges[1:-1]], len(fine)]
    out = [0]
    for k in range(1, len(edges) - 1):
        a, b = out[-1], edges[k + 1]
        lo, hi = max(a + 1, edges[k] - factor), min(b - 1, edges[k] + factor)
        best_c, best_v = edges[k], -math.inf
        for c in range(lo, hi + 1):
            v = _ll(cum[c] - cum[a], c - a) + _ll(cum[b] - cum[c], b - c)
            if v > best_v:
                best_v, best_c = v, c
        out.append(best_c)
    out.append(len(fine))
    return out


# ---------------------------------------------------------------- Zipf


def _zipf_mle(counts: list[int], catalogue: int) -> float:
    """The exponent maximising the likelihood of counts sorted high to low over ranks 1..catalogue.

    Newton's method on the mean log-likelihood ``-(s·m + ln H(N, s))`` (m = mean ln rank of the
    views): its slope is ``E_s[ln k] - m`` and its curvature ``-Var_s[ln k]`` — concave, so Newton
    from s = 1 converges in a handful of steps (each one pass over the catalogue).
    """
    n = sum(counts)
    m = sum(c * math.log(k) for k, c in enumerate(counts, 1)) / n
    logs = [math.log(k) for k in range(1, catalogue + 1)]
    s = 1.0
    for _ in range(50):
        w0 = w1 = w2 = 0.0
        for lg in logs:
            w = math.exp(-s * lg)
            w0 += w
            w1 += w * lg
            w2 += w * lg * lg
        mean = w1 / w0
        var = w2 / w0 - mean * mean
        if var <= 1e-12:
            break
        step = (mean - m) / var
        s_new = min(max(s + step, 0.01), 10.0)
        if abs(s_new - s) < 1e-7:
            s = s_new
            break
        s = s_new
    return s


def _zipf_ks(counts: list[int], catalogue: int, s: float) -> float:
    n = sum(counts)
    h = sum(k**-s for k in range(1, catalogue + 1))
    emp = model = worst = 0.0
    for k in range(1, catalogue + 1):
        emp += (counts[k - 1] if k <= len(counts) else 0) / n
        model += k**-s / h
        worst = max(worst, abs(emp - model))
    return worst


def _zipf_sample(rng: random.Random, population: range, cdf: tuple[float, ...], draws: int) -> list[int]:
    """Counts (high to low) of ``draws`` Zipf ranks, drawn 65,536 at a time (memory stays flat for millions)."""
    counts: collections.Counter[int] = collections.Counter()
    left = draws
    while left > 0:
        k = min(left, 65_536)
        counts.update(rng.choices(population, cum_weights=cdf, k=k))
        left -= k
    return sorted(counts.values(), reverse=True)


def fit_zipf(item_counts: Mapping[str, int], *, catalogue: int | None = None, seed: int = 42, reps: int = 6) -> dict[str, Any]:
    """Zipf exponent of product-view counts, bias-corrected, with its goodness of fit.

    Ranking items by their own counts makes the tail look steeper than it is; a parametric
    bootstrap (samples of the same size at the estimate) measures that bias and removes it. The same
    samples say how far from the model a log that *is* Zipf lands (the KS distance of sorted counts
    against the model is never 0: unseen items have no rank); the fit is called bad when the log is
    further than every bootstrap sample by a margin (``ks_distance > 1.25 × max + 0.01``).
    """
    counts = sorted((c for c in item_counts.values() if c > 0), reverse=True)
    n = sum(counts)
    if n < 50 or len(counts) < 2:
        return {"exponent": None, "views": n, "items_seen": len(counts), "why": "fewer than 50 product views or 2 items"}
    size = max(catalogue or 0, len(counts))
    raw = _zipf_mle(counts, size)
    s = raw
    bias = 0.0
    rng = random.Random(seed)
    draws = min(n, 2_000_000)
    reps = reps if n <= 200_000 else 2
    population = range(1, size + 1)
    s, sims, bias = raw, [], 0.0
    # bootstrap at the current estimate until the correction settles: s = raw - bias(s), 1 to 4 rounds
    for _ in range(4):
        cdf = zipf_cdf(size, s)
        sims = [_zipf_sample(rng, population, cdf, draws) for _ in range(reps)]
        bias = sum(_zipf_mle(sim, size) for sim in sims) / reps - s
        s_new = min(max(raw - bias, 0.01), 10.0)
        settled = abs(s_new - s) < 0.005
        s = s_new
        if settled:
            break
    ks = _zipf_ks(counts, size, s)
    sim_ks = [_zipf_ks(sim, size, s) for sim in sims]
    bar = 1.25 * max(sim_ks) + 0.01
    return {
        "exponent": round(s, 4),
        "raw_mle": round(raw, 4),
        "bias": round(bias, 4),
        "views": n,
        "items_seen": len(counts),
        "catalogue": size,
        "catalogue_from": "--catalogue" if catalogue else "items seen in the log (pass --catalogue N for the shop's size)",
        "ks_distance": round(ks, 4),
        "ks_if_zipf": round(max(sim_ks), 4),
        "fits": ks <= bar,
    }


# ---------------------------------------------------------------- the fit


@dataclass
class Fit:
    options: FitOptions
    report: dict[str, Any]
    stages: list[dict[str, Any]]
    journey: dict[str, Any]
    dialect: str
    pool: int

    def profile_yaml(self, *, sources: Iterable[str]) -> str:
        return _render_profile(self, list(sources))


def _quantile_range(h: _Histogram, *, integer: bool) -> dict[str, Any] | None:
    if not h.n:
        return None
    fmt = (lambda v: int(round(v))) if integer else (lambda v: round(v, 3))
    out: dict[str, Any] = {"min": fmt(h.quantile(0.0)), "max": fmt(h.quantile(1.0))}
    qs = {f"p{q}": fmt(h.quantile(q / 100)) for q in QUANTILES}
    out["quantiles"] = qs
    out["n"] = h.n
    out["mean"] = round(h.mean(), 4)
    return out


def _day_window(origin: float, end: float, window: tuple[float, float], tz: dt.tzinfo) -> list[tuple[float, float]]:
    """Every occurrence of the time-of-day window between origin and end (epoch seconds)."""
    start_s, end_s = window
    length = (end_s - start_s) % 86400 or 86400
    local = dt.datetime.fromtimestamp(origin, tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    out = []
    day = midnight - 86400
    while day <= end:
        a = day + start_s
        if a + length > origin and a < end:
            out.append((a, a + length))
        day += 86400
    return out


def fit_logs(
    paths: list[Path],
    options: FitOptions,
    *,
    shop: type[BaseShop],
    target: TargetSpec,
    progress: Callable[[LogStats], None] | None = None,
) -> Fit:
    """Read the logs once and fit every figure (raises ConfigError on a log that cannot be read)."""
    routes = RouteTable(shop, target)
    log = AccessLog(
        paths, fmt=options.fmt, tz=options.tz, field_map=dict(options.field_map) if options.field_map else None, progress=progress
    )
    acc = _Accumulator(resolution=options.resolution)
    bursts = _Bursts()
    unknown: collections.Counter[str] = collections.Counter()
    open_sessions: dict[str, _Session] = {}
    idle, entry = options.idle_gap, options.entry
    next_sweep = -math.inf
    early_closed = 0
    began = time.perf_counter()
    match = routes.match
    steps = acc.steps
    close = acc.close
    think = acc.think
    items = acc.items
    burst_w = _Bursts.WINDOW
    window: dict[str, int] = {}
    window_end = -math.inf
    for rec in log.records():
        t, method, path, _query, status, client, user, ua, duration, session, coupon = rec
        hit = match(method, path)
        if hit is None:
            shape = _route_shape(method, path)
            if len(unknown) < 10_000 or shape in unknown:
                unknown[shape] += 1
            else:
                unknown["(other unknown routes)"] += 1
            continue
        step, item = hit
        key = session or user or f"{client} {ua}"
        s = open_sessions.get(key)
        if s is not None and (t - s.last_t > idle or (s.browsing and step in entry)):
            close(open_sessions.pop(key))
            s = None
        if s is None:
            s = open_sessions[key] = acc.open(key, t)
            if len(open_sessions) > MAX_OPEN:
                stalest = min(open_sessions.values(), key=lambda x: x.last_t)
                close(open_sessions.pop(stalest.key))
                early_closed += 1
        s.feed(t, step, item, status, duration, coupon, think)
        if step in BROWSE:
            if step == "product":
                items[item] += 1
                if t >= window_end:
                    if window_end > -math.inf:
                        bursts.roll(window, window_end - burst_w)
                    window = {}
                    window_end = (math.floor(t / burst_w) + 1) * burst_w
                window[item] = window.get(item, 0) + 1
        steps[step] += 1
        if t >= next_sweep:
            for k in [k for k, v in open_sessions.items() if t - v.last_t > idle]:
                close(open_sessions.pop(k))
            next_sweep = t + max(idle / 4, 1.0)
    # a visit still going when the log ends was cut off: it arrived, but its length and funnel are unknown.
    # "Still going": its last request ended (not began: under load a request can take seconds) within a few
    # think times of the last request the log holds.
    end_t = log.stats.last_t or 0.0
    margin = max(2.0, 3 * acc.think.quantile(0.99)) if acc.think.n else 2.0
    for s in open_sessions.values():
        acc.close(s, cut=(s.last_t if s.last_end is None else max(s.last_t, s.last_end)) > end_t - margin)
    open_sessions.clear()
    bursts.roll(window, window_end - burst_w)
    elapsed = time.perf_counter() - began
    stats = log.stats
    if not acc.sessions:
        known = sum(acc.steps.values())
        raise ConfigError(
            f"{paths[0]}: no shopper session found in {stats.parsed:,} requests ({known:,} on {target.dialect} routes"
            + (f"; top unknown route: {unknown.most_common(1)[0][0]}" if unknown else "")
            + ("; dropped: " + ", ".join(f"{n} {why}" for why, n in acc.dropped.most_common(3)) if acc.dropped else "")
            + ")"
        )
    stages, arrival_report = _fit_arrivals(acc, options)
    zipf = fit_zipf(acc.items, catalogue=options.catalogue, seed=options.seed)
    journey: dict[str, Any] = {}
    think = _quantile_range(acc.think, integer=False)
    views = _quantile_range(acc.views, integer=True)
    if think:
        journey["think_time"] = think
    if views:
        journey["session_actions"] = views
    if zipf["exponent"] is not None:
        journey["zipf_exponent"] = zipf["exponent"]
        if not zipf["fits"]:
            total = sum(acc.items.values())
            journey["hot_skus"] = {item: round(n / total, 5) for item, n in acc.items.most_common(20)}
    ratios = {
        "search": acc.search,
        "view_to_cart": acc.view_to_cart,
        "cart_edit": acc.cart_edit,
        "cart_to_checkout": acc.cart_to_checkout,
        "checkout_to_pay": acc.checkout_to_pay,
        "coupon": acc.coupon,
    }
    not_fitted: dict[str, str] = {}
    fitted_ratios: dict[str, float] = {}
    for name, r in ratios.items():
        if name == "coupon" and not acc.coupons_logged:
            not_fitted[name] = "n/a: the log has no coupon field (the storefront sends the coupon in the order body); the default stays"
            continue
        if name == "checkout_to_pay" and "pay" not in shop.OFFERS:
            not_fitted[name] = f"n/a: {target.dialect} has no payment step"
            continue
        v = r.value()
        if v is None:
            not_fitted[name] = "n/a: no session reached this branch"
            continue
        fitted_ratios[name] = round(v, 4)
    homes = acc.steps.get("home", 0) / acc.sessions
    if not options.entry and homes > 1.5:
        not_fitted["sessions"] = f"sessions hold {homes:.1f} home requests each: back-to-back visits without an idle gap? try --entry home"
    not_fitted["login_ratio"] = "not fitted: a session that signed in but never used the cart looks the same as one that did not sign in"
    journey["ratios"] = fitted_ratios
    visit = acc.visit_seconds.mean() or 1.0
    visit_p95 = acc.visit_seconds.quantile(0.95) if acc.visit_seconds.n else visit
    peak = max((st["rate"] for st in stages), default=0.0)
    # the slow visits hold users longest: size the pool on the p95 visit, not the mean (a shop slower than the log's
    # at its first sign-ins dropped 14 % of arrivals with a mean-sized pool)
    pool = max(1, min(1_000_000, int(math.ceil(peak * max(visit_p95, visit, 0.25) * 2)) + 1))
    report = {
        "inputs": {
            "files": [str(p) for p in paths],
            "format": options.fmt,
            "lines": stats.lines,
            "parsed": stats.parsed,
            "bad_lines": stats.bad,
            "bad_examples": stats.examples,
            "first": _iso(stats.first_t),
            "last": _iso(stats.last_t),
            "seconds": round(elapsed, 3),
            "lines_per_second": round(stats.lines / elapsed) if elapsed > 0 else None,
        },
        "routes": {
            "dialect": target.dialect,
            "steps": {(k or "(part of a step)"): v for k, v in acc.steps.most_common()},
            "unknown_requests": sum(unknown.values()),
            "unknown_routes": [{"route": r, "requests": n} for r, n in unknown.most_common(MAX_UNKNOWN)],
        },
        "sessions": {
            "fitted": acc.sessions,
            "key": "session field, else user, else address + user agent",
            "idle_gap_s": options.idle_gap,
            "entry_steps": sorted(options.entry),
            "dropped": dict(acc.dropped.most_common()),
            "cut_off_by_the_end_of_the_log": acc.cut,
            "closed_early_at_memory_bound": early_closed,
            "carts_forgotten_at_memory_bound": acc.carts_forgotten,
            "mean_visit_s": round(visit, 3),
            "p95_visit_s": round(visit_p95, 3),
            "users_seen": len(acc.visitors),
        },
        "arrivals": arrival_report,
        "ratios": {name: r.as_dict() for name, r in ratios.items()},
        "counts": {"product_views": acc.view_to_cart.den, "cart_adds": acc.view_to_cart.num, "orders": acc.orders, "paid_orders": acc.paid},
        "not_fitted": not_fitted,
        "think_time": think,
        "session_actions": views,
        "popularity": zipf,
        "flash_sale_candidates": [{**b, "at": _iso(b["at"])} for b in bursts.found],
    }
    return Fit(options=options, report=report, stages=stages, journey=journey, dialect=target.dialect, pool=pool)


def _iso(t: float | None) -> str | None:
    return None if t is None else dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="milliseconds")


def _fit_arrivals(acc: _Accumulator, options: FitOptions) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    res = options.resolution
    fine = list(acc.starts)
    origin = acc.origin or 0.0
    first = next((i for i, c in enumerate(fine) if c), 0)
    last = max((i for i, c in enumerate(fine) if c), default=0) + 1
    lo, hi = first, last
    window_note = None
    if options.window is not None:
        occurrences = _day_window(origin, origin + len(fine) * res, options.window, options.tz)
        best, best_n = None, -1
        for a, b in occurrences:
            i, j = max(int((a - origin) / res + 1e-6), 0), min(int(math.ceil((b - origin) / res - 1e-6)), len(fine))
            n = sum(fine[i:j]) if j > i else 0
            if n > best_n:
                best, best_n = (i, j), n
        if best is None or best_n <= 0:
            raise ConfigError("--window: no session starts in that time of day within the log")
        lo, hi = best
        window_note = {"from": _iso(origin + lo * res), "to": _iso(origin + hi * res), "sessions": best_n}
    fine = fine[lo:hi]
    factor = max(1, int(round(1.0 / res)))
    while len(fine) / factor > 20_000:  # a day at 1 s bins is 86,400: segment on coarser bins, refine after
        factor *= 2
    coarse = [sum(fine[i : i + factor]) for i in range(0, len(fine), factor)]
    segs = segment_rate(coarse, factor * res, max_stages=options.max_stages)
    coarse_edges = [a for a, _b in segs] + [len(coarse)]
    edges = _refine(fine, coarse_edges, factor) if len(segs) > 1 else [0, len(fine)]
    stages = []
    total_sessions = sum(fine)
    worst = 0.0
    dispersion_num = dispersion_den = 0.0
    for k, (a, b) in enumerate(zip(edges, edges[1:])):
        if b <= a:
            continue
        n = sum(fine[a:b])
        seconds = (b - a) * res
        rate = n / seconds
        # how far 1 s counts stray from the stage's rate: Poisson (≈ 1) or evenly spaced (≈ 0)
        per_s = [sum(fine[i : i + factor]) for i in range(a, b - factor + 1, factor)]
        if len(per_s) >= 3 and rate > 0:
            mean = sum(per_s) / len(per_s)
            var = sum((c - mean) ** 2 for c in per_s) / (len(per_s) - 1)
            dispersion_num += var
            dispersion_den += mean
            worst = max(worst, max(abs(c - mean) for c in per_s) / mean if mean else 0.0)
        stages.append({"start_s": round(a * res, 3), "duration_s": round(seconds, 3), "rate": rate, "sessions": n, "index": k})
    dispersion = dispersion_num / dispersion_den if dispersion_den else 0.0
    kind = "poisson" if dispersion > 0.5 else "constant"
    growth, compress = options.growth, options.compress
    peak = max(stages, key=lambda st: st["rate"])
    out = []
    for i, st in enumerate(stages, 1):
        rate = min(st["rate"] * growth * compress, MAX_RATE)
        name = "peak" if st is peak else f"s{i:02d}"
        out.append(
            {"name": name, "duration": st["duration_s"] / compress, "rate": rate, "observed_rate": st["rate"], "start_s": st["start_s"]}
        )
    report = {
        "sessions": total_sessions,
        "span_s": round(len(fine) * res, 3),
        "resolution_s": res,
        "stages": len(out),
        "kind": kind,
        "dispersion_index": round(dispersion, 3),
        "max_rel_deviation_1s": round(worst, 3),
        "peak": {"at": _iso(origin + (lo + int(peak["start_s"] / res)) * res), "t_s": peak["start_s"], "rate": round(peak["rate"], 4)},
        "growth": growth,
        "compress": compress,
        "window": window_note,
    }
    return out, report


# ---------------------------------------------------------------- the profile text


def _num(v: float) -> str:
    return f"{v:.6g}" if abs(v) >= 1e-4 or v == 0 else f"{v:.3e}"


def _duration(seconds: float) -> str:
    ms = round(seconds * 1000, 3)
    return f"{ms:g}ms" if ms < 1000 else f"{round(seconds, 3):g}s"


def _render_profile(fit: Fit, sources: list[str]) -> str:
    r, j, o = fit.report, fit.journey, fit.options
    arr = r["arrivals"]
    lines = [
        f"# Fitted by `peakload profile fit` from {', '.join(sources)[:300]}",
        f"# {r['inputs']['parsed']:,} requests, {r['sessions']['fitted']:,} sessions, {r['inputs']['first']} .. {r['inputs']['last']}.",
        f"# Peak {arr['peak']['rate']:.4g} sessions/s at {arr['peak']['at']}; growth x{o.growth:g}, time compressed x{o.compress:g}.",
        "# The fit report (.fit.json) says from how many samples each figure comes and what was left out.",
        "version: peakload/v1",
        f"name: {fit.options.name}",
        f"description: Fitted from {len(sources)} access log(s); {arr['stages']} arrival stages, {r['sessions']['fitted']} sessions.",
        f"seed: {o.seed}",
        "slo: null  # the fitted profile judges its own thresholds below; point slo: at your SLO spec to add it",
    ]
    users = r["sessions"]["users_seen"]
    lines += ["target:"]
    if fit.dialect != "storefront":
        lines.append(f"  dialect: {fit.dialect}")
    lines.append(f"  users: {max(users, fit.pool, 1)}  # accounts: one per pool user at least ({users:,} distinct visitors in the log)")
    if fit.dialect == "storefront" and o.catalogue:
        lines += ["embedded:", f"  skus: {max(o.catalogue, 100)}  # the catalogue Zipf was fitted over (--catalogue)"]
    lines += [
        "arrivals:",
        f"  kind: {arr['kind']}  # dispersion of 1 s counts {arr['dispersion_index']:g} (Poisson ~1, evenly spaced ~0)",
        "  stages:  # session starts per second, as logged" + (f" x{o.growth:g} growth" if o.growth != 1 else ""),
    ]
    for st in fit.stages:
        lines.append(
            f"    - {{name: {st['name']}, duration: {_duration(st['duration'])}, rate: {_num(st['rate'])}}}"
            f"  # log T+{st['start_s']:g}s, {st['observed_rate']:.4g}/s observed"
        )
    lines += [
        "  journey: shopper",
        f"  pool: {fit.pool}  # peak rate x p95 visit ({r['sessions']['p95_visit_s']:g} s) x 2 headroom",
        f"  max_pool: {max(fit.pool, 10_000)}",
        "journey:",
    ]
    for key in ("think_time", "session_actions"):
        q = j.get(key)
        if q is None:
            lines.append(f"  # {key}: not fitted (no samples); the default stays")
            continue
        qs = ", ".join(f"{k}: {_num(v)}" for k, v in q["quantiles"].items())
        what = "seconds from an answer to the next request" if key == "think_time" else "product views per visit"
        lines.append(f"  {key}: {{min: {_num(q['min'])}, max: {_num(q['max'])}, quantiles: {{{qs}}}}}  # {what}, n={q['n']:,}")
    pop = r["popularity"]
    if "zipf_exponent" in j:
        lines.append(
            f"  zipf_exponent: {j['zipf_exponent']:g}  # MLE over {pop['catalogue']:,} items from {pop['views']:,} views, "
            f"KS distance {pop['ks_distance']:g}, {pop['ks_if_zipf']:g} if Zipf ({'fits' if pop['fits'] else 'fits badly: hot_skus below'})"
        )
    if j.get("hot_skus"):
        lines.append("  hot_skus:  # share of product views of the top items (picked first; the rest by Zipf)")
        for item, share in j["hot_skus"].items():
            lines.append(f"    {_yaml_key(item)}: {share:g}")
    lines.append("  ratios:")
    for name, value in j["ratios"].items():
        rr = r["ratios"][name]
        lines.append(f"    {name}: {value:g}  # {rr['count']:,} of {rr['of']:,} (±{rr['stderr']:g})")
    for name, why in r["not_fitted"].items():
        if name in ("coupon", "checkout_to_pay", "search", "view_to_cart", "cart_edit", "cart_to_checkout"):
            lines.append(f"    # {name}: {why}")
    if r["flash_sale_candidates"]:
        lines.append(
            "# flash-sale candidates (bursts on one product): "
            + "; ".join(f"{b['item']} at {b['at']} ({b['views']} views in {b['window_s']:g}s)" for b in r["flash_sale_candidates"][:5])
        )
    lines += [
        "thresholds:",
        "  all:",
        "    - error_ratio < 1%",
        "  business:",
        "    - dropped_ratio < 1%",
        "",
    ]
    return "\n".join(lines)


def _yaml_key(text: str) -> str:
    return (
        text
        if re.fullmatch(r"[A-Za-z0-9_.-]+", text) and not text[0].isdigit()
        else '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    )
