"""Shared builders for the pure-pandas evaluation tests: the paper's twelve experiments as a
config, and synthetic per-model metric tables with the columns the metric CSVs have."""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pandas as pd

from dnorm.config import load_config

REPO = Path(__file__).resolve().parents[2]
CLASSES = ("CSF", "GM", "WM")
DUAL, MULTI = ["iseg", "mrbrains"], ["iseg", "mrbrains", "abide"]

# SPEC section 4, written out here so the tests do not follow edits of config/config.yaml.
PAPER_EXPERIMENTS = {
    "unet_iseg": {"method": "unet", "datasets": ["iseg"], "test_datasets": ["iseg", "mrbrains"]},
    "unet_mrbrains": {"method": "unet", "datasets": ["mrbrains"], "test_datasets": ["mrbrains", "iseg"]},
    "standardization_dual": {"method": "standardization", "datasets": DUAL},
    "preprocessor_dual": {"method": "preprocessor", "datasets": DUAL},
    "ours_dual": {"method": "ours", "datasets": DUAL, "lambda": 1.5},
    "standardization_multi": {"method": "standardization", "datasets": MULTI},
    "preprocessor_multi": {"method": "preprocessor", "datasets": MULTI},
    "ours_multi": {"method": "ours", "datasets": MULTI, "lambda": 1.5},
    "ours_dual_t1t2": {"method": "ours", "datasets": DUAL, "lambda": 1.5, "modalities": ["t1", "t2"]},
    "ours_dual_bias": {"method": "ours", "datasets": DUAL, "lambda": 1.5, "bias_augmentation": True},
    "ours_dual_lambda0.1": {"method": "ours", "datasets": DUAL, "lambda": 0.1},
    "ours_dual_lambda5.0": {"method": "ours", "datasets": DUAL, "lambda": 5.0},
}


@functools.lru_cache(maxsize=1)
def _shipped_config() -> dict:
    return load_config(REPO / "config" / "config.yaml")


def paper_config(experiments: dict | None = None, **top_level) -> dict:
    """The shipped config (datasets, seed) with ``experiments`` (default: the paper's twelve)."""
    config = copy.deepcopy(_shipped_config())
    config.pop("training_seeds", None)
    config["experiments"] = copy.deepcopy(PAPER_EXPERIMENTS if experiments is None else experiments)
    config.update(top_level)
    return config


def without(*names: str, extra: dict | None = None) -> dict:
    """The paper's experiments less ``names``, plus ``extra`` entries."""
    experiments = {k: v for k, v in PAPER_EXPERIMENTS.items() if k not in names}
    return {**experiments, **(extra or {})}


def _per_class(value) -> tuple[float, float, float]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value, value)


def segmentation_rows(experiment: str, dataset: str, dice, mhd=1.0, seeds=(0,), subjects=("s1", "s2")) -> list[dict]:
    """One row per seed, subject and class. ``dice``/``mhd``: a number (every class), a
    (CSF, GM, WM) tuple, or ``f(seed, subject)`` returning either."""
    rows = []
    for seed in seeds:
        for subject in subjects:
            d = _per_class(dice(seed, subject) if callable(dice) else dice)
            m = _per_class(mhd(seed, subject) if callable(mhd) else mhd)
            for name, dv, mv in zip(CLASSES, d, m):
                rows.append({"experiment": experiment, "seed": seed, "dataset": dataset, "subject": subject,
                             "class": name, "dice": dv, "mhd": mv, "hd95": 2 * mv, "asd": mv / 2,
                             "pred_empty": False, "ref_empty": False})
    return rows


def experiment_segmentation(experiment: str, datasets, dice, **kwargs) -> list[dict]:
    """Rows of ``segmentation_rows`` for each of ``datasets`` (same scores)."""
    return [row for dataset in datasets for row in segmentation_rows(experiment, dataset, dice, **kwargs)]


def divergence_rows(experiment: str, input_jsd, normalized_jsd, seeds=(0,), datasets="iseg+mrbrains") -> list[dict]:
    """Brain-region JSD per seed (``*_jsd``: one number or one per seed), plus CSF/GM/WM rows
    with other values that a brain-only consumer must ignore."""
    inputs = input_jsd if isinstance(input_jsd, (list, tuple)) else [input_jsd] * len(seeds)
    outputs = normalized_jsd if isinstance(normalized_jsd, (list, tuple)) else [normalized_jsd] * len(seeds)
    rows = []
    for seed, i, o in zip(seeds, inputs, outputs):
        for region in ("brain", *CLASSES):
            factor = 1.0 if region == "brain" else 100.0
            rows.append({"experiment": experiment, "seed": seed, "datasets": datasets, "image": "input",
                         "region": region, "jsd": i * factor})
            rows.append({"experiment": experiment, "seed": seed, "datasets": datasets, "image": "normalized",
                         "region": region, "jsd": o})
    return rows


def bias_rows(experiment: str, dataset: str, alpha: float, degraded, normalized, seed=0,
              subjects=("s1",)) -> list[dict]:
    """One row per subject; ``degraded``/``normalized``: a number or one per subject. Slice ρ is
    volume ρ + 0.1."""
    degraded = degraded if isinstance(degraded, (list, tuple)) else [degraded] * len(subjects)
    normalized = normalized if isinstance(normalized, (list, tuple)) else [normalized] * len(subjects)
    return [{"experiment": experiment, "seed": seed, "dataset": dataset, "subject": s, "alpha": alpha,
             "rho_degraded": d, "rho_normalized": n, "rho_slice_degraded": d + 0.1, "rho_slice_normalized": n + 0.1}
            for s, d, n in zip(subjects, degraded, normalized)]


P_GENERATED = {"generated": 0.8}  # D's P(generated) on a patch it calls generated; 0.1 otherwise


def discriminator_rows(experiment: str, seed: int, split: str, counts: dict, mode: str = "eval") -> list[dict]:
    """``counts``: ``{(dataset, kind, predicted): count}``; each patch's P(generated) is 0.8 when
    predicted "generated", else 0.1."""
    return [{"experiment": experiment, "seed": seed, "split": split, "mode": mode, "dataset": dataset, "kind": kind,
             "predicted": predicted, "count": count, "p_generated_sum": count * P_GENERATED.get(predicted, 0.1)}
            for (dataset, kind, predicted), count in counts.items()]


def confusion(real_correct: int, generated_correct: int, per_row: int = 10, datasets=("iseg", "mrbrains")) -> dict:
    """Counts where every real row has ``real_correct`` of ``per_row`` right (the rest predicted
    as the other dataset) and every generated row ``generated_correct`` (the rest as its dataset)."""
    counts = {}
    for i, dataset in enumerate(datasets):
        other = datasets[(i + 1) % len(datasets)]
        counts[(dataset, "real", dataset)] = real_correct
        counts[(dataset, "real", other)] = per_row - real_correct
        counts[(dataset, "generated", "generated")] = generated_correct
        counts[(dataset, "generated", dataset)] = per_row - generated_correct
    return counts


def frame(*row_lists, columns=None) -> pd.DataFrame:
    rows = [row for rows in row_lists for row in rows]
    return pd.DataFrame(rows, columns=columns) if columns is not None or rows else pd.DataFrame()


SEGMENTATION_COLUMNS = ["experiment", "seed", "dataset", "subject", "class", "dice", "mhd", "hd95", "asd",
                        "pred_empty", "ref_empty"]
DIVERGENCE_COLUMNS = ["experiment", "seed", "datasets", "image", "region", "jsd"]
BIAS_COLUMNS = ["experiment", "seed", "dataset", "subject", "alpha", "rho_degraded", "rho_normalized",
                "rho_slice_degraded", "rho_slice_normalized"]
DISCRIMINATOR_COLUMNS = ["experiment", "seed", "split", "mode", "dataset", "kind", "predicted", "count",
                         "p_generated_sum"]

# Mean Dice per experiment of a study where every claim holds (the paper's pattern).
HELD_DICE = {
    "unet_iseg": {"iseg": 0.90, "mrbrains": 0.40},
    "unet_mrbrains": {"mrbrains": 0.85, "iseg": 0.30},
    "standardization_dual": 0.80, "preprocessor_dual": 0.87, "ours_dual": 0.865,
    "standardization_multi": 0.82, "preprocessor_multi": 0.89, "ours_multi": 0.885,
    "ours_dual_t1t2": 0.88, "ours_dual_bias": 0.86,
    "ours_dual_lambda0.1": 0.875, "ours_dual_lambda5.0": 0.85,
}
# D accuracy on generated patches (correct of 10) per lambda experiment: falls with lambda (with
# BatchNorm running statistics; with batch statistics, "train" mode, it rises: claims must not use it).
HELD_GENERATED_CORRECT = {"ours_dual_lambda0.1": 9, "ours_dual": 4, "ours_dual_lambda5.0": 2}


def study(dice: dict | None = None, generated_correct: dict | None = None, seeds=(0,), config: dict | None = None):
    """(segmentation, divergence, bias, discriminator) frames for every experiment of ``config``
    (default: the paper's), with the values of a study where every claim holds unless overridden."""
    config = config or paper_config()
    dice = {**HELD_DICE, **(dice or {})}
    generated_correct = {**HELD_GENERATED_CORRECT, **(generated_correct or {})}
    segmentation, divergence, bias, discriminator = [], [], [], []
    for name, entry in config["experiments"].items():
        tested = entry.get("test_datasets", entry["datasets"])
        for dataset in tested:
            value = dice[name][dataset] if isinstance(dice[name], dict) else dice[name]
            segmentation += segmentation_rows(name, dataset, value, mhd=2.0, seeds=seeds)
        if entry["method"] in ("preprocessor", "ours"):
            divergence += divergence_rows(name, 2.0, 0.2, seeds=seeds, datasets="+".join(entry["datasets"]))
        if entry.get("bias_augmentation"):
            for seed in seeds:
                for dataset in entry["datasets"]:
                    bias += bias_rows(name, dataset, 0.0, 0.01, 0.02, seed=seed)
                    for alpha in (0.3, 0.5, 0.7, 0.9):
                        bias += bias_rows(name, dataset, alpha, alpha / 2, alpha / 4, seed=seed)
        if entry["method"] == "ours" and entry.get("lambda", 1.5) > 0:
            for seed in seeds:
                correct = generated_correct.get(name, 5)
                for split in ("train", "test"):
                    discriminator += discriminator_rows(name, seed, split, confusion(8, correct))
                    discriminator += discriminator_rows(name, seed, split, confusion(8, 10 - correct), mode="train")
    return (frame(segmentation, columns=SEGMENTATION_COLUMNS), frame(divergence, columns=DIVERGENCE_COLUMNS),
            frame(bias, columns=BIAS_COLUMNS), frame(discriminator, columns=DISCRIMINATOR_COLUMNS))


def evaluated_on(config: dict):
    """``test_datasets(name)`` as the workflow passes it to Table 2 and claim C1."""
    from dnorm.evaluation.plan import test_datasets

    return lambda name: test_datasets(name, config)
