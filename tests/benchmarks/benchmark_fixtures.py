"""A tiny finished run built by hand for the benchmark scripts: a data part (manifest, patch
tables) and trained-looking models (random tiny weights), datasets named as in the default config
so its experiments apply. Seconds to build; nothing is synthesized or trained."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import torch
import yaml

from dnorm.config import load_config
from dnorm.manifest import read_manifest, write_manifest
from dnorm.training.experiment import experiment_from_config
from dnorm.training.networks import build_networks
from dnorm.training.patches import write_patch_table

REPO = Path(__file__).resolve().parents[2]
SHAPE = (36, 36, 36)
#: the training section of the tiny run (on top of config/config.yaml + config/tiny.yaml)
TINY_TRAINING = {
    "patch_size": 16, "train_patches_per_dataset": 8, "val_patches_per_dataset": 4, "batch_size": 4,
    "epochs": 1, "generator_warmup_epochs": 1,
    "generator": {"width": 2, "depth": 2, "max_width": 8},
    "segmenter": {"width": 2, "depth": 2, "max_width": 8},
    "discriminator": {"channels": [4, 8], "dropout": 0.25},
}
MODELS = ("ours_dual", "unet_iseg")


def _labels(rng: np.random.Generator) -> np.ndarray:
    """Nested spheres: WM core, GM shell, CSF rim, background outside."""
    grid = np.stack(np.meshgrid(*[np.arange(s) for s in SHAPE], indexing="ij"))
    centre = np.array(SHAPE) / 2 + rng.uniform(-2, 2, 3)
    radius = np.linalg.norm(grid - centre[:, None, None, None], axis=0)
    return np.select([radius < 7, radius < 12, radius < 15], [3, 2, 1], 0).astype(np.uint8)


def write_tiny_run(folder: Path, seed: int = 0) -> dict:
    """Write ``folder/results/tiny`` (preprocessed/, patches/, models/) and ``folder/tiny.yaml``
    (the config override of this run). Returns ``{"run": Path, "config": [config files],
    "prefix": a subject's file prefix (``<prefix>_t1.nii``, ``<prefix>_label.nii``)}``."""
    rng = np.random.default_rng(seed)
    run = folder / "results" / "tiny"
    preprocessed = run / "preprocessed"
    override = folder / "tiny.yaml"
    override.write_text(yaml.safe_dump({"run_name": "tiny", "training": TINY_TRAINING}))
    config_files = [str(REPO / "config" / "config.yaml"), str(REPO / "config" / "tiny.yaml"), str(override)]
    config = load_config(*config_files)
    rows = []
    for dataset, (csf, gm, wm) in {"iseg": (0.3, 0.6, 0.9), "mrbrains": (0.5, 0.7, 0.75)}.items():
        (preprocessed / dataset).mkdir(parents=True, exist_ok=True)
        for index, split in enumerate(["train", "train", "val", "test"]):
            labels = _labels(rng)
            image = np.choose(labels, [0.0, csf, gm, wm]) + rng.normal(0, 0.03, SHAPE) * (labels > 0)
            image = np.clip(image, 0.001, 1) * (labels > 0)
            subject = f"{dataset}_{index:03d}"
            paths = {}
            for column, data in (("t1", image), ("t2", (1.0 - image) * (labels > 0)), ("label", labels)):
                path = preprocessed / dataset / f"{subject}_{column}.nii"
                dtype = np.uint8 if column == "label" else np.float32
                nib.save(nib.Nifti1Image(data.astype(dtype), np.diag([2.0, 2.0, 2.0, 1.0])), path)
                paths[column] = str(path)
            rows.append(dict(dataset=dataset, subject=subject, site=dataset, split=split,
                             spacing="2.000x2.000x2.000", **paths))
    write_manifest(pd.DataFrame(rows), preprocessed / "manifest.csv")
    manifest = read_manifest(preprocessed / "manifest.csv")
    (run / "patches").mkdir(parents=True)
    training = config["training"]
    for dataset in ("iseg", "mrbrains"):
        counts = {"train": training["train_patches_per_dataset"], "val": training["val_patches_per_dataset"]}
        write_patch_table(manifest, dataset, counts, seed, str(run / "patches" / f"{dataset}.csv"))
    for name in MODELS:
        experiment = experiment_from_config(name, config)
        torch.manual_seed(seed)
        networks = build_networks(experiment, training).eval()
        card = {"experiment": experiment.to_dict(), "training": training, "seed": seed}
        path = run / "models" / name / f"seed-{seed}" / "model.pt"
        path.parent.mkdir(parents=True)
        torch.save({"card": card, "networks": networks.state_dict()}, path)
    return {"run": run, "config": config_files, "prefix": str(preprocessed / "iseg" / "iseg_003")}
