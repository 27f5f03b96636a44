"""Discriminator confusion matrix (2K x (K+1)) and accuracies."""

import math
import warnings

import numpy as np
import pytest

from dnorm.metrics import confusion_matrix, discriminator_accuracy

# K = 2 datasets; class 2 = generated.
TRUE_DOMAIN = [0, 0, 1, 1, 0, 1, 1, 0]
IS_GENERATED = [False, False, False, True, True, True, True, False]
PREDICTED = [0, 2, 1, 2, 0, 2, 1, 0]
COUNTS = np.array(
    [
        [2, 0, 1],  # real from dataset 0
        [0, 1, 0],  # real from dataset 1
        [1, 0, 0],  # generated from dataset 0
        [0, 1, 2],  # generated from dataset 1
    ]
)


def test_hand_case_counts_and_normalizations():
    raw = confusion_matrix(TRUE_DOMAIN, IS_GENERATED, PREDICTED, 2, normalize=None)
    np.testing.assert_array_equal(raw, COUNTS)
    overall = confusion_matrix(TRUE_DOMAIN, IS_GENERATED, PREDICTED, 2)
    assert overall.shape == (4, 3)
    np.testing.assert_allclose(overall, COUNTS / 8)
    assert overall.sum() == pytest.approx(1.0)
    rows = confusion_matrix(TRUE_DOMAIN, IS_GENERATED, PREDICTED, 2, normalize="row")
    np.testing.assert_allclose(rows, COUNTS / COUNTS.sum(axis=1, keepdims=True))


def test_hand_case_accuracy():
    result = discriminator_accuracy(TRUE_DOMAIN, IS_GENERATED, PREDICTED, 2)
    # correct: real rows diag (2 + 1), generated -> class 2 (0 + 2)
    assert result["accuracy"] == pytest.approx(5 / 8)
    assert result["accuracy_real"] == pytest.approx(3 / 4)
    assert result["accuracy_generated"] == pytest.approx(2 / 4)
    assert (result["n"], result["n_real"], result["n_generated"]) == (8, 4, 4)


def test_accuracy_equals_trace_of_targets():
    rng = np.random.default_rng(0)
    k, n = 3, 200
    domain = rng.integers(0, k, n)
    generated = rng.random(n) < 0.5
    predicted = rng.integers(0, k + 1, n)
    matrix = confusion_matrix(domain, generated, predicted, k)
    real_correct = np.trace(matrix[:k, :k])
    generated_correct = matrix[k:, k].sum()
    assert discriminator_accuracy(domain, generated, predicted, k)["accuracy"] == pytest.approx(
        real_correct + generated_correct
    )


def test_missing_groups_are_nan_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        only_real = discriminator_accuracy([0, 1], [False, False], [0, 0], 2)
        rows = confusion_matrix([0, 1], [False, False], [0, 0], 2, normalize="row")
        empty = confusion_matrix([], [], [], 2)
    assert only_real["accuracy"] == pytest.approx(0.5)
    assert math.isnan(only_real["accuracy_generated"])
    assert np.isnan(rows[2:]).all() and not np.isnan(rows[:2]).any()
    assert empty.shape == (4, 3) and np.isnan(empty).all()


@pytest.mark.parametrize(
    "args, pattern",
    [
        (([0, 2], [0, 0], [0, 0], 2), "true_domain"),
        (([0, 1], [0, 2], [0, 0], 2), "is_generated"),
        (([0, 1], [0, 0], [0, 3], 2), "predicted"),
        (([0, 1], [0, 0], [0], 2), "same length"),
        (([0, 1], [0, 0], [0, 0], 0), "n_domains"),
        (([0.5, 1], [0, 0], [0, 0], 2), "integers"),
        (([[0, 1]], [0, 0], [0, 0], 2), "1-D"),
    ],
)
def test_invalid_inputs_rejected(args, pattern):
    with pytest.raises(ValueError, match=pattern):
        confusion_matrix(*args)
    with pytest.raises(ValueError, match=pattern):
        discriminator_accuracy(*args)


def test_unknown_normalize_rejected():
    with pytest.raises(ValueError, match="normalize"):
        confusion_matrix([0], [0], [0], 1, normalize="columns")
