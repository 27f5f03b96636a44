"""A tiny preprocessed study built by hand (no synthesis): two datasets with different contrast."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from dnorm.manifest import write_manifest

SHAPE = (36, 36, 36)


def blob_labels(rng: np.random.Generator) -> np.ndarray:
    """Nested spheres: WM core, GM shell, CSF rim, background outside."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"))
    centre = np.array(SHAPE) / 2 + rng.uniform(-2, 2, 3)
    radius = np.linalg.norm(grid - centre[:, None, None, None], axis=0)
    labels = np.zeros(SHAPE, np.uint8)
    labels[radius < 15] = 1
    labels[radius < 12] = 2
    labels[radius < 7] = 3
    return labels


def write_study(folder: Path, seed: int = 0) -> Path:
    """Two datasets x (2 train, 1 val, 1 test) subjects, T1 and T2, uncompressed NIfTI."""
    rng = np.random.default_rng(seed)
    means = {"bright": (0.3, 0.6, 0.9), "flat": (0.5, 0.7, 0.75)}
    rows = []
    for dataset, (csf, gm, wm) in means.items():
        for index, split in enumerate(["train", "train", "val", "test"]):
            labels = blob_labels(rng)
            image = np.choose(labels, [0.0, csf, gm, wm]) + rng.normal(0, 0.03, SHAPE) * (labels > 0)
            image = np.clip(image, 0, 1).astype(np.float32)
            subject = f"{dataset}_{index}"
            paths = {}
            for column, data in (("t1", image), ("t2", 1.0 - image * (labels > 0)), ("label", labels)):
                paths[column] = str(folder / f"{subject}_{column}.nii")
                nib.save(nib.Nifti1Image(data.astype(np.uint8 if column == "label" else np.float32), np.eye(4)),
                         paths[column])
            rows.append(dict(dataset=dataset, subject=subject, site=dataset, split=split, spacing="1.000x1.000x1.000",
                             **paths))
    manifest = folder / "manifest.csv"
    write_manifest(pd.DataFrame(rows), manifest)
    return manifest


def tiny_training(**overrides) -> dict:
    training = {
        "patch_size": 16, "train_patches_per_dataset": 16, "val_patches_per_dataset": 8, "batch_size": 4,
        "epochs": 2, "discriminator_steps": 3, "generator_warmup_epochs": 1, "adversarial_rampup": 0.5,
        "warmup_target_rmse": 0.05, "warmup_segmenter": True, "warmup_discriminator": True,
        "generator_loss": "minimax", "dice_reduction": "per_class", "zero_background": True,
        "discriminator_sees_augmentation": False,
        "generator": {"width": 2, "depth": 2, "max_width": 8, "upsampling": "trilinear", "activation": "leaky_relu"},
        "segmenter": {"width": 2, "depth": 2, "max_width": 8, "upsampling": "trilinear", "activation": "leaky_relu"},
        "discriminator": {"channels": [4, 8], "dropout": 0.25},
        "optimizer": {"lr": 0.001, "lr_discriminator": 0.0001, "weight_decay": 0.001, "milestones": [0.5, 0.75],
                      "gamma": 0.1, "plateau_patience": 7},
        "class_weights": [0.22, 0.30, 0.20, 0.28], "bias_probability": 0.5, "precision": "float32",
        "channels_last": False,
    }
    return training | overrides


def build_trainer(manifest: Path, folder: Path, experiment, training: dict, checkpoint: Path, seed: int = 3):
    """A Trainer on the hand-made study, with patch tables written under ``folder``."""
    import torch

    from dnorm.manifest import read_manifest
    from dnorm.training.patches import write_patch_table
    from dnorm.training.run import load_patch_sets
    from dnorm.training.trainer import Trainer

    table = read_manifest(manifest)
    tables = []
    for dataset in experiment.datasets:
        path = folder / f"patches_{dataset}.csv"
        counts = {"train": training["train_patches_per_dataset"], "val": training["val_patches_per_dataset"]}
        write_patch_table(table, dataset, counts, seed, str(path))
        tables.append(path)
    train, val = load_patch_sets(experiment, training, str(manifest), tables)
    return Trainer(experiment, training, seed, torch.device("cpu"), train, val, checkpoint)


RESUME_SCRIPT = """
import sys, torch
from pathlib import Path
sys.path.insert(0, {tests!r})
from training_fixtures import build_trainer, tiny_training
from dnorm.training.experiment import Experiment
torch.set_num_threads(1)
folder = Path({folder!r})
experiment = Experiment("resume", "ours", ("bright", "flat"), adversarial_weight=1.5, bias_augmentation=True)
training = tiny_training(epochs=4, train_patches_per_dataset=48, precision={precision!r}, channels_last={channels_last!r})
trainer = build_trainer(folder / "manifest.csv", folder, experiment, training, Path({checkpoint!r}))
trainer.fit()
torch.save(trainer.networks.state_dict(), {weights!r})
"""
