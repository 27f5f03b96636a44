"""Preprocessing (paper section 2.3) in two stages, so datasets are processed in parallel:

1. :func:`preprocess_dataset`, per dataset: check each subject's files, resample to isotropic
   spacing with ANTs (linear for images, nearest for labels), skull-strip with the label mask
   and crop to the brain. A dataset whose images still have their skull (``skull_stripped:
   false``) has its brain extracted from the resampled T1 first
   (:func:`dnorm.preprocess.skullstrip.extract_brain`): its images are stripped with that mask,
   as ``dnorm segment --skull-strip`` strips a new scan, and the mask is written beside them.
2. :func:`harmonize_datasets`, over all datasets: zero-pad every volume to one common shape,
   scale intensities to [0, 1] and assign the train/val/test splits from the study seed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
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


def extract_subject_brain(row: pd.Series, t1: np.ndarray, affine: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Boolean X×Y×Z brain mask of a subject's resampled whole-head ``t1`` (RAS ``affine``), by
    :func:`dnorm.preprocess.skullstrip.extract_brain`; logs its Dice against ``labels > 0``."""
    from dnorm.preprocess.skullstrip import extract_brain  # imports nilearn: only where needed

    _, mask_image = extract_brain(nib.Nifti1Image(t1, affine), source=row.t1)
    mask = np.asarray(mask_image.dataobj) > 0
    labelled = labels > 0
    log.info("%s/%s: extracted brain mask, Dice %.3f against labels > 0", row.dataset, row.subject,
             2.0 * (mask & labelled).sum() / max(int(mask.sum() + labelled.sum()), 1))
    return mask


def preprocess_subject(row: pd.Series, spacing_mm: float, out_dir: Path, skull_stripped: bool = True) -> dict:
    """Resample, skull-strip and crop one subject; return its manifest row (new paths).

    ``skull_stripped``: the brain is the labelled voxels (labels > 0), as for brain-only images.
    ``False``: the images have a skull; the brain is extracted from the resampled T1
    (:func:`extract_subject_brain`), the images are stripped with it and it is written as
    ``<subject>_brainmask.nii.gz`` (uint8, on the cropped grid) beside them. The labels stay
    whole, the ground truth: the crop box holds both the mask and the labels.
    """
    check_subject_files(row)
    labels, label_affine = resample_file(row.label, spacing_mm, NEAREST)
    labels = np.rint(labels).astype(np.uint8)
    images = {}
    for column in MODALITY_COLUMNS:
        if row[column]:
            images[column] = resample_file(row[column], spacing_mm, LINEAR)
            check_same_grid(row[column], images[column][0].shape, images[column][1], row.label, labels.shape,
                            label_affine)
    if skull_stripped:
        brain = labels > 0
        box = bounding_box(brain)
    else:
        brain = extract_subject_brain(row, *images["t1"], labels)
        box = bounding_box(brain | (labels > 0))
        mask, mask_affine = crop(brain.astype(np.uint8), label_affine, box)
        save_nifti(mask, mask_affine, out_dir / f"{row.subject}_brainmask.nii.gz")
    record = row.to_dict()
    for column, (image, affine) in images.items():
        stripped = np.where(brain, np.maximum(image, 0.0), 0.0).astype(np.float32)
        cropped, cropped_affine = crop(stripped, affine, box)
        record[column] = str(out_dir / f"{row.subject}_{column}.nii.gz")
        save_nifti(cropped, cropped_affine, record[column])
    cropped_labels, cropped_affine = crop(labels, label_affine, box)
    record["label"] = str(out_dir / f"{row.subject}_label.nii.gz")
    save_nifti(cropped_labels, cropped_affine, record["label"])
    record["spacing"] = format_spacing(spacing_of(cropped_affine))
    return record


def preprocess_dataset(manifest_path: str | Path, spacing_mm: float, out_dir: str | Path,
                       skull_stripped: bool = True, threads: int = 1) -> Path:
    """Stage 1 for every subject of one dataset's manifest; writes ``out_dir/manifest.csv`` last.

    ``skull_stripped=False`` (config ``datasets.<name>.skull_stripped``): extract each brain first
    (:func:`preprocess_subject`), with ANTs on ``threads`` threads.
    """
    out_dir = Path(out_dir)
    table = read_manifest(manifest_path)
    if not skull_stripped:
        from dnorm.preprocess.skullstrip import limit_threads

        limit_threads(threads)  # before the first ANTs call of the process, or ITK ignores it
    rows = []
    for _, row in table.iterrows():
        rows.append(preprocess_subject(row, spacing_mm, out_dir, skull_stripped))
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
