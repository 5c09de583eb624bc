"""Zipf(s) popularity over a catalogue: a few hot SKUs, a long tail.

Rank ``k`` (1-based) is drawn with probability ``k**-s / H(N, s)``. The CDF is
computed once per ``(N, s)`` per process and shared (read-only) by every
sampler; each sampler owns its seeded :class:`random.Random`, so a user's
sequence of picks is reproducible. A rank maps to an item number either as is
(rank 1 = item 1, the hottest) or through a permutation seeded once per run,
so "hot" is the same set of SKUs for every user.

Usage::

    sampler = ZipfSampler(10_000, 1.1, rng=random.Random(7))
    sampler.rank()          # 1..10000, low ranks far more often
    sampler.item()          # item number after the rank -> item mapping
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random

__all__ = ["ZipfSampler", "zipf_cdf", "zipf_pmf", "rank_permutation"]


@functools.lru_cache(maxsize=16)
def zipf_cdf(n: int, s: float) -> tuple[float, ...]:
    """Cumulative probabilities of ranks ``1..n`` (last entry exactly 1.0).

    Usage: ``zipf_cdf(10_000, 1.1)[0]`` is P(rank == 1).
    """
    if n < 1:
        raise ValueError(f"a Zipf catalogue needs at least 1 item, got {n}")
    if s <= 0:
        raise ValueError(f"the Zipf exponent must be > 0, got {s}")
    cum = list(itertools.accumulate(k**-s for k in range(1, n + 1)))
    total = cum[-1]
    out = [c / total for c in cum]
    out[-1] = 1.0  # rounding must never leave a draw past the end
    return tuple(out)


def zipf_pmf(n: int, s: float) -> list[float]:
    """P(rank == k) for ``k = 1..n`` (index 0 is rank 1).

    Usage: ``zipf_pmf(100, 1.0)[:3]``
    """
    cdf = zipf_cdf(n, s)
    return [cdf[0], *(b - a for a, b in zip(cdf, cdf[1:]))]


@functools.lru_cache(maxsize=16)
def rank_permutation(n: int, seed: int) -> tuple[int, ...]:
    """A seeded bijection rank -> item number, both 1-based (index 0 unused).

    Usage: ``rank_permutation(100, 42)[1]`` is the hottest item's number.
    """
    items = list(range(1, n + 1))
    random.Random(f"peakload-zipf-permutation:{seed}").shuffle(items)
    return (0, *items)


class ZipfSampler:
    """Seeded Zipf(s) draws over ``n`` items.

    ``permutation_seed=None`` keeps identity mapping (rank k = item k);
    an int maps ranks through :func:`rank_permutation` (same seed = same hot set).

    Usage::

        ZipfSampler(500, 1.1, rng=random.Random(1), permutation_seed=42).item()
    """

    __slots__ = ("n", "s", "_cdf", "_rng", "_perm")

    def __init__(self, n: int, s: float, *, rng: random.Random, permutation_seed: int | None = None) -> None:
        self.n = n
        self.s = s
        self._cdf = zipf_cdf(n, s)
        self._rng = rng
        self._perm = rank_permutation(n, permutation_seed) if permutation_seed is not None else None

    def rank(self) -> int:
        """One rank in ``1..n`` (1 = most popular)."""
        return bisect.bisect_left(self._cdf, self._rng.random()) + 1

    def item(self) -> int:
        """One item number in ``1..n`` after the rank -> item mapping."""
        r = self.rank()
        return self._perm[r] if self._perm is not None else r

    def item_of_rank(self, rank: int) -> int:
        """The item number that rank ``rank`` maps to."""
        if not 1 <= rank <= self.n:
            raise ValueError(f"rank must be within 1..{self.n}, got {rank}")
        return self._perm[rank] if self._perm is not None else rank
