"""Discriminator evaluation: confusion matrix and accuracies (paper Fig. 5 and Table 7).

The discriminator of a K-dataset study has K + 1 classes: datasets 0..K−1 for real patches and
class K for generated (normalized) patches. Its target for a real patch from dataset d is d; for a
generated patch it is K, whatever the source dataset.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from dnorm.metrics._checks import as_int_vector

Normalize = Literal["all", "row"] | None


def _check_samples(
    true_domain: object, is_generated: object, predicted: object, n_domains: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Validate the three per-sample vectors (length N) and return them as int/bool arrays."""
    integral = isinstance(n_domains, (int, np.integer)) and not isinstance(n_domains, (bool, np.bool_))
    if not integral or n_domains < 1:
        raise ValueError(f"n_domains must be a positive integer, got {n_domains!r}")
    n_domains = int(n_domains)
    domain = as_int_vector(true_domain, "true_domain")
    generated = as_int_vector(is_generated, "is_generated")
    guess = as_int_vector(predicted, "predicted")
    if not (domain.shape == generated.shape == guess.shape):
        raise ValueError(
            "true_domain, is_generated and predicted must have the same length, got "
            f"{domain.shape}, {generated.shape} and {guess.shape}"
        )
    if np.any((domain < 0) | (domain >= n_domains)):
        bad = domain[(domain < 0) | (domain >= n_domains)][0]
        raise ValueError(f"true_domain values must be in [0, {n_domains - 1}], got {int(bad)}")
    if np.any((generated != 0) & (generated != 1)):
        bad = generated[(generated != 0) & (generated != 1)][0]
        raise ValueError(f"is_generated values must be 0/1 or booleans, got {int(bad)}")
    if np.any((guess < 0) | (guess > n_domains)):
        bad = guess[(guess < 0) | (guess > n_domains)][0]
        raise ValueError(f"predicted values must be in [0, {n_domains}], got {int(bad)}")
    return domain, generated.astype(bool), guess, n_domains


def confusion_matrix(
    true_domain: np.ndarray,
    is_generated: np.ndarray,
    predicted: np.ndarray,
    n_domains: int,
    normalize: Normalize = "all",
) -> np.ndarray:
    """The (2K × (K+1)) confusion matrix of the discriminator.

    Args:
        true_domain: shape (N,), the dataset 0..K−1 each patch comes from.
        is_generated: shape (N,), True for a generated (normalized) patch, False for a real one.
        predicted: shape (N,), the discriminator's predicted class 0..K (K = generated).
        n_domains: K.
        normalize: ``"all"`` (default, the paper's): divide by the number of samples, the whole
            matrix sums to 1; ``"row"``: each row sums to 1 (rows without samples are ``nan``);
            ``None``: raw counts.

    Returns:
        float64 array of shape (2K, K+1) (int64 when ``normalize`` is None). Row d (d < K) holds
        real patches from dataset d, row K + d generated patches from dataset d; column c the
        predicted class c. With no sample at all, the normalized matrices are all ``nan``.

    Raises:
        ValueError: on mismatched lengths, out-of-range values or an unknown ``normalize``.
    """
    if normalize not in ("all", "row", None):
        raise ValueError(f"normalize must be 'all', 'row' or None, got {normalize!r}")
    domain, generated, guess, k = _check_samples(true_domain, is_generated, predicted, n_domains)
    rows = domain + k * generated
    counts = np.zeros((2 * k, k + 1), dtype=np.int64)
    np.add.at(counts, (rows, guess), 1)
    if normalize is None:
        return counts
    if normalize == "all":
        total = np.full(counts.shape, counts.sum(), dtype=np.float64)
    else:
        total = np.broadcast_to(counts.sum(axis=1, keepdims=True), counts.shape).astype(np.float64)
    out = np.full(counts.shape, np.nan)
    np.divide(counts, total, out=out, where=total > 0)
    return out


def discriminator_accuracy(
    true_domain: np.ndarray,
    is_generated: np.ndarray,
    predicted: np.ndarray,
    n_domains: int,
) -> dict[str, float]:
    """Accuracy of the discriminator overall, on real patches and on generated patches.

    Arguments as in :func:`confusion_matrix` (vectors of shape (N,)). The target is the dataset
    index d for a real patch and K for a generated one.

    Returns:
        ``{"accuracy", "accuracy_real", "accuracy_generated", "n", "n_real", "n_generated"}``;
        accuracies are fractions in [0, 1], ``nan`` when their group has no sample; the ``n*``
        entries are sample counts (ints).
    """
    domain, generated, guess, k = _check_samples(true_domain, is_generated, predicted, n_domains)
    target = np.where(generated, k, domain)
    correct = guess == target

    def fraction(selected: np.ndarray) -> float:
        n = int(np.count_nonzero(selected))
        return float(np.count_nonzero(correct & selected)) / n if n else float("nan")

    everything = np.ones_like(generated)
    return {
        "accuracy": fraction(everything),
        "accuracy_real": fraction(~generated),
        "accuracy_generated": fraction(generated),
        "n": int(generated.size),
        "n_real": int(np.count_nonzero(~generated)),
        "n_generated": int(np.count_nonzero(generated)),
    }
