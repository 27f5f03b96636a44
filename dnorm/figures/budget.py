"""The budget curve figure: Dice against the training budget, one line per method."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from dnorm.figures.intensity import save_figure  # noqa: E402

#: (column of the budget-curve table, panel title)
PANELS = (
    ("val mean DSC", "validation, mean Dice (CSF/GM/WM)"),
    ("test mean DSC", "test subjects, mean Dice"),
    ("val CSF DSC", "validation, CSF Dice"),
    ("test CSF DSC", "test subjects, CSF Dice"),
)


def plot_budget_curve(table: pd.DataFrame, path: str) -> None:
    """Dice (mean ± sd over training seeds) against the budget, on a log₂ axis labelled with the
    budget and its joint-training epochs; one line per curve and setting."""
    if table.empty:
        raise ValueError("budget curve: the table has no rows (no experiment is trained at two budgets)")
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(2, 2, figsize=(12, 9), sharex=True)
    lines = table.groupby(["setting", "curve"], sort=True)
    palette = dict(zip([key for key, _ in lines], sns.color_palette("tab10", lines.ngroups)))
    for axis, (column, title) in zip(axes.flat, PANELS):
        for key, rows in lines:
            summary = rows.groupby("budget")[column].agg(["mean", "std", "count"]).reset_index()
            axis.errorbar(summary.budget, summary["mean"], yerr=summary["std"].fillna(0), marker="o", capsize=3,
                          color=palette[key], label=f"{key[1]} ({key[0]})")
        axis.set_xscale("log", base=2)
        axis.set(title=title, ylabel="Dice")
    budgets = np.sort(table.budget.unique())
    epochs = table.groupby("budget")["joint epochs"].agg(lambda e: "/".join(str(v) for v in sorted(set(e))))
    for axis in axes[1]:
        axis.set_xticks(budgets, [f"{b:g}×\n{epochs[b]} ep." for b in budgets])
        axis.set_xlabel("training budget (joint-training epochs)")
    seeds = table.groupby("experiment").seed.nunique()
    note = f"{seeds.min()} training seed{'s' if seeds.min() > 1 else ''} per point"
    if seeds.min() != seeds.max():
        note = f"{seeds.min()}–{seeds.max()} training seeds per point"
    axes[0, 0].legend(fontsize=9, title=note, title_fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
