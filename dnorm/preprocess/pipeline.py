"""Preprocessing (paper section 2.3) in two stages, so datasets are processed in parallel:

1. :func:`preprocess_dataset`, per dataset: check each subject's files, resample to isotropic
   spacing with ANTs (linear for images, nearest for labels), skull-strip with the label mask
   and crop to the brain.
2. :func:`harmonize_datasets`, over all datasets: zero-pad every volume to one common shape,
   scale intensities to [0, 1] and assign the train/val/test splits from the study seed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from dnorm.io import check_same_grid, load_image, load_labels, load_volume, save_nifti, spacing_of
from dnorm.manifest import format_spacing, read_manifest, write_manifest
from dnorm.preprocess.geometry import bounding_box, common_shape, crop, pad, scale_to_unit
from dnorm.preprocess.resample import LINEAR, NEAREST, resample_file
from dnorm.preprocess.splits import assign_splits

log = logging.getLogger(__name__)
MODALITY_COLUMNS = ("t1", "t2")


def check_subject_files(row: pd.Series) -> None:
    """Raise ``ValueError`` naming the file if an image is unreadable, holds NaN, or is not on
    its label's grid, or if the label holds values outside 0-3."""
    labels, label_affine = load_labels(row.label)
    for column in MODALITY_COLUMNS:
        if row[column]:
            image, affine = load_volume(row[column])
            check_same_grid(row[column], image.shape, affine, row.label, labels.shape, label_affine)


def preprocess_subject(row: pd.Series, spacing_mm: float, out_dir: Path) -> dict:
    """Resample, skull-strip and crop one subject; return its manifest row (new paths)."""
    check_subject_files(row)
    labels, label_affine = resample_file(row.label, spacing_mm, NEAREST)
    labels = np.rint(labels).astype(np.uint8)
    brain = labels > 0
    box = bounding_box(brain)
    record = row.to_dict()
    for column in MODALITY_COLUMNS:
        if not row[column]:
            continue
        image, affine = resample_file(row[column], spacing_mm, LINEAR)
        check_same_grid(row[column], image.shape, affine, row.label, labels.shape, label_affine)
        stripped = np.where(brain, np.maximum(image, 0.0), 0.0).astype(np.float32)
        cropped, cropped_affine = crop(stripped, affine, box)
        record[column] = str(out_dir / f"{row.subject}_{column}.nii.gz")
        save_nifti(cropped, cropped_affine, record[column])
    cropped_labels, cropped_affine = crop(labels, label_affine, box)
    record["label"] = str(out_dir / f"{row.subject}_label.nii.gz")
    save_nifti(cropped_labels, cropped_affine, record["label"])
    record["spacing"] = format_spacing(spacing_of(cropped_affine))
    return record


def preprocess_dataset(manifest_path: str | Path, spacing_mm: float, out_dir: str | Path) -> Path:
    """Stage 1 for every subject of one dataset's manifest; writes ``out_dir/manifest.csv`` last."""
    out_dir = Path(out_dir)
    table = read_manifest(manifest_path)
    rows = []
    for _, row in table.iterrows():
        rows.append(preprocess_subject(row, spacing_mm, out_dir))
        log.info("%s/%s cropped to %s", row.dataset, row.subject, load_image(rows[-1]["label"]).shape)
    manifest = out_dir / "manifest.csv"
    write_manifest(pd.DataFrame(rows), manifest)
    return manifest


def harmonize_datasets(
    manifest_paths, splits: dict, seed: int, clip_percentile: float, min_shape: int, out_dir: str | Path
) -> Path:
    """Stage 2 over all datasets: pad to the common shape, scale to [0, 1], assign splits.

    ``splits`` maps dataset name to train/val/test fractions. Writes NIfTI volumes under
    ``out_dir/<dataset>/`` and the study manifest ``out_dir/manifest.csv`` (last).
    """
    out_dir = Path(out_dir)
    table = pd.concat([read_manifest(p) for p in manifest_paths], ignore_index=True)
    shapes = [load_image(path).shape[:3] for path in table.label]  # headers only: no voxel reads
    target = common_shape(shapes, min_shape)
    log.info("common shape %s over %d subjects", target, len(table))
    rows = []
    for dataset, group in table.groupby("dataset", sort=True):
        if dataset not in splits:
            raise ValueError(f"{manifest_paths}: dataset {dataset!r} has no split fractions in the config")
        if (group.split != "").all():  # a user's manifest that fixes its own split keeps it
            assignment = dict(zip(group.subject, group.split))
        else:
            assignment = assign_splits(group.subject.tolist(), splits[dataset], seed, dataset)
        for _, row in group.iterrows():
            rows.append(harmonize_subject(row, target, clip_percentile, out_dir / dataset, assignment[row.subject]))
    manifest = out_dir / "manifest.csv"
    write_manifest(pd.DataFrame(rows), manifest)
    return manifest


def harmonize_subject(row: pd.Series, target, clip_percentile: float, out_dir: Path, split: str) -> dict:
    """Pad one subject's volumes to ``target`` and scale its images to [0, 1]. Written as
    uncompressed NIfTI so training can memory-map them instead of loading every volume."""
    labels, label_affine = load_labels(row.label)
    padded_labels, padded_affine = pad(labels, label_affine, target)
    brain = padded_labels > 0
    record = row.to_dict() | {"split": split}
    for column in MODALITY_COLUMNS:
        if row[column]:
            image, affine = load_volume(row[column])
            padded, _ = pad(image, affine, target)
            record[column] = str(out_dir / f"{row.subject}_{column}.nii")
            save_nifti(scale_to_unit(padded, brain, clip_percentile), padded_affine, record[column])
    record["label"] = str(out_dir / f"{row.subject}_label.nii")
    save_nifti(padded_labels, padded_affine, record["label"])
    return record
