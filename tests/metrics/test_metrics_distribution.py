"""Intensity histograms and generalized Jensen–Shannon divergence."""

import math

import numpy as np
import pytest

from dnorm.metrics import intensity_histogram, jsd


def test_identical_rows_give_zero():
    rng = np.random.default_rng(0)
    row = rng.random(32)
    assert jsd(np.stack([row, row, row])) == pytest.approx(0.0, abs=1e-12)
    # raw counts and their scaled versions describe the same distribution
    assert jsd(np.stack([row, 10 * row])) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_disjoint_rows_give_log_n(n):
    histograms = np.eye(n, 2 * n) * 7.0
    assert jsd(histograms) == pytest.approx(math.log(n))


def test_two_distributions_by_hand():
    # P = (1, 0), Q = (1/2, 1/2): M = (3/4, 1/4); H(P) = 0, H(Q) = ln 2.
    expected = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)) - 0.5 * math.log(2)
    assert jsd([[1.0, 0.0], [0.5, 0.5]]) == pytest.approx(expected)
    assert jsd([[2, 0], [3, 3]]) == pytest.approx(expected)  # raw counts


def test_symmetric_and_bounded():
    rng = np.random.default_rng(1)
    rows = rng.random((4, 16)) * (rng.random((4, 16)) < 0.6)
    rows[:, 0] += 1.0  # no empty row
    value = jsd(rows)
    assert 0.0 <= value <= math.log(4)
    assert jsd(rows[::-1]) == pytest.approx(value)


@pytest.mark.parametrize(
    "bad, pattern",
    [
        ([1.0, 2.0], "2-D"),
        (np.ones((2, 2, 2)), "2-D"),
        ([[1.0, -1.0], [1.0, 1.0]], "non-negative"),
        ([[0.0, 0.0], [1.0, 1.0]], "positive sum"),
        ([[np.nan, 1.0], [1.0, 1.0]], "finite"),
        (np.zeros((0, 3)), "at least one row"),
    ],
)
def test_invalid_histograms_rejected(bad, pattern):
    with pytest.raises(ValueError, match=pattern):
        jsd(bad)


def test_histogram_fixed_bins_and_clipping():
    values = np.array([0.0, 0.1, 0.49, 0.5, 0.99, 1.0, -0.2, 1.3])
    counts = intensity_histogram(values, bins=2)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, [4, 4])  # -0.2 -> first bin; 1.0 and 1.3 -> last bin
    np.testing.assert_array_equal(intensity_histogram(values, bins=2, clip=False), [3, 3])
    assert intensity_histogram(np.zeros((3, 4, 5)), bins=256).sum() == 60


def test_histograms_feed_jsd():
    rng = np.random.default_rng(2)
    low = intensity_histogram(rng.uniform(0.0, 0.5, 1000), bins=8)
    high = intensity_histogram(rng.uniform(0.5, 1.0, 1000), bins=8)
    assert jsd(np.stack([low, high])) == pytest.approx(math.log(2))


@pytest.mark.parametrize(
    "kwargs",
    [{"bins": 0}, {"bins": 2.5}, {"value_range": (1.0, 0.0)}, {"value_range": (0.0, np.inf)}, {"value_range": 1}],
)
def test_histogram_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        intensity_histogram(np.zeros(3), **kwargs)


def test_histogram_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        intensity_histogram(np.array([0.1, np.nan]))
