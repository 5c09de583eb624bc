"""Zipf popularity: the draws really follow Zipf(s), and the check would notice a wrong s."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from scenarios.zipf import ZipfSampler, rank_permutation, zipf_pmf

# Upper 0.1 % point of the chi-square distribution with 19 degrees of freedom
# (NIST/SEMATECH e-Handbook, table 1.3.6.7.4).
DF = 19
CHI2_CRIT_999 = 43.820
N_ITEMS = 10_000
DRAWS = 50_000


def _bins(n: int) -> list[tuple[int, int]]:
    """20 rank ranges [lo, hi] covering 1..n: single hot ranks first, then wider
    blocks for the tail, so every bin expects plenty of draws (df = 19)."""
    edges = [1, 2, 3, 4, 5, 6, 8, 10, 13, 17, 23, 31, 43, 60, 90, 150, 300, 800, 2500, 5000, n + 1]
    return list(zip(edges[:-1], [e - 1 for e in edges[1:]]))


def chi_square(ranks: list[int], *, n: int, s: float) -> tuple[float, int]:
    """Pearson's statistic of ``ranks`` against Zipf(n, s), binned; returns (chi2, df)."""
    pmf = zipf_pmf(n, s)
    bins = _bins(n)
    # Pearson's approximation needs enough expected draws per bin.
    assert all(sum(pmf[lo - 1 : hi]) * len(ranks) >= 50 for lo, hi in bins)
    counts = Counter(ranks)
    stat = 0.0
    for lo, hi in bins:
        observed = sum(counts.get(k, 0) for k in range(lo, hi + 1))
        expected = sum(pmf[lo - 1 : hi]) * len(ranks)
        stat += (observed - expected) ** 2 / expected
    return stat, len(bins) - 1


def draws(s: float, seed: int, count: int = DRAWS) -> list[int]:
    sampler = ZipfSampler(N_ITEMS, s, rng=random.Random(seed))
    return [sampler.rank() for _ in range(count)]


@pytest.mark.parametrize("s", [0.8, 1.1, 1.5])
def test_draws_fit_zipf_by_chi_square(s: float) -> None:
    stat, df = chi_square(draws(s, seed=12345), n=N_ITEMS, s=s)
    assert df == DF
    assert stat < CHI2_CRIT_999, f"chi2={stat:.1f} >= {CHI2_CRIT_999} (df={df}): not Zipf({s})"


@pytest.mark.parametrize(("drawn", "claimed"), [(1.1, 1.0), (1.1, 1.2), (1.0, 1.1)])
def test_the_same_check_rejects_a_wrong_exponent(drawn: float, claimed: float) -> None:
    stat, df = chi_square(draws(drawn, seed=12345), n=N_ITEMS, s=claimed)
    assert df == DF
    assert stat > CHI2_CRIT_999, f"chi2={stat:.1f} did not reject Zipf({claimed}) for Zipf({drawn}) draws"


def test_same_seed_same_sequence_other_seed_other_sequence() -> None:
    assert draws(1.1, seed=7, count=200) == draws(1.1, seed=7, count=200)
    assert draws(1.1, seed=7, count=200) != draws(1.1, seed=8, count=200)


def test_hot_items_are_low_ranks_with_identity_mapping() -> None:
    sampler = ZipfSampler(1000, 1.1, rng=random.Random(1))
    top = Counter(sampler.item() for _ in range(20_000)).most_common(3)
    assert [item for item, _ in top] == [1, 2, 3]


def test_permutation_is_a_bijection_and_shared_by_seed() -> None:
    perm = rank_permutation(500, 42)
    assert sorted(perm[1:]) == list(range(1, 501))
    assert perm != rank_permutation(500, 43)
    a = ZipfSampler(500, 1.1, rng=random.Random(1), permutation_seed=42)
    b = ZipfSampler(500, 1.1, rng=random.Random(2), permutation_seed=42)
    # different users, one hot set: the hottest item is the same for both
    hot_a = Counter(a.item() for _ in range(5000)).most_common(1)[0][0]
    hot_b = Counter(b.item() for _ in range(5000)).most_common(1)[0][0]
    assert hot_a == hot_b == perm[1]
    assert perm[1:11] != tuple(range(1, 11))  # really permuted, not identity


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1 item"):
        ZipfSampler(0, 1.1, rng=random.Random(1))
    with pytest.raises(ValueError, match="exponent must be > 0"):
        ZipfSampler(10, 0, rng=random.Random(1))
    with pytest.raises(ValueError, match=r"within 1..10"):
        ZipfSampler(10, 1.0, rng=random.Random(1)).item_of_rank(11)
