"""Intervals from utils.stats against textbook values."""

import math

import pytest

from utils.stats import difference_ci, fmt_rate, rate_ci


def test_wilson_interval_matches_the_textbook():
    p, low, high = rate_ci([1] * 8 + [0] * 2)  # 8 of 10: Wilson 95% interval [0.490, 0.943]
    assert p == 0.8 and low == pytest.approx(0.4902, abs=1e-3) and high == pytest.approx(0.9433, abs=1e-3)
    assert rate_ci([1] * 5)[2] == 1.0 and rate_ci([0] * 5)[1] == 0.0
    assert all(math.isnan(x) for x in rate_ci([]))
    assert fmt_rate([True, False]).endswith("(n=2)")


def test_difference_interval_covers_the_difference_and_shrinks_with_n():
    a, b = [1, 1, 1, 0] * 25, [1, 0, 0, 0] * 25
    diff, low, high = difference_ci(a, b)
    assert diff == pytest.approx(0.5) and low < 0.5 < high
    _, low_big, high_big = difference_ci(a * 4, b * 4)
    assert high_big - low_big < high - low
    diff, low, high = difference_ci([1, 0, 1], [0, 0, 0, 0, 1])  # unequal lengths: independent groups
    assert low <= diff <= high
    with pytest.raises(ValueError):
        difference_ci([1, 0], [1, 0, 1], paired=True)
