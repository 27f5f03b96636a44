"""Intensity histograms and the generalized Jensen–Shannon divergence between datasets (JSD).

The paper compares the intensity distributions of the datasets (foreground voxels) before and
after normalization with JSD(P1..PN) = H(mean P) − mean H(P_i), in nats.
"""

from __future__ import annotations

import numpy as np
from scipy.special import entr


def intensity_histogram(
    values: np.ndarray,
    bins: int = 256,
    value_range: tuple[float, float] = (0.0, 1.0),
    clip: bool = True,
) -> np.ndarray:
    """Counts of ``values`` in ``bins`` equal-width bins spanning ``value_range``.

    Args:
        values: intensities, any shape (typically the foreground voxels of one volume or of all
            volumes of a dataset); flattened.
        bins: number of bins (positive int); fixed so histograms of different datasets align.
        value_range: ``(low, high)`` with ``low < high``; the last bin includes ``high``.
        clip: if True (default) values outside the range are clipped into the first/last bin so
            every voxel is counted; if False they are dropped (``numpy.histogram`` behaviour).

    Returns:
        int64 array of shape ``(bins,)``.

    Raises:
        ValueError: on bad ``bins`` or ``value_range``, or non-finite values.
    """
    if isinstance(bins, (bool, np.bool_)) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError) as error:
        raise ValueError(f"value_range must be (low, high), got {value_range!r}") from error
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(f"value_range must be finite with low < high, got {value_range!r}")
    flat = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(flat)):
        raise ValueError(f"values must be finite, found {int((~np.isfinite(flat)).sum())} NaN/inf")
    if clip:
        flat = np.clip(flat, low, high)
    counts, _ = np.histogram(flat, bins=int(bins), range=(low, high))
    return counts.astype(np.int64)


def _entropy(rows: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats of each row of a (N, B) array of probabilities, 0·log 0 = 0."""
    return entr(rows).sum(axis=-1)


def jsd(histograms: np.ndarray) -> float:
    """Generalized Jensen–Shannon divergence of N distributions, in nats.

    Args:
        histograms: array of shape ``(N, B)``, one histogram per dataset over the same ``B`` bins;
            rows may be raw counts or probabilities, each row is normalized to sum to 1.

    Returns:
        ``H(mean_i P_i) − mean_i H(P_i)`` with ``H`` the Shannon entropy (natural log, 0·log 0 = 0)
        and equal weights. 0 for identical rows; ``ln N`` for N rows with disjoint supports (the
        maximum). Tiny negative rounding results are clipped to 0.

    Raises:
        ValueError: if the input is not 2-D, has no row or no bin, holds negative or non-finite
            values, or has a row summing to 0.
    """
    rows = np.asarray(histograms, dtype=np.float64)
    if rows.ndim != 2:
        raise ValueError(f"histograms must be 2-D (datasets × bins), got shape {rows.shape}")
    if rows.shape[0] < 1 or rows.shape[1] < 1:
        raise ValueError(f"histograms must have at least one row and one bin, got shape {rows.shape}")
    if not np.all(np.isfinite(rows)):
        raise ValueError("histograms must be finite, found NaN/inf")
    if np.any(rows < 0):
        raise ValueError(f"histograms must be non-negative, found {rows.min()!r}")
    totals = rows.sum(axis=1)
    if np.any(totals <= 0):
        empty = np.flatnonzero(totals <= 0).tolist()
        raise ValueError(f"every histogram row must have a positive sum, rows {empty} sum to 0")
    probabilities = rows / totals[:, None]
    value = float(_entropy(probabilities.mean(axis=0)) - _entropy(probabilities).mean())
    return max(value, 0.0)
