"""What a PNG shows, read from its pixels (not from what the plotting code reports about itself):
for checks that a figure or screenshot is drawn, not blank, and holds the expected content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib import colors
from matplotlib import image as mpimg


def pixels(path: str | Path) -> np.ndarray:
    """``H×W×3`` RGB in [0, 1] (alpha dropped)."""
    rgb = np.asarray(mpimg.imread(str(path)), dtype=np.float64)
    if rgb.dtype.kind == "u" or rgb.max() > 1.0:
        rgb = rgb / 255.0
    return rgb[..., :3]


def fraction_near(rgb: np.ndarray, colour: str | tuple, tolerance: float = 0.06) -> float:
    """Fraction of pixels within ``tolerance`` (per channel) of ``colour`` (any matplotlib colour)."""
    target = np.asarray(colors.to_rgb(colour))
    return float((np.abs(rgb - target) <= tolerance).all(axis=-1).mean())


def ink(rgb: np.ndarray) -> float:
    """Fraction of pixels that differ from the most common colour (the background)."""
    flat = np.round(rgb.reshape(-1, 3) * 255).astype(np.int32)
    codes = flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]
    background = np.bincount(codes).argmax()
    return float((codes != background).mean())


def grey(rgb: np.ndarray) -> float:
    """Fraction of grey mid-tone pixels (R = G = B in [0.1, 0.9]): drawn MR images, not text."""
    level = rgb[..., 0]
    return float(((np.ptp(rgb, axis=-1) < 1.5 / 255) & (level > 0.1) & (level < 0.9)).mean())


def saturated(rgb: np.ndarray) -> float:
    """Fraction of clearly coloured pixels (curves, label maps, colour maps)."""
    return float((np.ptp(rgb, axis=-1) > 0.25).mean())
