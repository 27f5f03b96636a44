"""Table 6 and Figs. 4 and 8: does G remove a synthetic bias field from test volumes?

Each test volume is multiplied by the paper's field B(y) = (y / H)·α + (1 − α) (Eq. 6) over its
whole height H along y (dark at y = 0), for α = 0 (the original) and every configured α; G then
normalizes the degraded volume (sliding windows as at test time). Pearson ρ between intensity and
y over the brain (input > 0) measures the remaining bias, on the volume and on the axial slice with
the most brain voxels (the paper used one axial slice). Two-modality models are measured on T1.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from dnorm.evaluation.segment import load_subject, manifest_row
from dnorm.inference.brain_box import predict_in_brain_box
from dnorm.inference.predict import experiment_of, load_model
from dnorm.io import atomic_path
from dnorm.manifest import read_manifest
from dnorm.metrics import pearson_bias, pearson_bias_slice
from dnorm.metrics.bias import densest_slice
from dnorm.training.augment import apply_bias, bias_profile
from dnorm.training.device import select_device

log = logging.getLogger(__name__)

Y_AXIS = 1  # of an X×Y×Z volume


def plane_means(image: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Mean brain intensity of each plane perpendicular to y (NaN where a plane has no brain)."""
    sums = np.where(brain, image, 0.0).sum(axis=(0, 2))
    counts = brain.sum(axis=(0, 2))
    return np.divide(sums, counts, out=np.full(sums.shape, np.nan), where=counts > 0)


def correlations(images: dict[str, np.ndarray], brain: np.ndarray) -> dict[str, float]:
    """ρ over the volume and over the densest axial slice, for each named X×Y×Z image."""
    index = densest_slice(brain, slice_axis=2)
    out = {}
    for name, image in images.items():
        out[f"rho_{name}"] = pearson_bias(image, brain, axis=Y_AXIS)
        out[f"rho_slice_{name}"] = pearson_bias_slice(image, brain, slice_index=index, slice_axis=2, axis=Y_AXIS)
    return out


def degrade(volume: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """``(degraded C×X×Y×Z volume, field along y)`` for Eq. 6 over the volume's whole height."""
    height = volume.shape[2]
    return apply_bias(volume, 0, height, alpha), bias_profile(0, height, height, alpha)


def measure_bias_robustness(model_path, manifest_path, subjects, alphas, experiment: str, seed: int,
                            correlations_csv, profiles_csv, examples_npz, stride: int = 8, batch_size: int = 16,
                            gpus: int = 1) -> pd.DataFrame:
    """ρ of the degraded input and of G's output per test subject and α (α = 0: original), the
    mean intensity per y plane (Fig. 8) and, for the first subject of each dataset at the largest
    α, the axial slices of input, field, degraded and normalized volumes (Fig. 4, ``.npz`` keys
    ``<dataset>/<image>``, arrays indexed [x, y])."""
    networks, card = load_model(model_path)
    if not experiment_of(card).uses_generator:
        raise ValueError(f"{model_path}: method {card['experiment']['method']!r} has no generator to normalize with")
    device = select_device(gpus)
    networks.to(device)
    manifest = read_manifest(manifest_path)
    modalities = card["experiment"]["modalities"]
    levels = [0.0, *sorted(float(a) for a in alphas)]
    rows, profiles, examples = [], [], {}
    for dataset, subject in subjects:
        volume, _ = load_subject(manifest_row(manifest, dataset, subject, str(manifest_path)), modalities)
        brain = volume[0] > 0
        for alpha in levels:
            degraded, field = degrade(volume, alpha)
            _, normalized = predict_in_brain_box(degraded, brain, networks, card, stride=stride,
                                                 batch_size=batch_size, device=device)
            images = {"original": volume[0], "degraded": degraded[0],
                      "normalized": np.where(brain, np.clip(normalized[0], 0.0, 1.0), 0.0)}
            rows.append({"experiment": experiment, "seed": seed, "dataset": dataset, "subject": subject,
                         "alpha": alpha, **correlations({k: images[k] for k in ("degraded", "normalized")}, brain)})
            profiles.append(pd.DataFrame({"dataset": dataset, "subject": subject, "alpha": alpha,
                                          "y": np.arange(volume.shape[2]),
                                          **{k: plane_means(v, brain) for k, v in images.items()}}))
            if alpha == levels[-1] and dataset not in {key.split("/")[0] for key in examples}:
                z = densest_slice(brain, slice_axis=2)
                field_volume = np.broadcast_to(field[None, :, None], brain.shape) * brain
                for name, image in {"input": volume[0], "field": field_volume, "degraded": degraded[0],
                                    "normalized": images["normalized"]}.items():
                    examples[f"{dataset}/{name}"] = np.asarray(image[:, :, z], dtype=np.float32)
        log.info("%s/%s: %s", dataset, subject, [(r["alpha"], round(r["rho_degraded"], 3),
                                                  round(r["rho_normalized"], 3)) for r in rows[-len(levels):]])
    table = pd.DataFrame(rows)
    with atomic_path(correlations_csv) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(profiles_csv) as tmp:
        pd.concat(profiles, ignore_index=True).to_csv(tmp, index=False)
    with atomic_path(examples_npz) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, alpha=np.float32(levels[-1]), **examples)
    return table
