"""Whole-volume inference by averaging a patch model over overlapping sliding windows.

The paper's test-time procedure (SPEC section 2, "Patches"): cut the volume into 32³ windows with
stride 8, run the model on every window and average, per voxel, the outputs of all windows that
cover it (class probabilities for the segmenter, intensities for the generator).

Numerics: the average is kept as a running mean in float32 on the device,
``mean += (output - mean) / k`` at the ``k``-th window covering a voxel, with a float32 count map
shared by all channels. When every window gives the same value at a voxel the mean equals that
value bit for bit, so an identity model reproduces its input exactly for any float32 input,
which summing then dividing in float32 does not (``(x + x + x) / 3 != x`` for about one float in
seven).
"""

from __future__ import annotations

import contextlib
import itertools
from typing import Callable, Sequence

import numpy as np
import torch

from dnorm.inference.windows import check_int, check_patch_stride, window_starts

Model = Callable[[torch.Tensor], torch.Tensor]


def _model_device(model: Model) -> torch.device:
    """The device of a module's first parameter (or buffer); CPU for a plain callable."""
    if isinstance(model, torch.nn.Module):
        for tensor in itertools.chain(model.parameters(), model.buffers()):
            return tensor.device
    return torch.device("cpu")


def _windows_touching(mask: np.ndarray, starts: Sequence[Sequence[int]], patch_size: int) -> np.ndarray:
    """Boolean grid ``len(starts[0]) × len(starts[1]) × …``: does the window hold any mask voxel?

    "Any voxel in a box" is separable, so it is reduced one axis at a time.
    """
    hit = mask
    for axis, axis_starts in enumerate(starts):
        parts = []
        for start in axis_starts:
            index = [slice(None)] * hit.ndim
            index[axis] = slice(start, start + patch_size)
            parts.append(hit[tuple(index)].any(axis=axis))
        hit = np.stack(parts, axis=axis)
    return hit


def patch_average(
    volume: np.ndarray,
    model: Model | torch.nn.Module,
    patch_size: int = 32,
    stride: int = 8,
    mask: np.ndarray | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Run ``model`` on sliding ``patch_size``³ windows of ``volume`` and average the outputs per voxel.

    Args:
        volume: ``C×X×Y×Z`` array (cast to float32).
        model: a ``torch.nn.Module`` or any callable mapping a float32 tensor ``N×C×p×p×p`` to
            ``N×C'×p×p×p`` (``p = patch_size``). A module is switched to eval mode (and left
            there) but not moved: pass one that lives on ``device``. The model always runs under
            ``torch.inference_mode()``.
        patch_size: window edge ``p`` (≥ 1).
        stride: step between window starts, ``1 <= stride <= patch_size``. Along each axis the
            starts are ``0, stride, 2·stride, …`` plus one window ending exactly at the volume's
            end (:func:`dnorm.inference.windows.window_starts`), so every voxel is covered.
        mask: optional ``X×Y×Z`` array (non-zero = inside). Windows holding no mask voxel are not
            evaluated. Any window covering a mask voxel holds it, so on mask voxels the result is
            the same as without a mask; voxels covered by no evaluated window get 0. If no window
            is evaluated at all the model still runs once, on the first window, to learn ``C'``.
        batch_size: windows per model call (≥ 1).
        device: where windows, model outputs and accumulators live; ``None`` means the device of
            the module's parameters, or CPU for a plain callable.
        autocast_dtype: e.g. ``torch.bfloat16`` to run the model under
            ``torch.autocast(device.type, dtype)``; accumulation stays float32.

    Axes shorter than ``patch_size`` are padded at their end with zeros (and the mask with
    ``False``) up to ``patch_size``, the model sees those zeros, and the result is cropped back.

    Returns:
        ``C'×X×Y×Z`` float32 array: for each voxel the mean of the model outputs of every evaluated
        window covering it.

    Raises:
        ValueError: on a volume that is not 4D, a mask whose shape is not ``volume.shape[1:]``,
            ``patch_size < 1``, ``stride`` outside ``[1, patch_size]``, ``batch_size < 1``, or a
            model output that is not an ``N×C'×p×p×p`` tensor.
    """
    patch_size, stride = check_patch_stride(patch_size, stride)
    batch_size = check_int("batch_size", batch_size, 1)
    volume = np.asarray(volume)
    if volume.ndim != 4:
        raise ValueError(f"volume must be C×X×Y×Z (4D), got shape {volume.shape!r}")
    if min(volume.shape) < 1:
        raise ValueError(f"volume must not be empty, got shape {volume.shape!r}")
    if not (np.issubdtype(volume.dtype, np.floating) or np.issubdtype(volume.dtype, np.integer)):
        raise ValueError(f"volume must hold real numbers, got dtype {volume.dtype!r}")
    spatial = volume.shape[1:]
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != spatial:
            raise ValueError(f"mask shape {mask.shape!r} does not match the volume's spatial shape {spatial!r}")
        mask = mask != 0
    if autocast_dtype is not None and not isinstance(autocast_dtype, torch.dtype):
        raise ValueError(f"autocast_dtype must be a torch.dtype or None, got {autocast_dtype!r}")
    device = _model_device(model) if device is None else torch.device(device)

    # Pad axes shorter than the patch at their end; every later index is in the padded grid.
    padded = tuple(max(length, patch_size) for length in spatial)
    pad = [(0, 0)] + [(0, p - length) for p, length in zip(padded, spatial)]
    if any(after for _, after in pad):
        volume = np.pad(volume, pad, mode="constant")
        if mask is not None:
            mask = np.pad(mask, pad[1:], mode="constant")

    starts = [window_starts(length, patch_size, stride) for length in padded]
    grid = np.ones(tuple(len(s) for s in starts), dtype=bool)
    if mask is not None:
        grid = _windows_touching(mask, starts, patch_size)
    corners = [tuple(s[i] for s, i in zip(starts, idx)) for idx in zip(*np.nonzero(grid))]
    probe_only = not corners
    if probe_only:
        corners = [(0, 0, 0)]

    if isinstance(model, torch.nn.Module):
        model.eval()
    p = patch_size
    with torch.inference_mode():
        source = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32)).to(device)
        count = torch.zeros((1, *padded), dtype=torch.float32, device=device)
        mean: torch.Tensor | None = None
        for first in range(0, len(corners), batch_size):
            batch_corners = corners[first : first + batch_size]
            windows = [(slice(x, x + p), slice(y, y + p), slice(z, z + p)) for x, y, z in batch_corners]
            batch = torch.stack([source[(slice(None), *w)] for w in windows])
            autocast = (
                torch.autocast(device_type=device.type, dtype=autocast_dtype)
                if autocast_dtype is not None
                else contextlib.nullcontext()
            )
            with autocast:
                output = model(batch)
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"model must return a torch.Tensor, got {type(output).__name__}")
            if output.ndim != 5 or output.shape[0] != len(windows) or tuple(output.shape[2:]) != (p, p, p):
                raise ValueError(
                    f"model output must be N×C'×{p}×{p}×{p} with N={len(windows)}, got shape {tuple(output.shape)}"
                )
            output = output.to(device=device, dtype=torch.float32)
            if mean is None:
                mean = torch.zeros((output.shape[1], *padded), dtype=torch.float32, device=device)
            if probe_only:
                break
            for out, w in zip(output, windows):
                seen = count[(slice(None), *w)]
                seen += 1
                current = mean[(slice(None), *w)]
                current.addcdiv_(out - current, seen)
        result = mean[(slice(None), *(slice(0, length) for length in spatial))]
        return result.contiguous().cpu().numpy()
