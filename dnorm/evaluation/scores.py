"""Per-subject segmentation scores: Dice, MHD (Eq. 5), HD95 and average surface distance per class.

Empty classes: when a class is absent from the prediction or the reference, its surface
distances are NaN and ``pred_empty``/``ref_empty`` flag it (:func:`dnorm.metrics.surface_metrics`);
Dice is then 0 (one mask empty) or NaN (both empty, :func:`dnorm.metrics.dice`). Tables average
distances over the subjects where they are defined and report how many were not.
"""

from __future__ import annotations

import os

import pandas as pd

from dnorm.evaluation.segment import manifest_row
from dnorm.io import atomic_path, check_same_grid, load_labels, spacing_of
from dnorm.manifest import read_manifest
from dnorm.metrics import dice, surface_metrics

CLASSES = {1: "CSF", 2: "GM", 3: "WM"}
COLUMNS = ["experiment", "seed", "dataset", "subject", "class", "dice", "mhd", "hd95", "asd",
           "pred_empty", "ref_empty"]


def score_subject(prediction_path: str | os.PathLike, reference_path: str | os.PathLike) -> pd.DataFrame:
    """One row per class (CSF, GM, WM) comparing a predicted label image with the reference.
    Distances are in mm from the reference's voxel spacing. Raises ``ValueError`` naming the
    files if they are not on one grid or hold labels outside 0–3."""
    prediction, affine = load_labels(prediction_path)
    reference, reference_affine = load_labels(reference_path)
    check_same_grid(prediction_path, prediction.shape, affine, reference_path, reference.shape, reference_affine)
    overlaps = dice(prediction, reference, labels=tuple(CLASSES))
    surfaces = surface_metrics(prediction, reference, spacing=spacing_of(reference_affine), labels=tuple(CLASSES))
    return pd.DataFrame([{"class": name, "dice": overlaps[label],
                          **{key: surfaces[label][key] for key in ("mhd", "hd95", "asd", "pred_empty", "ref_empty")}}
                         for label, name in CLASSES.items()])


def score_experiment(manifest_path, predictions: dict[tuple[str, str], str], experiment: str, seed: int,
                     out_csv: str | os.PathLike) -> pd.DataFrame:
    """Score every ``(dataset, subject) → label image`` of one trained model against the
    manifest's reference labels; write the per-subject, per-class table (:data:`COLUMNS`)."""
    manifest = read_manifest(manifest_path)
    tables = []
    for (dataset, subject), path in predictions.items():
        reference = manifest_row(manifest, dataset, subject, str(manifest_path)).label
        tables.append(score_subject(path, reference).assign(experiment=experiment, seed=seed, dataset=dataset,
                                                            subject=subject))
    table = pd.concat(tables, ignore_index=True)[COLUMNS]
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
