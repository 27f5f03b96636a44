"""Where the sliding windows of patch-based inference go.

Along each axis of length ``L`` the windows start at ``0, stride, 2·stride, …`` and one more window
always ends exactly at ``L``, so every index is covered (starts are deduplicated and sorted). An axis
shorter than the patch gets the single start ``0``: that window reaches past the end, and the caller
(:func:`dnorm.inference.patch_average`) pads the volume with zeros to the patch size first.
"""

from __future__ import annotations

import itertools
import operator
from typing import Iterator, Sequence


def check_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as an ``int``; raise ``ValueError`` quoting it if it is not an integer ≥ ``minimum``."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        number = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return number


def check_patch_stride(patch_size: object, stride: object) -> tuple[int, int]:
    """Validate ``1 <= stride <= patch_size``; a larger stride would leave voxels no window covers."""
    patch_size = check_int("patch_size", patch_size, 1)
    stride = check_int("stride", stride, 1)
    if stride > patch_size:
        raise ValueError(
            f"stride must be <= patch_size ({patch_size}) or some voxels are covered by no window, "
            f"got stride={stride!r}"
        )
    return patch_size, stride


def window_starts(length: int, patch_size: int, stride: int) -> list[int]:
    """Start indices of the windows along one axis of ``length`` voxels.

    ``0, stride, 2·stride, …`` up to ``length - patch_size``, plus ``length - patch_size`` itself
    when the stride does not land on it, so the last window ends exactly at ``length``. Returns
    ``[0]`` when ``length <= patch_size`` (the window then reaches past the end; pad before use).

    >>> window_starts(70, 32, 16)
    [0, 16, 32, 38]
    """
    length = check_int("length", length, 1)
    patch_size, stride = check_patch_stride(patch_size, stride)
    last = length - patch_size
    if last <= 0:
        return [0]
    starts = list(range(0, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


def iter_windows(shape: Sequence[int], patch_size: int, stride: int) -> Iterator[tuple[int, ...]]:
    """Yield the start corner of every window over a grid of ``shape`` (one int per axis).

    The windows are the Cartesian product of :func:`window_starts` along each axis, in C order
    (last axis fastest). A window starting at ``s`` covers
    ``tuple(slice(si, si + patch_size) for si in s)``.
    """
    shape = tuple(shape)
    if len(shape) == 0:
        raise ValueError(f"shape must have at least one axis, got {shape!r}")
    per_axis = [window_starts(length, patch_size, stride) for length in shape]
    yield from itertools.product(*per_axis)
