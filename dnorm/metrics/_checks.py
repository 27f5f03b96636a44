"""Argument checks shared by the metric modules (private).

Every check raises ``ValueError`` quoting the offending value, never ``assert``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def same_shape(pred: np.ndarray, ref: np.ndarray, names: tuple[str, str] = ("pred", "ref")) -> None:
    """Raise ``ValueError`` quoting both shapes if ``pred`` and ``ref`` differ in shape."""
    if pred.shape != ref.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape, got {names[0]} {pred.shape} "
            f"and {names[1]} {ref.shape}"
        )


def as_labels(labels: Sequence[int]) -> tuple[int, ...]:
    """Return ``labels`` as a non-empty tuple of distinct Python ints."""
    try:
        values = tuple(labels)
    except TypeError as error:
        raise ValueError(f"labels must be a sequence of integers, got {labels!r}") from error
    if not values:
        raise ValueError(f"labels must not be empty, got {labels!r}")
    out = []
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"labels must be integers, got {value!r} in {labels!r}")
        out.append(int(value))
    if len(set(out)) != len(out):
        raise ValueError(f"labels must be distinct, got {labels!r}")
    return tuple(out)


def as_spacing(spacing: Sequence[float], ndim: int) -> tuple[float, ...]:
    """Return ``spacing`` as ``ndim`` positive finite floats (mm per voxel along each axis)."""
    try:
        values = tuple(float(s) for s in spacing)
    except (TypeError, ValueError) as error:
        raise ValueError(f"spacing must be a sequence of numbers, got {spacing!r}") from error
    if len(values) != ndim:
        raise ValueError(f"spacing must have one value per axis ({ndim}), got {spacing!r}")
    if not all(np.isfinite(s) and s > 0 for s in values):
        raise ValueError(f"spacing values must be positive and finite, got {spacing!r}")
    return values


def as_axis(axis: int, ndim: int, name: str = "axis") -> int:
    """Return ``axis`` normalized to ``0..ndim-1`` (negative values count from the end)."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} must be in [{-ndim}, {ndim - 1}] for a {ndim}-D array, got {axis!r}")
    return int(axis) % ndim


def as_int_vector(values: object, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array; booleans and integral floats are accepted."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or not np.all(array == np.round(array)):
            bad = array[~np.isfinite(array) | (array != np.round(array))][0]
            raise ValueError(f"{name} must hold integers, got {bad!r}")
        return array.astype(np.int64)
    raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
