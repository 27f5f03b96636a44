"""Bias-field robustness: example slices (Fig. 4) and intensity profiles along y (Fig. 8).

Slices are 2D arrays already oriented for display (drawn with ``origin="lower"``), intensities in
[0, 1]. Each function writes one PNG and returns a dict: ``panels`` (number of axes, colour bars
excluded), ``figsize`` (inches) and what was drawn.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from dnorm.figures import _panels as panels  # noqa: E402
from dnorm.figures.intensity import save_figure  # noqa: E402

EXAMPLE_COLUMNS = ("input", "field", "degraded", "normalized")
PROFILE_LINES = {"original": "#4C4C4C", "degraded": "#C44E52", "normalized": "#4C72B0"}
FIELD_CMAP = "magma"


def _check_alpha(alpha: object) -> float:
    """The bias-field strength as a float in (0, 1)."""
    try:
        value = float(alpha)
    except (TypeError, ValueError) as error:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}") from error
    if not 0.0 < value < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return value


def _checked_example(example: dict, index: int, alpha: float) -> list[np.ndarray]:
    """[input, field, degraded, normalized] of one example, same shape, field in [1 − α, 1]."""
    panels.require_keys(example, ("dataset",) + EXAMPLE_COLUMNS, f"examples[{index}]")
    image = panels.as_image(example["input"], f"examples[{index}]['input']")
    arrays = [image] + [panels.as_image(example[key], f"examples[{index}][{key!r}]", image.shape)
                        for key in EXAMPLE_COLUMNS[1:]]
    low, high = float(arrays[1].min()), float(arrays[1].max())
    if low < 1.0 - alpha - 1e-6 or high > 1.0 + 1e-6:
        raise ValueError(f"examples[{index}]['field'] must lie in [1 - alpha, 1] = [{1 - alpha:g}, 1], "
                         f"got [{low:g}, {high:g}]")
    return arrays


def plot_bias_examples(examples: list[dict], alpha: float, path: str) -> dict:
    """Fig. 4: one row per example (dataset), columns input, bias field, degraded, normalized.

    Each example: ``dataset`` (str), ``input``, ``field`` (multiplicative, values in [1 − α, 1]),
    ``degraded``, ``normalized`` (all H×W, same shape). The field uses its own colour map on
    [1 − α, 1] with one colour bar.
    """
    alpha = _check_alpha(alpha)
    panels.require_items(examples, "examples")
    checked = [_checked_example(example, index, alpha) for index, example in enumerate(examples)]
    fig, axes = panels.image_grid(len(checked), 4, [arrays[0].shape for arrays in checked], extra_width=0.0)
    titles = ["input", f"bias field (α = {alpha:g})", "degraded", "normalized"]
    field_style = {"cmap": FIELD_CMAP, "vmin": 1.0 - alpha, "vmax": 1.0}
    for row, arrays in enumerate(checked):
        for col, image in enumerate(arrays):
            panels.show_image(axes[row, col], image, titles[col] if row == 0 else None,
                              **(field_style if col == 1 else {}))
    bar = fig.colorbar(axes[0, 1].images[0], ax=axes[:, 1], location="bottom", shrink=0.9, aspect=15)
    bar.set_label("multiplicative bias field", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    panels.label_rows(axes, [str(example["dataset"]) for example in examples])
    result = panels.png_result(fig)
    save_figure(fig, path)
    return result


def _check_profiles(profiles: pd.DataFrame, alphas: tuple[float, ...]) -> list[float]:
    """Validate the profile table; return the requested alphas as they are spelled in the table."""
    if not isinstance(profiles, pd.DataFrame) or profiles.empty:
        raise ValueError(f"profiles must be a non-empty DataFrame, got {type(profiles).__name__} "
                         f"of length {len(profiles) if hasattr(profiles, '__len__') else '?'}")
    missing = [c for c in ("dataset", "alpha", "y", *PROFILE_LINES) if c not in profiles.columns]
    if missing:
        raise ValueError(f"profiles lacks columns {missing}, has {list(profiles.columns)}")
    panels.require_items(tuple(alphas), "alphas")
    duplicated = profiles.duplicated(["dataset", "alpha", "y"])
    if duplicated.any():
        raise ValueError(f"profiles has repeated (dataset, alpha, y) rows, e.g. "
                         f"{profiles.loc[duplicated, ['dataset', 'alpha', 'y']].iloc[0].tolist()}")
    present = np.unique(profiles.alpha.to_numpy(dtype=float))
    found = []
    for alpha in alphas:
        match = present[np.isclose(present, float(alpha))]
        if match.size == 0:
            raise ValueError(f"alpha {alpha!r} is not in profiles, which has alphas {present.tolist()}")
        found.append(float(match[0]))
    return found


def plot_bias_profiles(profiles: pd.DataFrame, path: str, alphas: tuple[float, ...] = (0.5, 0.9)) -> dict:
    """Fig. 8: rows = datasets (order of first appearance), columns = ``alphas``; in each panel the
    mean foreground intensity per coronal plane y of the original, degraded and normalized volume.

    ``profiles`` columns: ``dataset, alpha, y, original, degraded, normalized`` (one row per
    dataset, alpha and y; NaN where a plane has no foreground, drawn as a gap).
    """
    found = _check_profiles(profiles, tuple(alphas))
    datasets = list(pd.unique(profiles.dataset))
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(len(datasets), len(found), figsize=(4.6 * len(found), 3.2 * len(datasets) + 0.5),
                             squeeze=False, sharex=True, sharey=True, layout="constrained")
    table = profiles.assign(alpha=profiles.alpha.astype(float)).sort_values("y")
    for row, dataset in enumerate(datasets):
        for col, alpha in enumerate(found):
            curve = table[(table.dataset == dataset) & (table.alpha == alpha)]
            axis = axes[row, col]
            for name, colour in PROFILE_LINES.items():
                axis.plot(curve.y, curve[name], color=colour, label=name, linewidth=1.4)
            axis.set_title(f"{dataset}, α = {alpha:g}" + ("" if len(curve) else " (no data)"), fontsize=10)
            axis.set(xlabel="y (voxels, posterior → anterior)" if row == len(datasets) - 1 else "",
                     ylabel="mean brain intensity" if col == 0 else "")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=3, frameon=False)
    result = panels.png_result(fig, datasets=datasets, alphas=found)
    save_figure(fig, path)
    return result
