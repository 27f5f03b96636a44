"""How different the datasets look: per-class intensity statistics of preprocessed images.

The isointense infant data (iSEG) is hard precisely because grey and white matter overlap in T1:
we quantify that as the separation |mean_WM - mean_GM| / pooled std, per subject.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dnorm.io import load_labels, load_volume
from dnorm.manifest import read_manifest

CLASS_NAMES = {1: "CSF", 2: "GM", 3: "WM"}


def class_statistics(image: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Mean and standard deviation of ``image`` within each labelled class (X×Y×Z arrays)."""
    stats = {}
    for label, name in CLASS_NAMES.items():
        values = image[labels == label]
        stats[f"mean_{name}"] = float(values.mean()) if values.size else float("nan")
        stats[f"std_{name}"] = float(values.std()) if values.size else float("nan")
    return stats


def gm_wm_separation(stats: dict[str, float]) -> float:
    """|mean_WM - mean_GM| / pooled std: below 1 the two classes overlap heavily (isointense)."""
    pooled = np.sqrt((stats["std_GM"] ** 2 + stats["std_WM"] ** 2) / 2.0)
    return float(abs(stats["mean_WM"] - stats["mean_GM"]) / pooled) if pooled > 0 else float("nan")


def subject_table(manifest_path: str, modality: str = "t1") -> pd.DataFrame:
    """One row per subject: dataset, site, class means/stds and the GM/WM separation."""
    rows = []
    for _, row in read_manifest(manifest_path).iterrows():
        image, _ = load_volume(row[modality])
        labels, _ = load_labels(row.label)
        stats = class_statistics(image, labels)
        rows.append({"dataset": row.dataset, "site": row.site, "subject": row.subject, **stats,
                     "gm_wm_separation": gm_wm_separation(stats)})
    return pd.DataFrame(rows)


def dataset_summary(subjects: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: number of subjects and sites, mean class intensities and GM/WM separation,
    and the spread of the per-site mean WM intensity (how different the sites look)."""
    site_means = subjects.groupby(["dataset", "site"])["mean_WM"].mean()
    summary = subjects.groupby("dataset").agg(
        subjects=("subject", "count"),
        sites=("site", "nunique"),
        mean_CSF=("mean_CSF", "mean"),
        mean_GM=("mean_GM", "mean"),
        mean_WM=("mean_WM", "mean"),
        gm_wm_separation=("gm_wm_separation", "mean"),
        gm_wm_separation_min=("gm_wm_separation", "min"),
        gm_wm_separation_max=("gm_wm_separation", "max"),
    )
    summary["site_WM_mean_sd"] = site_means.groupby("dataset").std().reindex(summary.index)
    return summary.reset_index()


def write_domain_gap_tables(manifest_path: str, summary_csv: str, subjects_csv: str) -> pd.DataFrame:
    """Compute both tables from a preprocessed manifest and write them atomically."""
    from dnorm.io import atomic_path

    subjects = subject_table(manifest_path)
    summary = dataset_summary(subjects)
    for table, path in ((subjects, subjects_csv), (summary, summary_csv)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.4f")
    return summary
