"""Ablation plan: which training variants to compare, on which experiments and seeds.

A config's ``ablation`` section (``config/ablation.yaml``) names experiments, training seeds and
variants, each a set of overrides of the ``training`` section (dotted keys reach nested ones,
e.g. ``optimizer.lr``). Every experiment × variant × seed is one training job whose final
validation Dice forms a cell of the ablation table: design choices are decided on validation
patches, never on test subjects. No torch here: the Snakefile reads the plan at parse time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pandas as pd

from dnorm.io import atomic_path
from dnorm.training.experiment import Experiment, experiment_from_config

#: the variant without overrides: the study's settings, the reference of every other cell
DEFAULT_VARIANT = "default"

#: settings only D reads: a variant changing one of them means nothing without a discriminator
DISCRIMINATOR_SETTINGS = frozenset({
    "discriminator_steps", "adversarial_rampup", "generator_loss", "discriminator_sees_augmentation",
    "warmup_discriminator", "discriminator", "optimizer.lr_discriminator", "optimizer.plateau_patience"})
#: settings only G reads (besides D's): nothing to ablate for the methods without a generator
GENERATOR_SETTINGS = DISCRIMINATOR_SETTINGS | frozenset({
    "zero_background", "warmup_segmenter", "generator_warmup_epochs", "warmup_target_rmse", "generator"})
#: settings only the bias-field augmentation reads
BIAS_SETTINGS = frozenset({"discriminator_sees_augmentation", "bias_probability"})
#: settings the warm-up does not read: a variant changing only these starts from the study's
#: shared warm-up (``warmup_discriminator`` is not one: with it, D trains during the warm-up)
JOINT_ONLY_SETTINGS = (DISCRIMINATOR_SETTINGS - {"warmup_discriminator"}) | frozenset({
    "epochs", "optimizer.milestones", "optimizer.gamma", "bias_probability"})


@dataclass(frozen=True)
class AblationCell:
    experiment: str
    variant: str
    seed: int


def apply_overrides(training: dict, overrides: dict, where: str = "overrides") -> dict:
    """A copy of ``training`` with ``overrides`` (dotted keys) applied. Raises ``ValueError``
    naming ``where`` and the key for a key ``training`` does not have."""
    training = copy.deepcopy(training)
    for key, value in overrides.items():
        *path, last = key.split(".")
        section = training
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
        if not isinstance(section, dict) or last not in section:
            raise ValueError(f"{where}.{key}: no such training setting")
        section[last] = copy.deepcopy(value)
    return training


def _one_of(key: str, settings: frozenset) -> bool:
    """Whether the dotted ``key`` is one of ``settings`` or lies inside one of them."""
    return key in settings or key.split(".")[0] in settings


def _reads(experiment: Experiment, key: str) -> bool:
    """Whether ``experiment`` trains with the setting ``key`` at all."""
    if _one_of(key, DISCRIMINATOR_SETTINGS) and not experiment.uses_discriminator:
        return False
    if _one_of(key, BIAS_SETTINGS) and not experiment.bias_augmentation:
        return False
    return experiment.uses_generator or not _one_of(key, GENERATOR_SETTINGS)


def variant_applies(experiment: Experiment, overrides: dict) -> bool:
    """Whether the variant changes anything ``experiment`` trains with (the default, the
    reference, always applies)."""
    return not overrides or any(_reads(experiment, key) for key in overrides)


def shares_warmup(overrides: dict) -> bool:
    """Whether the variant's warm-up is the study's (it changes only joint-training settings)."""
    return all(_one_of(key, JOINT_ONLY_SETTINGS) for key in overrides)


def ablation_variants(config: dict) -> dict[str, dict]:
    """The variants (name → overrides), the default first."""
    variants = {name: overrides or {} for name, overrides in config.get("ablation", {}).get("variants", {}).items()}
    return {DEFAULT_VARIANT: variants.pop(DEFAULT_VARIANT, {}), **variants}


def ablation_seeds(config: dict) -> list[int]:
    section = config.get("ablation", {})
    return list(section.get("seeds") or config.get("training_seeds") or [config["seed"]])


def ablation_cells(config: dict) -> list[AblationCell]:
    """Every experiment × applicable variant × seed of the config's ``ablation`` section (an
    experiment listed under ``only`` runs the default and the variants named there)."""
    section = config.get("ablation")
    if not section:
        return []
    cells = []
    for name in section["experiments"]:
        experiment = experiment_from_config(name, config)
        chosen = section.get("only", {}).get(name)
        for variant, overrides in ablation_variants(config).items():
            if chosen is not None and variant not in (DEFAULT_VARIANT, *chosen):
                continue
            if variant_applies(experiment, overrides):
                cells.extend(AblationCell(name, variant, seed) for seed in ablation_seeds(config))
    return cells


def check_ablation(config: dict, source: str = "config") -> None:
    """Cross-field checks of the ``ablation`` section: its experiments exist, the default has no
    overrides, every override names a training setting. Raises ``ValueError`` naming the key."""
    section = config.get("ablation")
    if not section:
        return
    where = f"{source}: ablation"
    unknown = [name for name in section["experiments"] if name not in config.get("experiments", {})]
    if unknown:
        raise ValueError(f"{where}.experiments {unknown} are not experiments of the config")
    if section.get("variants", {}).get(DEFAULT_VARIANT):
        raise ValueError(f"{where}.variants.{DEFAULT_VARIANT} is the study's settings and takes no overrides")
    for variant, overrides in ablation_variants(config).items():
        apply_overrides(config["training"], overrides, f"{where}.variants.{variant}")
    for name, chosen in section.get("only", {}).items():
        if name not in section["experiments"]:
            raise ValueError(f"{where}.only.{name} is not one of ablation.experiments")
        unknown = [variant for variant in chosen if variant not in ablation_variants(config)]
        if unknown:
            raise ValueError(f"{where}.only.{name}: {unknown} are not variants of ablation.variants")


def ablation_row(cell: AblationCell, overrides: dict, history: pd.DataFrame) -> dict:
    """One cell of the table from a training's per-epoch history (a DataFrame): the last joint
    epoch's validation metrics and gradient diagnostics, the warm-up epochs and the minutes."""
    joint = history[history.phase == "train"]
    if joint.empty:
        raise ValueError(f"{cell.experiment} {cell.variant} seed {cell.seed}: the history has no joint-training epoch")
    last = joint.iloc[-1]
    measured = {key: float(last[key]) for key in history.columns if key.startswith(("val_", "train_grad"))}
    return {"experiment": cell.experiment, "variant": cell.variant, "seed": cell.seed,
            "overrides": ", ".join(f"{key}={value}" for key, value in overrides.items()) or "(study settings)",
            "warmup_epochs": int((history.phase == "warmup").sum()), "joint_epochs": len(joint),
            "minutes": float(history["seconds"].sum()) / 60, **measured}


def write_ablation_row(row: dict, path: str) -> None:
    """A cell's one-row CSV, written atomically (a killed job leaves no row Snakemake would trust)."""
    with atomic_path(path) as tmp:
        pd.DataFrame([row]).to_csv(tmp, index=False, float_format="%.6g")
