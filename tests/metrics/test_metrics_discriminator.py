"""Discriminator confusion matrix (2K x (K+1)) and accuracies."""

import math
import warnings

import numpy as np
import pytest

from dnorm.metrics import (confusion_accuracy, confusion_matrix, correct_cells, discriminator_accuracy,
                           discriminator_scores, generated_probability)

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


# Hand-built logits, K = 2 (classes iSEG, MRBrainS, generated); argmax in the comment.
LOGITS = np.array([
    [3.0, 0.0, 1.0],   # real iSEG -> iSEG (right)
    [0.0, 0.0, 2.0],   # real iSEG -> generated (wrong)
    [0.0, 2.0, 1.0],   # real MRBrainS -> MRBrainS (right)
    [1.0, 0.0, 0.0],   # real MRBrainS -> iSEG (wrong)
    [0.0, 0.0, 5.0],   # generated from iSEG -> generated (right)
    [4.0, 0.0, 1.0],   # generated from iSEG -> iSEG (wrong: passes for real)
    [0.0, 3.0, 0.0],   # generated from MRBrainS -> MRBrainS (wrong)
    [0.0, 1.0, 1.5],   # generated from MRBrainS -> generated (right)
])
LOGIT_DOMAIN = [0, 0, 1, 1, 0, 0, 1, 1]
LOGIT_GENERATED = [False] * 4 + [True] * 4


def test_accuracy_on_hand_built_logits_is_the_papers_definition():
    scores = discriminator_scores(LOGITS, LOGIT_DOMAIN, LOGIT_GENERATED)
    # Paper: right over ALL patches, real (target: dataset) and generated (target: K = 2).
    assert scores["accuracy"] == pytest.approx(4 / 8)
    assert scores["accuracy_real"] == pytest.approx(2 / 4)
    assert scores["accuracy_generated"] == pytest.approx(2 / 4)
    softmax = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
    assert scores["p_generated_real"] == pytest.approx(softmax[:4, 2].mean())
    assert scores["p_generated_generated"] == pytest.approx(softmax[4:, 2].mean())


def test_d_that_calls_every_generated_patch_real_scores_half_on_balanced_patches():
    k, per_dataset = 3, 20
    domain = np.repeat(np.arange(k), per_dataset)
    logits = np.full((2 * domain.size, k + 1), -4.0)
    logits[np.arange(2 * domain.size), np.tile(domain, 2)] = 4.0  # real and generated: "my dataset"
    generated = np.repeat([False, True], domain.size)
    scores = discriminator_scores(logits, np.tile(domain, 2), generated)
    assert scores["accuracy"] == pytest.approx(0.5)
    assert (scores["accuracy_real"], scores["accuracy_generated"]) == (pytest.approx(1.0), pytest.approx(0.0))
    assert scores["p_generated_real"] == pytest.approx(scores["p_generated_generated"]) and scores["p_generated_real"] < 0.01


def test_correct_cells_and_accuracy_from_counts():
    np.testing.assert_array_equal(correct_cells(2), [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])
    assert confusion_accuracy(COUNTS) == discriminator_accuracy(TRUE_DOMAIN, IS_GENERATED, PREDICTED, 2)
    with pytest.raises(ValueError, match=r"\(2K, K\+1\).*\(4, 4\)"):
        confusion_accuracy(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="non-negative, got -1"):
        confusion_accuracy(COUNTS - np.eye(4, 3, dtype=int))  # cell (2, 2) of 0 becomes -1


def test_generated_probability_is_a_stable_softmax():
    probability = generated_probability([[0.0, 0.0], [1000.0, 1000.0], [-1000.0, 0.0]])
    np.testing.assert_allclose(probability, [0.5, 0.5, 1.0])
    with pytest.raises(ValueError, match="finite, got nan"):
        generated_probability([[0.0, np.nan]])
    with pytest.raises(ValueError, match=r"\(N, K\+1\).*\(3,\)"):
        generated_probability([0.0, 1.0, 2.0])
