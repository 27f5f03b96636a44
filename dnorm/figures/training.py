"""Training curves of every experiment: losses, validation Dice, G's gradient balance, the
discriminator's view of G's output, and G's warm-up reconstruction error."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import seaborn as sns  # noqa: E402

from dnorm.figures.intensity import save_figure  # noqa: E402

#: (history column, phase, panel title, log scale)
PANELS = (
    ("val_dice_mean", "train", "validation Dice (mean CSF/GM/WM)", False),
    ("val_dice_csf", "train", "validation Dice, CSF", False),
    ("train_seg_loss", "train", "training segmentation loss", False),
    ("train_grad_ratio", "train", "‖∇G λ·L_adv‖ / ‖∇G L_seg‖ (training)", True),
    ("val_d_accuracy", "train", "D accuracy, real and generated (validation)", False),
    ("val_d_p_generated_generated", "train", "D's mean P(generated) on G(x) (validation)", False),
    ("train_reconstruction_rmse", "warmup", "G warm-up: reconstruction RMSE (training)", True),
)


def load_histories(histories: dict[str, str]) -> pd.DataFrame:
    """Stack per-experiment history CSVs into one long table (experiment, epoch, metric, value),
    each metric from the phase (warm-up or joint training) its panel shows."""
    frames = []
    for name, path in histories.items():
        history = pd.read_csv(path)
        if "phase" not in history:
            history["phase"] = "train"
        for metric, phase, _, _ in PANELS:
            rows = history[history.phase == phase]
            if metric in rows:
                frames.append(pd.DataFrame({"experiment": name, "epoch": rows.epoch, "metric": metric,
                                            "value": rows[metric]}))
    columns = ["experiment", "epoch", "metric", "value"]
    return pd.concat(frames, ignore_index=True).dropna() if frames else pd.DataFrame(columns=columns)


def plot_training_curves(histories: dict[str, str], path: str) -> None:
    """One panel per :data:`PANELS` entry, one line per experiment that records the metric
    (discriminator panels: Ours with λ > 0; warm-up panel: methods with a generator)."""
    long = load_histories(histories)
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(4, 2, figsize=(13, 15))
    palette = dict(zip(sorted(histories), sns.color_palette("tab20", len(histories))))
    for axis, (metric, phase, title, log_scale) in zip(axes.flat, PANELS):
        subset = long[long.metric == metric]
        if subset.empty:
            axis.text(0.5, 0.5, "no experiment records this", ha="center", va="center", transform=axis.transAxes)
        else:
            sns.lineplot(data=subset, x="epoch", y="value", hue="experiment", palette=palette, marker="o", ax=axis,
                         legend=False)
            if log_scale and (subset.value > 0).all():
                axis.set_yscale("log")
        axis.set(title=title, xlabel="warm-up epoch" if phase == "warmup" else "epoch", ylabel="")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    legend = axes.flat[-1]
    legend.axis("off")
    for name, colour in palette.items():
        legend.plot([], [], marker="o", color=colour, label=name)
    legend.legend(loc="center", ncol=2, fontsize=9, frameon=False)
    fig.tight_layout()
    save_figure(fig, path)
