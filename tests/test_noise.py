"""The noise of share-link answers (collector.reports.noise, release): its distribution,
its calibration to the stated epsilon, its determinism, and the counts it leaves.

Seeds here are fixed, so every figure is reproducible: each test passes or fails the
same way on every run. The tolerances are set so that a scale off by a factor of 2
either way fails (checked in each test against the variance such a scale would give).
"""

from __future__ import annotations

import hashlib
import math
import statistics
from fractions import Fraction

import pytest

from collector.reports.budget import PrivacyBudget
from collector.reports.contribution import SHARE_BOUNDS
from collector.reports.noise import SeededBits, as_fraction, laplace_scale, noise, variance
from collector.reports.release import ReleaseCache, Releaser, ShareAccess, Table
from collector.storage import Store

DRAWS = 20_000
SECRET = bytes(range(32))


def seed(number: int) -> bytes:
    return hashlib.sha256(f"test-{number}".encode()).digest()


def draws(scale: Fraction, count: int = DRAWS) -> list[int]:
    return [noise(seed(number), "count", scale) for number in range(count)]


@pytest.mark.parametrize("scale", [Fraction(1, 2), Fraction(2), Fraction(8)])
def test_discrete_laplace_draws_have_the_stated_mean_spread_and_zero(scale: Fraction) -> None:
    found = draws(scale)
    expected = variance(scale)  # 2a / (1 - a)^2, a = exp(-1 / scale)
    # Mean: 0 within 4 standard errors.
    assert abs(statistics.fmean(found)) < 4 * math.sqrt(expected / DRAWS)
    # Variance within 8%: its standard error here is about 1.6%; half or double the
    # scale moves it by a factor of 4 or more.
    ratio = statistics.pvariance(found, 0) / expected
    assert 0.92 < ratio < 1.08
    assert not 0.92 < variance(scale * 2) / expected < 1.08
    assert not 0.92 < variance(scale / 2) / expected < 1.08
    # The mass at 0 is (1 - a) / (1 + a), within 4 standard errors.
    a = math.exp(-1 / float(scale))
    zero = (1 - a) / (1 + a)
    assert abs(found.count(0) / DRAWS - zero) < 4 * math.sqrt(zero * (1 - zero) / DRAWS)
    # Symmetric: as many draws above 0 as below.
    above, below = sum(value > 0 for value in found), sum(value < 0 for value in found)
    assert abs(above - below) < 4 * math.sqrt(above + below)


@pytest.mark.parametrize("gamma", [Fraction(1, 3), Fraction(1), Fraction(5, 2)])
def test_bernoulli_of_exp_minus_gamma(gamma: Fraction) -> None:
    bits = SeededBits(seed(1))
    found = sum(bits.bernoulli_exp(gamma) for _ in range(DRAWS)) / DRAWS
    expected = math.exp(-float(gamma))
    assert abs(found - expected) < 4 * math.sqrt(expected * (1 - expected) / DRAWS)


def test_uniform_integers_have_no_bias() -> None:
    bits = SeededBits(seed(2))
    counts = [0] * 6
    for _ in range(DRAWS):
        counts[bits.below(6)] += 1
    # Chi-square with 5 degrees of freedom, below its 0.1% quantile (20.5).
    assert sum((count - DRAWS / 6) ** 2 / (DRAWS / 6) for count in counts) < 20.5


def test_the_same_seed_and_label_give_the_same_noise_and_others_independent_noise() -> None:
    scale = Fraction(4)
    assert [noise(seed(3), "a", scale) for _ in range(3)] == [noise(seed(3), "a", scale)] * 3
    first = [noise(seed(number), "a", scale) for number in range(5000)]
    other = [noise(seed(number), "b", scale) for number in range(5000)]
    assert first != other
    assert abs(statistics.correlation(first, other)) < 4 / math.sqrt(5000)


def test_epsilons_become_exact_fractions_and_scales_follow_sensitivity() -> None:
    assert as_fraction(0.1) == Fraction(1, 10) and as_fraction(1.0) == 1
    assert laplace_scale(8, Fraction(1, 2)) == 16
    with pytest.raises(ValueError):
        SeededBits(seed(4)).discrete_laplace(Fraction(0))


# ---------------------------------------------------------------- through the releaser

def releaser(store: Store, epsilon: float = 1.0, k: int = 5) -> Releaser:
    return Releaser(ShareAccess("noise-test", k, epsilon, 1000.0), SECRET,
                    PrivacyBudget(store), ReleaseCache())


def test_a_release_scales_each_count_to_its_bound_and_its_share_of_epsilon(
        store: Store) -> None:
    # 4,000 rows of a breakdown, two counts each: epsilon 1 gives each count 1/2. A visitor
    # counts in at most 4 rows, once per row as a visitor and 8 times as pageviews, so
    # the scales are 4 * 1 / (1/2) = 8 and 4 * 8 / (1/2) = 64.
    rows = [((number,), {"visitors": 1000.0, "pageviews": 5000.0}) for number in range(4000)]
    published = releaser(store).publish({"test": "calibration"}, [
        Table("rows", rows, ("visitors", "pageviews"), SHARE_BOUNDS.rows)])
    assert published.epsilon_per_count == Fraction(1, 2)
    for part, exact, scale in (("visitors", 1000, Fraction(8)), ("pageviews", 5000,
                                                                 Fraction(64))):
        errors = []
        for key, _ in rows:
            released = published.row("rows", key)
            assert released is not None
            errors.append(released[part] - exact)
        expected = variance(scale)
        assert abs(statistics.fmean(errors)) < 4 * math.sqrt(expected / len(errors))
        # The standard error of this ratio is about 3.5%; half or double the scale gives
        # a ratio of about 0.25 or 4.
        ratio = statistics.pvariance(errors, 0) / expected
        assert 0.88 < ratio < 1.12, (part, ratio)
        assert not 0.88 < variance(scale * 2) / expected < 1.12


def test_released_counts_are_never_negative_and_stay_consistent(store: Store) -> None:
    rows = [((number,), {"visitors": 5.0, "visits": 5.0, "bounces": 5.0, "pageviews": 5.0})
            for number in range(2000)]
    published = releaser(store).publish({"test": "consistency"}, [
        Table("rows", rows, ("visitors", "visits", "bounces", "pageviews"), 4)])
    for key, _ in rows:
        released = published.row("rows", key)
        assert released is not None
        assert min(released.values()) >= 0
        assert released["visits"] >= released["visitors"]
        assert released["bounces"] <= released["visits"]


def test_rows_under_k_are_suppressed_and_rows_at_k_are_released(store: Store) -> None:
    rows = [(("few",), {"visitors": 4.0}), (("enough",), {"visitors": 5.0})]
    published = releaser(store).publish({"test": "threshold"}, [
        Table("rows", rows, ("visitors",), 1)])
    assert published.row("rows", ("few",)) is None
    assert published.row("rows", ("enough",)) is not None
    assert published.suppressed == {"rows": [("few",)]}


def test_the_same_release_twice_is_the_same_and_paid_once(store: Store) -> None:
    rows = [(("a",), {"visitors": 40.0})]
    first = releaser(store).publish({"test": "twice"}, [Table("rows", rows, ("visitors",), 1)])
    # A fresh releaser (another request, another collector): no cache, the same store.
    again = releaser(store).publish({"test": "twice"}, [Table("rows", rows, ("visitors",), 1)])
    assert first.tables == again.tables
    assert (first.spending.epsilon, again.spending.epsilon) == (1.0, 0.0)
    # Other data under the same question is another release, with other noise.
    changed = releaser(store).publish({"test": "twice"}, [
        Table("rows", [(("a",), {"visitors": 41.0})], ("visitors",), 1)])
    assert changed.spending.epsilon == 1.0
