"""Crop, pad and intensity scaling, each keeping the affine consistent with the voxels."""

from __future__ import annotations

import numpy as np


def bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """Tightest box (one slice per axis) holding every true voxel of X×Y×Z ``mask``."""
    if not mask.any():
        raise ValueError("cannot crop to an empty brain mask")
    indices = np.argwhere(mask)
    low, high = indices.min(axis=0), indices.max(axis=0) + 1
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))  # type: ignore[return-value]


def shift_affine(affine: np.ndarray, offset_voxels) -> np.ndarray:
    """Affine of a grid whose voxel 0 is voxel ``offset_voxels`` of the original grid."""
    shifted = np.array(affine, dtype=float, copy=True)
    shifted[:3, 3] = affine[:3, :3] @ np.asarray(offset_voxels, dtype=float) + affine[:3, 3]
    return shifted


def crop(volume: np.ndarray, affine: np.ndarray, box) -> tuple[np.ndarray, np.ndarray]:
    """Crop X×Y×Z ``volume`` to ``box``; the affine follows so world positions are unchanged."""
    return volume[box].copy(), shift_affine(affine, [s.start for s in box])


def centred_padding(shape, target_shape) -> list[tuple[int, int]]:
    """Per-axis (before, after) zero padding that centres ``shape`` inside ``target_shape``."""
    if any(t < s for s, t in zip(shape, target_shape)):
        raise ValueError(f"cannot pad shape {tuple(shape)} to the smaller {tuple(target_shape)}")
    return [((t - s) // 2, (t - s) - (t - s) // 2) for s, t in zip(shape, target_shape)]


def pad(volume: np.ndarray, affine: np.ndarray, target_shape) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad X×Y×Z ``volume`` symmetrically to ``target_shape``; the affine follows."""
    padding = centred_padding(volume.shape, target_shape)
    padded = np.pad(volume, padding, mode="constant", constant_values=0)
    return padded, shift_affine(affine, [-before for before, _ in padding])


def scale_to_unit(volume: np.ndarray, mask: np.ndarray, percentile: float) -> np.ndarray:
    """Divide by the ``percentile`` of intensities inside ``mask`` and clip to [0, 1]; zero
    outside the mask. A percentile below 100 keeps a few noisy voxels from setting the range."""
    values = volume[mask]
    if values.size == 0:
        raise ValueError("cannot scale intensities: the brain mask is empty")
    top = float(np.percentile(values, percentile))
    if top <= 0:
        raise ValueError(f"cannot scale intensities: brain {percentile}th percentile is {top} (<= 0)")
    return np.where(mask, np.clip(volume / top, 0.0, 1.0), 0.0).astype(np.float32)


def common_shape(shapes, minimum: int) -> tuple[int, int, int]:
    """Smallest shape holding every shape in ``shapes``, at least ``minimum`` along each axis."""
    return tuple(int(max(minimum, *(s[axis] for s in shapes))) for axis in range(3))  # type: ignore[return-value]
