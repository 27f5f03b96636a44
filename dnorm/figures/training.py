"""Training curves of every experiment: losses, validation Dice and discriminator accuracy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import seaborn as sns  # noqa: E402

from dnorm.figures.intensity import save_figure  # noqa: E402

PANELS = (
    ("train_seg_loss", "training segmentation loss (weighted Dice)"),
    ("train_d_loss", "training discriminator loss"),
    ("val_dice_mean", "validation Dice (mean CSF/GM/WM)"),
    ("val_d_accuracy", "validation discriminator accuracy"),
)


def load_histories(histories: dict[str, str]) -> pd.DataFrame:
    """Stack per-experiment history CSVs into one long table (experiment, epoch, metric, value)."""
    frames = [pd.read_csv(path).assign(experiment=name) for name, path in histories.items()]
    table = pd.concat(frames, ignore_index=True)
    columns = [c for c, _ in PANELS if c in table.columns]
    return table.melt(id_vars=["experiment", "epoch"], value_vars=columns, var_name="metric").dropna()


def plot_training_curves(histories: dict[str, str], path: str) -> None:
    """2×2 panels (:data:`PANELS`), one line per experiment. D panels show only experiments with
    a discriminator (Ours with lambda > 0)."""
    long = load_histories(histories)
    long = long[~((long.metric == "train_d_loss") & (long.value == 0))]
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    palette = dict(zip(sorted(histories), sns.color_palette("tab20", len(histories))))
    for axis, (metric, title) in zip(axes.flat, PANELS):
        subset = long[long.metric == metric]
        if subset.empty:
            axis.text(0.5, 0.5, "no experiment with a discriminator", ha="center", va="center", transform=axis.transAxes)
        else:
            sns.lineplot(data=subset, x="epoch", y="value", hue="experiment", palette=palette, marker="o", ax=axis,
                         legend=(metric == "val_dice_mean"))
        axis.set(title=title, xlabel="epoch", ylabel="")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if axes[1, 0].get_legend() is not None:
        sns.move_legend(axes[1, 0], "upper left", bbox_to_anchor=(0.0, -0.18), ncol=4, fontsize=8, title=None)
    fig.tight_layout()
    save_figure(fig, path)
