"""Dice per class: hand-computed cases, empty-class conventions, argument checks."""

import math
import warnings

import numpy as np
import pytest

from dnorm.metrics import dice


def two_cubes(side: int = 4, shift: int = 1, size: int = 10) -> tuple[np.ndarray, np.ndarray]:
    pred = np.zeros((size,) * 3, dtype=np.uint8)
    ref = np.zeros_like(pred)
    pred[2 : 2 + side, 2 : 2 + side, 2 : 2 + side] = 1
    ref[2 + shift : 2 + shift + side, 2 : 2 + side, 2 : 2 + side] = 1
    return pred, ref


@pytest.mark.parametrize("shift", [0, 1, 2, 3, 4])
def test_offset_cubes_known_dice(shift):
    pred, ref = two_cubes(side=4, shift=shift)
    # overlap (4 - shift) * 16 voxels; each cube 64 voxels
    assert dice(pred, ref, labels=(1,))[1] == pytest.approx((4 - shift) / 4)


def test_hand_counted_multiclass():
    ref = np.array([[0, 1, 1, 2], [2, 2, 3, 3]])
    pred = np.array([[0, 1, 2, 2], [2, 3, 3, 3]])
    scores = dice(pred, ref)
    assert scores[1] == pytest.approx(2 * 1 / (1 + 2))
    assert scores[2] == pytest.approx(2 * 2 / (3 + 3))
    assert scores[3] == pytest.approx(2 * 2 / (3 + 2))
    assert list(scores) == [1, 2, 3]
    assert all(type(v) is float for v in scores.values())


def test_empty_class_conventions():
    ref = np.array([[1, 1], [0, 0]])
    pred = np.array([[1, 0], [2, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = dice(pred, ref)
    assert scores[1] == pytest.approx(2 / 3)
    assert scores[2] == 0.0  # only in pred
    assert math.isnan(scores[3])  # in neither: undefined


def test_identical_is_one():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(6, 7, 8))
    assert dice(labels, labels) == {1: 1.0, 2: 1.0, 3: 1.0}


def test_shape_mismatch_quotes_shapes():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        dice(np.zeros((2, 3)), np.zeros((3, 2)))


@pytest.mark.parametrize("labels", [(), (1.5,), (1, 1), "ab", 3])
def test_bad_labels_rejected(labels):
    with pytest.raises(ValueError):
        dice(np.zeros((2, 2)), np.zeros((2, 2)), labels=labels)
