"""Bias-field augmentation of the paper (Eq. 6-7)."""

from __future__ import annotations

import numpy as np


def bias_profile(y_start: int, patch_size: int, height: int, alpha: float) -> np.ndarray:
    """B(y) = (y / H)·α + (1 − α) for the ``patch_size`` rows starting at global row ``y_start``
    of a volume ``height`` voxels tall along the image y axis (the whole volume's axis, not the
    patch's): dark at y = 0, unchanged at y = H."""
    if height <= 0 or not 0.0 <= alpha <= 1.0:
        raise ValueError(f"bias field needs height > 0 and alpha in [0, 1], got height {height}, alpha {alpha}")
    y = np.arange(y_start, y_start + patch_size, dtype=np.float32)
    return (y / height) * alpha + (1.0 - alpha)


def apply_bias(image: np.ndarray, y_start: int, height: int, alpha: float) -> np.ndarray:
    """Multiply a C×X×Y×Z patch (or C×X×Y×Z volume with ``y_start`` 0) by B(y) along axis 2."""
    profile = bias_profile(y_start, image.shape[2], height, alpha)
    return (image * profile[None, None, :, None]).astype(np.float32)
