"""How different the datasets look: per-class intensity statistics of preprocessed images.

The isointense infant data (iSEG) is hard precisely because grey and white matter overlap in T1:
we quantify that as the separation |mean_WM - mean_GM| / pooled std, per subject.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dnorm.io import load_labels, load_volume
from dnorm.manifest import read_manifest
from dnorm.metrics import intensity_histogram, jsd

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


def subject_table(manifest_path: str, modality: str = "t1", bins: int = 100) -> pd.DataFrame:
    """One row per subject: dataset, site, class means/stds, the GM/WM separation and the
    subject's brain intensity histogram (``histogram``, ``bins`` counts on [0, 1])."""
    rows = []
    for _, row in read_manifest(manifest_path).iterrows():
        image, _ = load_volume(row[modality])
        labels, _ = load_labels(row.label)
        stats = class_statistics(image, labels)
        histogram = intensity_histogram(image[labels > 0], bins=bins)
        rows.append({"dataset": row.dataset, "site": row.site, "subject": row.subject, **stats,
                     "gm_wm_separation": gm_wm_separation(stats), "histogram": histogram})
    return pd.DataFrame(rows)


def site_divergence(subjects: pd.DataFrame) -> pd.Series:
    """Per dataset: generalized Jensen-Shannon divergence (nats) between its sites' pooled
    brain intensity histograms; 0 for a single-site dataset, larger when scanners differ."""
    def divergence(group: pd.DataFrame) -> float:
        per_site = group.groupby("site")["histogram"].apply(lambda h: np.sum(np.stack(h.to_list()), axis=0))
        return jsd(np.stack(per_site.to_list())) if len(per_site) > 1 else 0.0

    return subjects.groupby("dataset")[["site", "histogram"]].apply(divergence).rename("site_jsd")


def dataset_summary(subjects: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: number of subjects and sites, mean class intensities and GM/WM separation,
    the spread of the per-site mean GM intensity and the divergence between sites."""
    site_means = subjects.groupby(["dataset", "site"])["mean_GM"].mean()
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
    summary["site_GM_mean_sd"] = site_means.groupby("dataset").std().reindex(summary.index)
    summary["site_jsd"] = site_divergence(subjects).reindex(summary.index)
    return summary.reset_index()


def write_domain_gap_tables(manifest_path: str, summary_csv: str, subjects_csv: str) -> pd.DataFrame:
    """Compute both tables from a preprocessed manifest and write them atomically."""
    from dnorm.io import atomic_path

    subjects = subject_table(manifest_path)
    summary = dataset_summary(subjects)
    subjects = subjects.drop(columns="histogram")
    for table, path in ((subjects, subjects_csv), (summary, summary_csv)):
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False, float_format="%.4f")
    return summary
