"""Predict one preprocessed test subject with a trained model and write the results as NIfTI.

Evaluation runs on the preprocessed grid (the model's voxel spacing), where the reference labels
live, as in the paper, with :func:`dnorm.inference.brain_box.predict_in_brain_box`, the function
``dnorm normalize`` runs too: windows are laid out over the bounding box of the brain (input
channel 0 > 0: volumes are skull-stripped), windows holding no brain voxel are skipped (this does
not change any brain voxel's result), and voxels no window covers are background.
"""

from __future__ import annotations

import logging
import os

import nibabel as nib
import numpy as np
import pandas as pd

from dnorm.inference.brain_box import predict_in_brain_box
from dnorm.inference.predict import experiment_of, load_model, standardize_volume
from dnorm.io import load_volume, save_nifti
from dnorm.manifest import read_manifest
from dnorm.training.device import select_device

log = logging.getLogger(__name__)


def manifest_row(manifest: pd.DataFrame, dataset: str, subject: str, source: str = "manifest") -> pd.Series:
    """The manifest row of ``dataset``/``subject``; ``ValueError`` naming ``source`` if absent."""
    rows = manifest[(manifest.dataset == dataset) & (manifest.subject.astype(str) == str(subject))]
    if len(rows) != 1:
        raise ValueError(f"{source}: expected one row for dataset {dataset!r} subject {subject!r}, found {len(rows)}")
    return rows.iloc[0]


def load_subject(row: pd.Series, modalities) -> tuple[np.ndarray, np.ndarray]:
    """``(C×X×Y×Z float32 volume, affine)`` of a preprocessed manifest row, channels in
    ``modalities`` order. Raises ``ValueError`` naming the file for a missing modality."""
    images, affine = [], None
    for modality in modalities:
        path = row.get(modality)
        if not isinstance(path, str) or not path:
            raise ValueError(f"subject {row.dataset}/{row.subject} has no {modality} image in the manifest")
        image, image_affine = load_volume(path)
        affine = image_affine if affine is None else affine
        images.append(image)
    return np.stack(images), affine


def segment_test_subject(
    model_path: str | os.PathLike,
    manifest_path: str | os.PathLike,
    dataset: str,
    subject: str,
    labels_path: str | os.PathLike,
    normalized_path: str | os.PathLike,
    probabilities_path: str | os.PathLike | None = None,
    stride: int = 8,
    batch_size: int = 16,
    gpus: int = 1,
) -> None:
    """Segment (and normalize) one preprocessed subject; write, with the input's affine:

    - ``labels_path``: uint8 X×Y×Z argmax of the window-averaged class probabilities (0 BG, 1 CSF,
      2 GM, 3 WM), background outside the brain (input > 0);
    - ``normalized_path``: float32 image the segmenter saw, X×Y×Z (×C for two modalities): G's
      window-averaged output clipped to [0, 1] (0 outside the brain) for Pre-processor and Ours, the raw input for the U-Net, the
      brain-z-scored input for Standardization;
    - ``probabilities_path`` (optional): float32 X×Y×Z×4 class probabilities (background 1
      outside the brain).
    """
    networks, card = load_model(model_path)
    experiment = experiment_of(card)
    row = manifest_row(read_manifest(manifest_path), dataset, subject, str(manifest_path))
    volume, affine = load_subject(row, experiment.modalities)
    device = select_device(gpus)
    networks.to(device)
    brain = volume[0] > 0
    probabilities, normalized = predict_in_brain_box(volume, brain, networks, card, stride=stride,
                                                     batch_size=batch_size, device=device)
    if normalized is None:
        normalized = standardize_volume(volume) if experiment.standardize else volume
    else:  # as `dnorm normalize` writes it
        normalized = np.where(brain, np.clip(normalized, 0.0, 1.0), 0.0).astype(np.float32)
    probabilities[:, ~brain] = 0.0  # skull-stripped input: outside the brain is background,
    probabilities[0, ~brain] = 1.0  # as `dnorm segment` writes it
    labels = np.argmax(probabilities, axis=0).astype(np.uint8)
    log.info("%s/%s with %s: labels %s", dataset, subject, experiment.name,
             {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))})
    save_nifti(labels, affine, labels_path)
    save_nifti(normalized[0] if len(normalized) == 1 else np.moveaxis(normalized, 0, -1), affine, normalized_path)
    if probabilities_path is not None:
        save_nifti(np.moveaxis(probabilities, 0, -1), affine, probabilities_path)


def load_normalized_t1(path: str | os.PathLike) -> np.ndarray:
    """The first channel (T1) of a ``*_normalized.nii.gz`` written by :func:`segment_test_subject`
    (X×Y×Z, or X×Y×Z×C for two-modality models), float32. ``ValueError`` names a bad file."""
    try:
        image = nib.load(str(path))
    except Exception as error:  # nibabel raises several types for missing or corrupt files
        raise ValueError(f"{path}: unreadable image ({error})") from error
    if len(image.shape) not in (3, 4):
        raise ValueError(f"{path}: expected X×Y×Z or X×Y×Z×C, got shape {image.shape}")
    data = np.asarray(image.dataobj, dtype=np.float32)
    data = data[..., 0] if data.ndim == 4 else data
    if not np.isfinite(data).all():
        raise ValueError(f"{path}: NaN or infinite voxels")
    return data
