"""Discriminator evaluation: confusion matrix and accuracies (paper Fig. 9 and Table 7).

The discriminator of a K-dataset study has K + 1 classes: datasets 0..K−1 for real patches and
class K for generated (normalized) patches. Its target for a real patch from dataset d is d; for a
generated patch it is K, whatever the source dataset. The paper's "discriminator accuracy" is the
share of ALL patches, real and generated, classified as their target: a D that calls every
generated patch real (and every real patch right) scores 50 % on balanced patches.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from dnorm.metrics._checks import as_int_vector

Normalize = Literal["all", "row"] | None


def _check_n_domains(n_domains: object) -> int:
    integral = isinstance(n_domains, (int, np.integer)) and not isinstance(n_domains, (bool, np.bool_))
    if not integral or n_domains < 1:
        raise ValueError(f"n_domains must be a positive integer, got {n_domains!r}")
    return int(n_domains)


def _check_samples(
    true_domain: object, is_generated: object, predicted: object, n_domains: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Validate the three per-sample vectors (length N) and return them as int/bool arrays."""
    n_domains = _check_n_domains(n_domains)
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
    weights: np.ndarray | None = None,
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
        weights: optional shape (N,) finite values summed per cell instead of counting each
            sample once (e.g. D's P(generated), to average it per cell); only with
            ``normalize=None``.

    Returns:
        float64 array of shape (2K, K+1) (int64 when ``normalize`` is None). Row d (d < K) holds
        real patches from dataset d, row K + d generated patches from dataset d; column c the
        predicted class c. With no sample at all, the normalized matrices are all ``nan``. With
        ``weights``: float64 sums of the weights per cell.

    Raises:
        ValueError: on mismatched lengths, out-of-range values or an unknown ``normalize``.
    """
    if normalize not in ("all", "row", None):
        raise ValueError(f"normalize must be 'all', 'row' or None, got {normalize!r}")
    domain, generated, guess, k = _check_samples(true_domain, is_generated, predicted, n_domains)
    rows = domain + k * generated
    if weights is not None:
        if normalize is not None:
            raise ValueError(f"weights need normalize=None, got normalize={normalize!r}")
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != domain.shape or not np.all(np.isfinite(weights)):
            raise ValueError(f"weights must be {domain.shape} finite values, got shape {weights.shape}")
        sums = np.zeros((2 * k, k + 1))
        np.add.at(sums, (rows, guess), weights)
        return sums
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


def correct_cells(n_domains: int) -> np.ndarray:
    """Boolean (2K × (K+1)) mask of the confusion cells where D is right: (d, d) for a real patch
    of dataset d, (K + d, K) for a generated one."""
    k = _check_n_domains(n_domains)
    mask = np.zeros((2 * k, k + 1), dtype=bool)
    mask[np.arange(k), np.arange(k)] = True
    mask[k:, k] = True
    return mask


def confusion_accuracy(counts: np.ndarray) -> dict[str, float]:
    """Accuracies from a raw-count confusion matrix of shape (2K, K+1) (:func:`confusion_matrix`
    with ``normalize=None``).

    Returns:
        ``{"accuracy", "accuracy_real", "accuracy_generated", "n", "n_real", "n_generated"}``:
        ``accuracy`` is the paper's (correct over all real and generated patches),
        ``accuracy_real`` the dataset accuracy on real patches, ``accuracy_generated`` the share of
        generated patches called "generated"; fractions in [0, 1], ``nan`` for a group without
        samples; the ``n*`` entries are sample counts (ints).

    Raises:
        ValueError: on a matrix that is not (2K, K+1) with K ≥ 1, or has negative counts.
    """
    counts = np.asarray(counts)
    k = counts.shape[-1] - 1 if counts.ndim == 2 else 0
    if k < 1 or counts.shape[0] != 2 * k:
        raise ValueError(f"counts must have shape (2K, K+1) with K >= 1, got {counts.shape}")
    if np.any(counts < 0):
        raise ValueError(f"counts must be non-negative, got {counts.min().item()!r}")
    correct = np.where(correct_cells(k), counts, 0)

    def fraction(rows: slice) -> float:
        n = counts[rows].sum()
        return float(correct[rows].sum() / n) if n else float("nan")

    return {
        "accuracy": fraction(slice(None)),
        "accuracy_real": fraction(slice(0, k)),
        "accuracy_generated": fraction(slice(k, None)),
        "n": int(counts.sum()),
        "n_real": int(counts[:k].sum()),
        "n_generated": int(counts[k:].sum()),
    }


def discriminator_accuracy(
    true_domain: np.ndarray,
    is_generated: np.ndarray,
    predicted: np.ndarray,
    n_domains: int,
) -> dict[str, float]:
    """Accuracy of the discriminator overall (the paper's), on real and on generated patches.

    Arguments as in :func:`confusion_matrix` (vectors of shape (N,)); result as
    :func:`confusion_accuracy`.
    """
    return confusion_accuracy(confusion_matrix(true_domain, is_generated, predicted, n_domains, normalize=None))


def generated_probability(logits: np.ndarray) -> np.ndarray:
    """Softmax probability of the "generated" class (the last column) per sample.

    Args:
        logits: shape (N, K+1), D's raw outputs.

    Returns:
        float64 array of shape (N,) in [0, 1].
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (N, K+1) with K >= 1, got {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError(f"logits must be finite, got {logits[~np.isfinite(logits)][0].item()!r}")
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))  # stable softmax
    return shifted[:, -1] / shifted.sum(axis=1)


def discriminator_scores(logits: np.ndarray, true_domain: np.ndarray, is_generated: np.ndarray) -> dict[str, float]:
    """Everything Table 7 reports about D, from its logits on real and generated patches.

    Args:
        logits: shape (N, K+1); the predicted class is the argmax.
        true_domain: shape (N,), the dataset 0..K−1 each patch comes from.
        is_generated: shape (N,), True for a generated patch G(x).

    Returns:
        :func:`discriminator_accuracy`'s entries plus ``p_generated_real`` and
        ``p_generated_generated``: the mean softmax P(generated) on real and on generated
        patches (``nan`` for a group without samples).
    """
    probability = generated_probability(logits)
    k = np.asarray(logits).shape[1] - 1
    scores = discriminator_accuracy(true_domain, is_generated, np.argmax(logits, axis=1), k)
    generated = as_int_vector(is_generated, "is_generated").astype(bool)
    for name, group in (("real", ~generated), ("generated", generated)):
        scores[f"p_generated_{name}"] = float(probability[group].mean()) if group.any() else float("nan")
    return scores
