"""Shared helpers of the evaluation figures (private): argument checks, image grids, label maps.

Images are 2D arrays already oriented for display (row 0 at the bottom: ``origin="lower"``),
intensities in [0, 1]. Label maps hold 0 BG, 1 CSF, 2 GM, 3 WM.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from dnorm.figures.intensity import CLASS_COLOURS  # noqa: E402

PANEL_INCHES = 2.3
LABEL_CMAP = ListedColormap([(0.0, 0.0, 0.0, 0.0)] + [CLASS_COLOURS[name] for name in ("CSF", "GM", "WM")])
LABEL_NORM = BoundaryNorm([-0.5, 0.5, 1.5, 2.5, 3.5], LABEL_CMAP.N)


def require_items(items: Sequence | dict, name: str) -> None:
    """Raise ``ValueError`` if ``items`` is empty."""
    if len(items) == 0:
        raise ValueError(f"{name} must not be empty, got {items!r}")


def require_keys(record: dict, keys: Sequence[str], name: str) -> None:
    """Raise ``ValueError`` naming the missing keys of a dict argument."""
    if not isinstance(record, dict):
        raise ValueError(f"{name} must be a dict, got {type(record).__name__}")
    missing = [key for key in keys if key not in record]
    if missing:
        raise ValueError(f"{name} lacks keys {missing}, has {sorted(record)}")


def as_image(array: object, name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """A finite 2D float array (H×W), optionally of the given ``shape``."""
    image = np.asarray(array, dtype=np.float64)
    if image.ndim != 2 or image.size == 0:
        raise ValueError(f"{name} must be a non-empty 2D array, got shape {image.shape}")
    if shape is not None and image.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {image.shape}")
    if not np.all(np.isfinite(image)):
        raise ValueError(f"{name} must be finite, found {int((~np.isfinite(image)).sum())} NaN/inf")
    return image


def as_label_map(array: object, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A 2D integer label map of ``shape`` with values in {0, 1, 2, 3}."""
    labels = np.asarray(array)
    if labels.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {labels.dtype}")
    bad = labels[(labels < 0) | (labels > 3)]
    if bad.size:
        raise ValueError(f"{name} labels must be in 0..3 (BG, CSF, GM, WM), got {int(bad[0])}")
    return labels


def same_keys(dicts: Sequence[dict], name: str) -> list[str]:
    """The keys of the first dict (in order); raise if another dict has a different key set."""
    keys = list(dicts[0])
    require_items(keys, f"{name}[0]")
    for index, other in enumerate(dicts[1:], start=1):
        if set(other) != set(keys):
            raise ValueError(f"{name}[{index}] has methods {sorted(other)}, expected {sorted(keys)}")
    return keys


def image_grid(nrows: int, ncols: int, shapes: Sequence[tuple[int, int]], extra_width: float = 0.0):
    """Figure and (nrows × ncols) axes sized so each panel fits the widest of the image ``shapes``."""
    sns.set_theme(style="whitegrid", context="notebook")
    aspect = max(width / height for height, width in shapes)
    size = (ncols * PANEL_INCHES * aspect + extra_width, nrows * PANEL_INCHES + 0.4)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained")
    return fig, axes


def show_image(axis, image: np.ndarray, title: str | None = None, **imshow):
    """Draw a [0, 1] intensity slice in grey (or ``imshow`` overrides) without ticks or grid."""
    options = {"cmap": "gray", "vmin": 0.0, "vmax": 1.0} | imshow
    artist = axis.imshow(image, origin="lower", aspect="equal", interpolation="nearest", **options)
    axis.set_xticks([])
    axis.set_yticks([])
    axis.grid(False)
    if title is not None:
        axis.set_title(title, fontsize=9)
    return artist


def show_labels(axis, image: np.ndarray, labels: np.ndarray, title: str | None = None) -> None:
    """A label map in the class colours over the grey image (background transparent)."""
    show_image(axis, image, title)
    axis.imshow(labels, origin="lower", aspect="equal", interpolation="nearest", cmap=LABEL_CMAP,
                norm=LABEL_NORM, alpha=0.85)


def label_rows(axes: np.ndarray, labels: Sequence[str]) -> None:
    """Write one label per row on the left of the grid."""
    for axis, label in zip(axes[:, 0], labels):
        axis.set_ylabel(label, fontsize=10)


def class_legend(fig) -> None:
    """Shared legend of the three tissue classes, below the panels."""
    handles = [Patch(facecolor=colour, label=name) for name, colour in CLASS_COLOURS.items()]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), frameon=False)


def png_result(fig, **drawn) -> dict:
    """What a plotting function returns: ``panels`` (axes drawn, colour bars excluded), ``figsize``
    (inches) and the ``drawn`` extras."""
    axes = [axis for axis in fig.axes if axis.get_label() != "<colorbar>"]
    return {"panels": len(axes), "figsize": tuple(float(v) for v in fig.get_size_inches())} | drawn
