"""Averages over subjects and seeds, their text form and paired tests (dnorm.evaluation.summary)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dnorm.evaluation.summary import formatted, mean_sd, paired_test, per_seed, per_subject_mean_dice
from evaluation_builders import frame, segmentation_rows


def two_seed_scores() -> pd.DataFrame:
    """Seed 0: subjects s1 (CSF .8, GM .6, WM .7) and s2 (all .9); seed 1: all .5 on both.
    Another dataset and another experiment with other values must not leak in."""
    dice = {(0, "s1"): (0.8, 0.6, 0.7), (0, "s2"): (0.9, 0.9, 0.9), (1, "s1"): 0.5, (1, "s2"): 0.5}
    mhd = {(0, "s1"): (1.0, 2.0, np.nan), (0, "s2"): (3.0, 4.0, 5.0), (1, "s1"): 1.0, (1, "s2"): 1.0}
    return frame(segmentation_rows("a", "iseg", lambda seed, s: dice[(seed, s)], lambda seed, s: mhd[(seed, s)],
                                   seeds=(0, 1)),
                 segmentation_rows("a", "mrbrains", 0.1, 9.0, seeds=(0, 1)),
                 segmentation_rows("b", "iseg", 0.3, seeds=(0, 1)))


def test_per_seed_averages_subjects_then_classes():
    table = per_seed(two_seed_scores(), "a", ["iseg"])
    assert list(table.index) == [0, 1]
    assert table.loc[0, ("dice", "CSF")] == pytest.approx(0.85)
    assert table.loc[0, ("dice", "GM")] == pytest.approx(0.75)
    assert table.loc[0, ("dice", "WM")] == pytest.approx(0.8)
    assert table.loc[0, ("dice", "mean")] == pytest.approx(0.8)
    assert table.loc[1, ("dice", "mean")] == pytest.approx(0.5)


def test_per_seed_leaves_undefined_distances_out():
    table = per_seed(two_seed_scores(), "a", ["iseg"])
    assert table.loc[0, ("mhd", "WM")] == pytest.approx(5.0)  # s1's WM distance is undefined
    assert table.loc[0, ("mhd", "mean")] == pytest.approx((2.0 + 3.0 + 5.0) / 3)


def test_per_seed_without_dataset_filter_uses_every_test_subject():
    table = per_seed(two_seed_scores(), "a")
    assert table.loc[1, ("dice", "mean")] == pytest.approx((0.5 + 0.5 + 0.1 + 0.1) / 4)


def test_per_seed_of_a_missing_experiment_is_an_error():
    with pytest.raises(ValueError, match="'c'"):
        per_seed(two_seed_scores(), "c")
    with pytest.raises(ValueError, match="abide"):
        per_seed(two_seed_scores(), "a", ["abide"])


def test_per_subject_mean_dice_averages_classes_then_seeds():
    series = per_subject_mean_dice(two_seed_scores(), "a")
    assert series[("iseg", "s1")] == pytest.approx((0.7 + 0.5) / 2)
    assert series[("iseg", "s2")] == pytest.approx((0.9 + 0.5) / 2)
    assert series[("mrbrains", "s1")] == pytest.approx(0.1)
    assert len(series) == 4


def test_mean_sd_by_hand():
    mean, sd, n = mean_sd([0.8, 0.9])
    assert (mean, n) == (pytest.approx(0.85), 2)
    assert sd == pytest.approx(math.sqrt(0.005))  # sample sd: sqrt(2 * 0.05**2 / 1)
    mean, sd, n = mean_sd([0.4, np.nan, 0.6, np.inf])
    assert (mean, n) == (pytest.approx(0.5), 2)
    mean, sd, n = mean_sd([0.7])
    assert mean == pytest.approx(0.7) and math.isnan(sd) and n == 1
    mean, sd, n = mean_sd([])
    assert math.isnan(mean) and math.isnan(sd) and n == 0


@pytest.mark.parametrize("values, digits, text", [
    ([0.8, 0.9], 3, "0.850 ± 0.071"),
    (pd.Series([0.8, 0.9]), 3, "0.850 ± 0.071"),
    ([0.842], 3, "0.842"),
    ([0.842, np.nan], 3, "0.842"),
    ([np.nan], 3, "n/a"),
    ([], 3, "n/a"),
    ([0.25, 0.5], 4, "0.3750 ± 0.1768"),
    ([55.0, 45.0, 50.0], 1, "50.0 ± 5.0"),
])
def test_formatted(values, digits, text):
    assert formatted(values, digits) == text


def test_paired_test_matches_scipy_on_the_common_subjects():
    a = pd.Series({"s1": 0.90, "s2": 0.80, "s3": 0.85, "s4": 0.70, "s5": 0.95, "only_a": 0.1})
    b = pd.Series({"s1": 0.80, "s2": 0.85, "s3": 0.65, "s4": 0.55, "s5": 0.65, "only_b": 0.9})
    differences = [0.10, -0.05, 0.20, 0.15, 0.30]
    result = paired_test(a, b)
    assert result["n"] == 5
    assert result["mean_difference"] == pytest.approx(np.mean(differences))
    assert result["p_value"] == pytest.approx(stats.wilcoxon(differences).pvalue)
    # Exact two-sided signed-rank test: only the smallest |d| is negative, W- = 1 of 2**5 = 32 sign patterns
    # give W- <= 1 twice (W- = 0, 1): p = 2 * 2 / 32.
    assert result["p_value"] == pytest.approx(0.125)


def test_paired_test_all_positive_differences_by_hand():
    a = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0])
    result = paired_test(a + np.array([0.1, 0.2, 0.3, 0.4, 0.5]), a)
    assert result["p_value"] == pytest.approx(2 / 32)
    assert result["mean_difference"] == pytest.approx(0.3)


def test_paired_test_is_sign_antisymmetric():
    a = pd.Series({"s1": 0.9, "s2": 0.7, "s3": 0.8, "s4": 0.6})
    b = pd.Series({"s1": 0.8, "s2": 0.75, "s3": 0.6, "s4": 0.3})
    forward, backward = paired_test(a, b), paired_test(b, a)
    assert forward["mean_difference"] == pytest.approx(-backward["mean_difference"])
    assert forward["p_value"] == pytest.approx(backward["p_value"])


def test_paired_test_works_on_dataset_subject_index():
    index = pd.MultiIndex.from_tuples([("iseg", "s1"), ("iseg", "s2"), ("mrbrains", "s1")], names=["dataset", "subject"])
    a, b = pd.Series([0.9, 0.8, 0.7], index=index), pd.Series([0.8, 0.6, 0.4], index=index)
    result = paired_test(a, b)
    assert result["n"] == 3
    assert result["p_value"] == pytest.approx(stats.wilcoxon([0.1, 0.2, 0.3]).pvalue)


def test_paired_test_undefined_cases_give_nan():
    one = paired_test(pd.Series({"s1": 0.9}), pd.Series({"s1": 0.8}))
    assert one["n"] == 1 and one["mean_difference"] == pytest.approx(0.1) and math.isnan(one["p_value"])
    same = paired_test(pd.Series({"s1": 0.9, "s2": 0.8}), pd.Series({"s1": 0.9, "s2": 0.8}))
    assert same["n"] == 2 and same["mean_difference"] == 0 and math.isnan(same["p_value"])
    disjoint = paired_test(pd.Series({"s1": 0.9}), pd.Series({"s2": 0.8}))
    assert disjoint["n"] == 0 and math.isnan(disjoint["mean_difference"]) and math.isnan(disjoint["p_value"])


def test_paired_test_drops_subjects_with_a_nan_score():
    a = pd.Series({"s1": 0.9, "s2": np.nan, "s3": 0.7})
    b = pd.Series({"s1": 0.8, "s2": 0.5, "s3": 0.4})
    result = paired_test(a, b)
    assert result["n"] == 2
    assert result["mean_difference"] == pytest.approx(0.2)
    assert result["p_value"] == pytest.approx(stats.wilcoxon([0.1, 0.3]).pvalue)


def test_per_subject_mean_dice_by_seed_keeps_each_training():
    rows = pd.DataFrame({"experiment": "e", "dataset": "iseg", "subject": ["s1"] * 6, "seed": [1, 1, 1, 2, 2, 2],
                         "class": ["CSF", "GM", "WM"] * 2, "dice": [0.6, 0.9, 0.9, 0.9, 0.9, 0.9]})
    assert per_subject_mean_dice(rows, "e").tolist() == pytest.approx([0.85])
    by_seed = per_subject_mean_dice(rows, "e", by_seed=True)
    assert by_seed.index.names == ["dataset", "subject", "seed"]
    assert by_seed.tolist() == pytest.approx([0.8, 0.9])
