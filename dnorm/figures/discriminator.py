"""Fig. 9: normalized confusion matrices of the discriminator, per setting (e.g. λ) and split.

The paper normalizes by the number of samples: a matrix sums to 1, and the sum of its correct
cells (real row d → class d, generated rows → "generated") is D's accuracy, written in the
panel's title."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.cm import ScalarMappable  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402

from dnorm.figures import _panels as panels  # noqa: E402
from dnorm.figures.intensity import save_figure  # noqa: E402
from dnorm.metrics import correct_cells  # noqa: E402

CMAP = "Blues"


def _check_matrices(matrices: dict, row_names: list[str], column_names: list[str]) -> dict:
    """Validated {(setting, split): (2K × (K+1)) float matrix} for K = len(column_names) − 1."""
    if not isinstance(matrices, dict):
        raise ValueError(f"matrices must be a dict, got {type(matrices).__name__}")
    panels.require_items(matrices, "matrices")
    if len(column_names) < 2 or len(row_names) != 2 * (len(column_names) - 1):
        raise ValueError(f"need K + 1 column names and 2K row names (K >= 1), got {len(column_names)} "
                         f"columns {list(column_names)} and {len(row_names)} rows {list(row_names)}")
    checked = {}
    for key, matrix in matrices.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"matrices keys must be (setting_label, split), got {key!r}")
        array = np.asarray(matrix, dtype=np.float64)
        if array.shape != (len(row_names), len(column_names)):
            raise ValueError(f"matrices[{key!r}] must have shape {(len(row_names), len(column_names))} "
                             f"(row_names × column_names), got {array.shape}")
        finite = array[np.isfinite(array)]
        if np.any(np.isinf(array)) or np.any((finite < 0) | (finite > 1 + 1e-9)):
            bad = array[np.isinf(array) | (np.isfinite(array) & ((array < 0) | (array > 1 + 1e-9)))][0]
            raise ValueError(f"matrices[{key!r}] must hold fractions in [0, 1] or NaN, got {float(bad)!r}")
        checked[key] = array
    return checked


def plot_confusion_matrices(
    matrices: dict[tuple[str, str], np.ndarray], row_names: list[str], column_names: list[str], path: str
) -> dict:
    """Rows = settings, columns = splits (both in order of first appearance); one annotated heatmap
    (2 decimals, one colour bar shared from 0 to the largest cell) per (setting, split).

    ``matrices``: {(setting_label, split): 2K × (K+1) fractions}, rows ``row_names`` ("real <d>"
    then "generated <d>"), columns ``column_names`` (the K datasets then "generated"). Normalized
    by the number of samples (summing to 1), a panel's title gives D's accuracy (the sum of its
    correct cells); any other normalization (e.g. per row, NaN rows for no sample, drawn blank)
    is drawn without it. A missing (setting, split) pair leaves its panel empty with a note.

    Returns :func:`dnorm.figures._panels.png_result` with ``settings``, ``splits`` and
    ``accuracy``: {(setting, split): accuracy in [0, 1]} of the panels that sum to 1.
    """
    checked = _check_matrices(matrices, row_names, column_names)
    correct = correct_cells(len(column_names) - 1)
    accuracy = {key: float(m[correct].sum()) for key, m in checked.items()
                if np.isfinite(m).all() and abs(m.sum() - 1.0) < 1e-6}
    largest = max((float(np.nanmax(m)) for m in checked.values() if np.isfinite(m).any()), default=0.0)
    vmax = largest if largest > 0 else 1.0  # all-sample fractions are small: scale to the largest
    settings = list(dict.fromkeys(key[0] for key in checked))
    splits = list(dict.fromkeys(key[1] for key in checked))
    sns.set_theme(style="whitegrid", context="notebook")
    size = (len(splits) * (0.85 * len(column_names) + 1.0) + 2.6, len(settings) * (0.4 * len(row_names) + 1.3) + 0.5)
    fig, axes = plt.subplots(len(settings), len(splits), figsize=size, squeeze=False, layout="constrained")
    for row, setting in enumerate(settings):
        for col, split in enumerate(splits):
            axis = axes[row, col]
            title = f"{setting}, {split}"
            if (setting, split) in accuracy:
                title += f": accuracy {100 * accuracy[setting, split]:.1f} %"
            axis.set_title(title, fontsize=10)
            if (setting, split) not in checked:
                axis.text(0.5, 0.5, "no matrix", ha="center", va="center", transform=axis.transAxes)
                axis.set_axis_off()
                continue
            sns.heatmap(checked[setting, split], ax=axis, vmin=0.0, vmax=vmax, cmap=CMAP, cbar=False, annot=True,
                        fmt=".2f", annot_kws={"fontsize": 8}, linewidths=0.5, linecolor="white", square=False,
                        xticklabels=list(column_names), yticklabels=list(row_names) if col == 0 else False)
            for empty in np.flatnonzero(np.isnan(checked[setting, split]).all(axis=1)):
                axis.text(len(column_names) / 2, empty + 0.5, "no sample", ha="center", va="center", fontsize=8)
            axis.grid(False)
            axis.tick_params(axis="x", labelrotation=30, labelsize=8)
            axis.tick_params(axis="y", labelrotation=0, labelsize=8)
            axis.set(xlabel="predicted class" if row == len(settings) - 1 else "", ylabel="")
    fig.colorbar(ScalarMappable(Normalize(0.0, vmax), cmap=CMAP), ax=axes, label="fraction", shrink=0.6)
    result = panels.png_result(fig, settings=settings, splits=splits, accuracy=accuracy)
    save_figure(fig, path)
    return result
