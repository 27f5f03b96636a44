"""Dice similarity coefficient per tissue class (paper section 3, DSC).

Labels: 0 background, 1 CSF, 2 GM, 3 WM.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dnorm.metrics._checks import as_labels, same_shape


def dice(pred: np.ndarray, ref: np.ndarray, labels: Sequence[int] = (1, 2, 3)) -> dict[int, float]:
    """Dice coefficient ``2|P ∩ R| / (|P| + |R|)`` for each label.

    Args:
        pred: predicted label map, any shape (typically X×Y×Z), integer labels.
        ref: reference label map, same shape as ``pred``.
        labels: the classes to score.

    Returns:
        ``{label: dice}``. Convention for empty classes: if the label is absent from both ``pred``
        and ``ref`` the Dice is undefined and returned as ``nan``; if it is absent from exactly one
        of them the Dice is ``0.0``. No warning is emitted in either case.

    Raises:
        ValueError: if the shapes differ (both shapes are quoted) or ``labels`` is invalid.
    """
    pred = np.asarray(pred)
    ref = np.asarray(ref)
    same_shape(pred, ref)
    scores: dict[int, float] = {}
    for label in as_labels(labels):
        in_pred = pred == label
        in_ref = ref == label
        total = int(np.count_nonzero(in_pred)) + int(np.count_nonzero(in_ref))
        if total == 0:
            scores[label] = float("nan")
            continue
        both = int(np.count_nonzero(in_pred & in_ref))
        scores[label] = 2.0 * both / total
    return scores
