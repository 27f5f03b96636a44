"""Table 4: how different the datasets' intensity distributions are, before and after G.

For one trained model, the brain voxels (input > 0) of its test subjects are pooled per dataset
into histograms with fixed bins on [0, 1], and the generalized Jensen–Shannon divergence between
the datasets' histograms is computed (:func:`dnorm.metrics.jsd`, nats) for the input images and
for G's outputs, over all brain voxels and per tissue class of the reference labels. Two-modality
models are measured on their first channel (T1).
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from dnorm.evaluation.scores import CLASSES
from dnorm.evaluation.segment import load_normalized_t1, manifest_row
from dnorm.io import atomic_path, load_labels, load_volume
from dnorm.manifest import read_manifest
from dnorm.metrics import intensity_histogram, jsd

COLUMNS = ["experiment", "seed", "datasets", "image", "region", "jsd"]


def dataset_histograms(samples, bins: int) -> dict[tuple[str, str, str], np.ndarray]:
    """Histogram counts keyed by ``(image, region, dataset)`` summed over subjects.

    ``samples`` yields ``(dataset, {image kind: X×Y×Z array}, labels X×Y×Z)``; regions are
    ``brain`` (reference labels > 0) and each class of :data:`CLASSES`."""
    totals: dict[tuple[str, str, str], np.ndarray] = {}
    for dataset, images, labels in samples:
        regions = {"brain": labels > 0} | {name: labels == label for label, name in CLASSES.items()}
        for kind, image in images.items():
            for region, mask in regions.items():
                counts = intensity_histogram(image[mask], bins=bins)
                key = (kind, region, dataset)
                totals[key] = totals.get(key, 0) + counts
    return totals


def measure_divergence(manifest_path, subjects, normalized_paths, experiment: str, seed: int, bins: int,
                       out_csv: str | os.PathLike) -> pd.DataFrame:
    """JSD between the test datasets' distributions, input vs normalized (:data:`COLUMNS`).

    ``subjects``: ``(dataset, subject)`` pairs, in the order of ``normalized_paths``."""
    manifest = read_manifest(manifest_path)

    def samples():
        for (dataset, subject), path in zip(subjects, normalized_paths):
            row = manifest_row(manifest, dataset, subject, str(manifest_path))
            labels, _ = load_labels(row.label)
            image, _ = load_volume(row.t1)
            yield dataset, {"input": image, "normalized": load_normalized_t1(path)}, labels

    histograms = dataset_histograms(samples(), bins)
    datasets = sorted({key[2] for key in histograms})
    rows = []
    for kind, region in sorted({key[:2] for key in histograms}):
        stack = np.stack([histograms[(kind, region, d)] for d in datasets])
        rows.append({"experiment": experiment, "seed": seed, "datasets": "+".join(datasets), "image": kind,
                     "region": region, "jsd": jsd(stack) if len(datasets) > 1 else float("nan")})
    table = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
