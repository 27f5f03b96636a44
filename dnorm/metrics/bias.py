"""Residual intensity bias: Pearson correlation between intensity and position (paper Table 6).

The paper measures how much of a synthetic linear bias field along y remains, as Pearson's ρ
between voxel intensity and the voxel's y coordinate over the foreground, on a single axial slice.
Pearson's ρ is invariant to affine changes of either variable, so voxel indices are used as
coordinates (voxel spacing and origin do not matter).
"""

from __future__ import annotations

import numpy as np

from dnorm.metrics._checks import as_axis, same_shape


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson ρ of two 1-D float64 arrays; ``nan`` if fewer than 2 points or a zero variance."""
    if x.size < 2 or x.max() == x.min() or y.max() == y.min():
        return float("nan")  # exact test: a mean of equal values may be off by one ulp
    dx = x - x.mean()
    dy = y - y.mean()
    denominator = np.sqrt(np.dot(dx, dx) * np.dot(dy, dy))
    if not np.isfinite(denominator) or denominator == 0.0:
        return float("nan")
    return float(np.clip(np.dot(dx, dy) / denominator, -1.0, 1.0))


def pearson_bias(volume: np.ndarray, mask: np.ndarray, axis: int = 1) -> float:
    """Pearson ρ between intensity and voxel coordinate along ``axis``, over ``mask``.

    Args:
        volume: intensities, X×Y×Z (any n-D works).
        mask: same shape; non-zero/True marks the voxels used (the foreground).
        axis: the coordinate axis (default 1, y).

    Returns:
        ρ in [−1, 1], computed in float64. ``nan`` (no warning) when fewer than 2 voxels are in
        the mask, or when intensity or coordinate has zero variance over them (e.g. a constant
        volume, or a mask within a single plane perpendicular to ``axis``).

    Raises:
        ValueError: on a shape mismatch (shapes quoted) or an out-of-range ``axis``.
    """
    volume = np.asarray(volume)
    mask = np.asarray(mask)
    same_shape(volume, mask, ("volume", "mask"))
    axis = as_axis(axis, volume.ndim)
    selected = np.nonzero(mask)
    intensities = volume[selected].astype(np.float64)
    coordinates = selected[axis].astype(np.float64)
    return _pearson(intensities, coordinates)


def densest_slice(mask: np.ndarray, slice_axis: int = 2) -> int:
    """Index along ``slice_axis`` of the slice holding the most mask voxels (first one on ties).

    ``mask``: X×Y×Z. Returns 0 for an empty mask.
    """
    mask = np.asarray(mask)
    slice_axis = as_axis(slice_axis, mask.ndim, "slice_axis")
    other = tuple(a for a in range(mask.ndim) if a != slice_axis)
    return int(np.argmax(np.count_nonzero(mask, axis=other)))


def pearson_bias_slice(
    volume: np.ndarray,
    mask: np.ndarray,
    slice_index: int | None = None,
    slice_axis: int = 2,
    axis: int = 1,
) -> float:
    """:func:`pearson_bias` on one slice, as the paper did on a single axial slice.

    Args:
        volume: intensities, X×Y×Z.
        mask: same shape, the foreground.
        slice_index: index of the slice along ``slice_axis``; default: the slice with the most
            mask voxels (:func:`densest_slice`).
        slice_axis: the axis the slice is taken across (default 2, axial for X×Y×Z volumes).
        axis: the coordinate axis of the *volume* (default 1, y); must differ from ``slice_axis``.

    Returns:
        ρ over the mask voxels of that slice; ``nan`` under the same conditions as
        :func:`pearson_bias` (in particular for an empty mask).

    Raises:
        ValueError: on a shape mismatch, bad axes, or ``slice_index`` out of range.
    """
    volume = np.asarray(volume)
    mask = np.asarray(mask)
    same_shape(volume, mask, ("volume", "mask"))
    slice_axis = as_axis(slice_axis, volume.ndim, "slice_axis")
    axis = as_axis(axis, volume.ndim)
    if axis == slice_axis:
        raise ValueError(f"axis and slice_axis must differ, got axis={axis} and slice_axis={slice_axis}")
    if slice_index is None:
        slice_index = densest_slice(mask, slice_axis)
    n_slices = volume.shape[slice_axis]
    if (
        isinstance(slice_index, (bool, np.bool_))
        or not isinstance(slice_index, (int, np.integer))
        or not 0 <= slice_index < n_slices
    ):
        raise ValueError(f"slice_index must be an integer in [0, {n_slices - 1}], got {slice_index!r}")
    plane_axis = axis if axis < slice_axis else axis - 1
    return pearson_bias(
        np.take(volume, int(slice_index), axis=slice_axis),
        np.take(mask, int(slice_index), axis=slice_axis),
        axis=plane_axis,
    )
