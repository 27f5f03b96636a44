"""Figure 2: per-class intensity distributions of each dataset (and of each ABIDE-like site)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from dnorm.domain_gap import CLASS_NAMES  # noqa: E402
from dnorm.io import atomic_path, load_labels, load_volume  # noqa: E402
from dnorm.manifest import read_manifest  # noqa: E402

CLASS_COLOURS = {"CSF": "#4C72B0", "GM": "#55A868", "WM": "#C44E52"}


def class_histograms(manifest_path: str, bins: int, modality: str = "t1") -> pd.DataFrame:
    """Tidy table (dataset, site, class, bin_centre, count) of intensity histograms on [0, 1],
    summed over each site's subjects: computing counts per volume keeps memory flat."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    tables = []
    for _, row in read_manifest(manifest_path).iterrows():
        image, _ = load_volume(row[modality])
        labels, _ = load_labels(row.label)
        for label, name in CLASS_NAMES.items():
            counts, _ = np.histogram(image[labels == label], bins=edges)
            tables.append(pd.DataFrame({"dataset": row.dataset, "site": row.site, "class": name,
                                        "bin_centre": centres, "count": counts}))
    table = pd.concat(tables, ignore_index=True)
    return table.groupby(["dataset", "site", "class", "bin_centre"], as_index=False)["count"].sum()


def _densities(table: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sum counts over everything but ``by`` + class, then normalize each curve to unit area."""
    summed = table.groupby(by + ["class", "bin_centre"], as_index=False)["count"].sum()
    width = float(np.diff(np.sort(summed.bin_centre.unique())[:2])[0])
    totals = summed.groupby(by + ["class"])["count"].transform("sum")
    summed["density"] = summed["count"] / (totals * width)
    return summed


def plot_dataset_distributions(table: pd.DataFrame, path: str) -> None:
    """One panel per dataset, one curve per class (the paper's Figure 2, all datasets)."""
    densities = _densities(table, ["dataset"])
    datasets = sorted(densities.dataset.unique())
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), sharey=False, squeeze=False)
    for axis, dataset in zip(axes[0], datasets):
        subset = densities[densities.dataset == dataset]
        sns.lineplot(data=subset, x="bin_centre", y="density", hue="class", palette=CLASS_COLOURS,
                     hue_order=list(CLASS_COLOURS), ax=axis)
        for name, colour in CLASS_COLOURS.items():
            curve = subset[subset["class"] == name]
            axis.fill_between(curve.bin_centre, curve.density, alpha=0.2, color=colour)
        axis.set(title=dataset, xlabel="T1 intensity (scaled to [0, 1])", ylabel="density", xlim=(0, 1))
    fig.suptitle("Per-class T1 intensity distributions after preprocessing")
    fig.tight_layout()
    save_figure(fig, path)


def plot_site_distributions(table: pd.DataFrame, dataset: str, path: str) -> None:
    """One panel per class, one curve per site of ``dataset``: how the scanners differ."""
    densities = _densities(table[table.dataset == dataset], ["site"])
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharex=True)
    for axis, name in zip(axes, CLASS_COLOURS):
        sns.lineplot(data=densities[densities["class"] == name], x="bin_centre", y="density", hue="site",
                     ax=axis, palette="tab20", linewidth=1.0, legend=(name == "WM"))
        axis.set(title=f"{dataset}: {name}", xlabel="T1 intensity (scaled to [0, 1])", xlim=(0, 1))
    if axes[-1].get_legend() is not None:
        sns.move_legend(axes[-1], "upper left", bbox_to_anchor=(1.02, 1.0), ncol=1, fontsize=7, title="site")
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path: str) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def most_multi_site_dataset(table: pd.DataFrame) -> str:
    """The dataset with the most sites (ties: alphabetical)."""
    counts = table.groupby("dataset")["site"].nunique()
    return str(counts[counts == counts.max()].index.sort_values()[0])


def plot_figure2(manifest_path: str, bins: int, datasets_png: str, sites_png: str, histograms_csv: str) -> None:
    """Histogram every preprocessed volume once, then draw both panels and keep the numbers."""
    table = class_histograms(manifest_path, bins)
    plot_dataset_distributions(table, datasets_png)
    plot_site_distributions(table, most_multi_site_dataset(table), sites_png)
    with atomic_path(histograms_csv) as tmp:
        table.to_csv(tmp, index=False)
