"""Train one experiment end to end: data, trainer, and the saved model with its model card."""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import pandas as pd
import torch

import dnorm
from dnorm.io import atomic_path
from dnorm.manifest import read_manifest
from dnorm.training.ablation import ablation_row, apply_overrides, write_ablation_row
from dnorm.training.data import PatchSet
from dnorm.training.device import select_device
from dnorm.training.experiment import Experiment
from dnorm.training.provenance import input_digests, provenance
from dnorm.training.trainer import Trainer

log = logging.getLogger(__name__)


def load_patch_sets(experiment: Experiment, training: dict, manifest_path: str, patch_tables) -> tuple[PatchSet, PatchSet]:
    manifest = read_manifest(manifest_path)
    patches = pd.concat([pd.read_csv(p, dtype={"subject": str}) for p in patch_tables], ignore_index=True)
    options = dict(datasets=experiment.datasets, modalities=experiment.modalities,
                   patch_size=training["patch_size"], standardize=experiment.standardize)
    bias = training["bias_probability"] if experiment.bias_augmentation else 0.0
    train = PatchSet(manifest, patches[patches.split == "train"], bias_probability=bias, **options)
    val = PatchSet(manifest, patches[patches.split == "val"], **options)
    return train, val


def _trainer(experiment: Experiment, training: dict, seed: int, manifest_path: str, patch_tables,
             checkpoint_path: str, history_path: str | None, gpus: int, threads: int | None,
             preprocess: dict | None, warmup_path: str | None = None) -> tuple[Trainer, dict]:
    """A Trainer on the experiment's patches, and its provenance (inputs, settings, code)."""
    if threads:
        torch.set_num_threads(threads)
    device = select_device(gpus)
    train, val = load_patch_sets(experiment, training, manifest_path, patch_tables)
    log.info("%s on %s: %d training and %d validation patches", experiment.name, device, len(train), len(val))
    extra = [warmup_path] if warmup_path else []
    inputs = input_digests(manifest_path, [*patch_tables, *extra], [*train.files, *val.files])
    origin = provenance(experiment.to_dict(), training, preprocess, seed, inputs)
    trainer = Trainer(experiment, training, seed, device, train, val, checkpoint_path, history_path,
                      fingerprint=origin["fingerprint"], warmup_path=warmup_path)
    return trainer, origin


def warm_up_generator(experiment: Experiment, training: dict, seed: int, manifest_path: str, patch_tables,
                      warmup_path: str, checkpoint_path: str, gpus: int = 1, threads: int | None = None,
                      preprocess: dict | None = None) -> None:
    """Run ``experiment``'s warm-up alone (:func:`dnorm.training.warmup.warmup_experiment`) and
    write its state to ``warmup_path`` atomically, for :func:`train_experiment` to start from."""
    trainer, _ = _trainer(experiment, training, seed, manifest_path, patch_tables, checkpoint_path, None,
                          gpus, threads, preprocess)
    trainer.fit(warmup_only=True)
    with atomic_path(warmup_path) as tmp:
        torch.save(trainer.warmup_state(), tmp)
    trainer.discard_checkpoint()


def train_experiment(experiment: Experiment, training: dict, seed: int, manifest_path: str, patch_tables,
                     model_path: str, history_path: str, card_path: str, checkpoint_path: str,
                     gpus: int = 1, threads: int | None = None, preprocess: dict | None = None,
                     warmup_path: str | None = None) -> dict:
    """Train ``experiment`` (after the shared warm-up at ``warmup_path``, if given); write the
    model (weights + how to rebuild them), the per-epoch history CSV and the model card JSON,
    each atomically. Returns the model card."""
    training = training | {"epochs": experiment.joint_epochs(training)}
    trainer, origin = _trainer(experiment, training, seed, manifest_path, patch_tables, checkpoint_path,
                               history_path, gpus, threads, preprocess, warmup_path)
    history = pd.DataFrame(trainer.fit())
    trainer.write_history()  # also when resuming a run whose last epoch was already done
    recorded = {key: origin[key] for key in ("fingerprint", "code", "dnorm", "inputs")}
    card = model_card(experiment, training, seed, history, trainer) | {
        "preprocess": preprocess, "provenance": recorded,
        "scope": model_scope(experiment, training, preprocess, manifest_path, len(trainer.train_set))}
    with atomic_path(model_path) as tmp:
        torch.save({"card": card, "networks": trainer.networks.cpu().state_dict()}, tmp)
    with atomic_path(card_path) as tmp:
        tmp.write_text(json.dumps(card, indent=2, default=str))
    trainer.discard_checkpoint()
    return card


def model_scope(experiment: Experiment, training: dict, preprocess: dict | None, manifest_path: str,
                training_patches: int) -> dict:
    """What the model was trained on and at what scale, so that a user reads its limits from the
    card: the default study's models are small, 2 mm and trained on synthetic images."""
    manifest = read_manifest(manifest_path)
    sites = manifest[manifest.dataset.isin(experiment.datasets)].groupby("dataset").site.unique()
    spacing = (preprocess or {}).get("spacing")
    return {
        "voxel_size_mm": spacing,
        "network_width": training["segmenter"]["width"],
        "training_patches": training_patches,
        "sites": {dataset: sorted(map(str, names)) for dataset, names in sites.items()},
        "note": (f"Trained at {spacing} mm with width-{training['segmenter']['width']} networks on "
                 f"{training_patches} patches of {', '.join(experiment.datasets)}. The default study's datasets "
                 "are synthetic (drawn from the MNI152 template): its models are demonstrations, not tools for "
                 "real scans; README, 'Whole-head scans', gives their agreement with ANTs Atropos on a real T1."),
    }


def model_card(experiment: Experiment, training: dict, seed: int, history: pd.DataFrame, trainer: Trainer) -> dict:
    """What a user (and ``dnorm normalize``) needs to know about a trained model."""
    last = history.iloc[-1].to_dict() if len(history) else {}
    return {
        "experiment": experiment.to_dict(),
        "training": training,
        "seed": seed,
        "networks": sorted(trainer.networks.keys()),
        "validation": {k: v for k, v in last.items() if k.startswith("val_")},
        "epochs": int(len(history)),
        "device": str(trainer.device),
        "autocast": str(trainer.dtype),
        "channels_last": trainer.channels_last,
        "versions": {"dnorm": dnorm.__version__, "torch": str(torch.__version__), "python": platform.python_version()},
    }


def train_ablation_cell(cell, experiment: Experiment, training: dict, overrides: dict, manifest_path: str,
                        patch_tables, row_path: str, checkpoint_path: str, gpus: int = 1, threads: int | None = None,
                        preprocess: dict | None = None, warmup_path: str | None = None) -> dict:
    """Train one ablation cell (:mod:`dnorm.training.ablation`): ``experiment`` with the variant's
    ``overrides`` of ``training`` and the cell's seed, from the shared warm-up where the variant
    keeps it; write its one-row CSV atomically (no model: the cell is its validation Dice)."""
    training = apply_overrides(training | {"epochs": experiment.joint_epochs(training)}, overrides)
    trainer, _ = _trainer(experiment, training, cell.seed, manifest_path, patch_tables, checkpoint_path, None,
                          gpus, threads, preprocess, warmup_path)
    row = ablation_row(cell, overrides, pd.DataFrame(trainer.fit()))
    write_ablation_row(row, row_path)
    trainer.discard_checkpoint()
    return row
