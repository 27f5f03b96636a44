"""The budget curve: one method trained at several training budgets, validation and test Dice.

Experiments that differ only in ``budget`` (a multiple of their joint-training epochs,
:meth:`Experiment.joint_epochs`) form one curve, so a user sees where the generator methods
stand against Standardization as training grows (config/budget.yaml adds 2× and 4× of the
dual setting's three methods to the default run). Validation Dice is the last epoch's (patches
of the validation subjects); test Dice is the patch-averaged inference on the test subjects,
as in Table 3. Experiments with a budget other than 1 stay out of the paper's tables.
"""

from __future__ import annotations

import logging

import pandas as pd

from dnorm.evaluation.paper import METHOD_LABELS, setting_of
from dnorm.evaluation.summary import per_seed, read_tables
from dnorm.io import atomic_path
from dnorm.training.experiment import Experiment, experiment_from_config

log = logging.getLogger(__name__)

COLUMNS = ("setting", "curve", "method", "experiment", "budget", "joint epochs", "seed",
           "val mean DSC", "val CSF DSC", "test mean DSC", "test CSF DSC")


def _curve_key(e: Experiment) -> tuple:
    """Everything but the budget: experiments with equal keys lie on one curve."""
    return e.method, e.datasets, e.modalities, e.adversarial_weight, e.bias_augmentation, e.epochs


def budget_curves(config: dict) -> dict[str, list[Experiment]]:
    """Curves with at least two budgets, keyed by their budget-1 experiment's name (else the
    lowest budget's), each sorted by budget. Two experiments of one curve with the same budget
    are an error naming both."""
    groups: dict[tuple, list[Experiment]] = {}
    for name in sorted(config.get("experiments", {})):
        experiment = experiment_from_config(name, config)
        groups.setdefault(_curve_key(experiment), []).append(experiment)
    curves = {}
    for members in groups.values():
        members.sort(key=lambda e: e.budget)
        budgets = [e.budget for e in members]
        if len(set(budgets)) < 2:
            continue
        for first, second in zip(members, members[1:]):
            if first.budget == second.budget:
                raise ValueError(f"config experiments {first.name} and {second.name} differ in nothing but their "
                                 "names: one budget curve needs one experiment per budget")
        anchor = next((e for e in members if e.budget == 1), members[0])
        curves[anchor.name] = members
    return curves


def budget_experiments(config: dict) -> list[str]:
    """Names of the experiments on any budget curve."""
    return sorted(e.name for members in budget_curves(config).values() for e in members)


def curve_label(anchor: Experiment) -> str:
    """``Ours (λ 1.5)``, ``Pre-processor``, with modalities and bias augmentation when not the defaults."""
    label = METHOD_LABELS[anchor.method]
    if anchor.method == "ours":
        label += f" (λ {anchor.adversarial_weight:g})"
    if anchor.modalities != ("t1",):
        label += " " + " + ".join(m.upper() for m in anchor.modalities)
    if anchor.bias_augmentation:
        label += " + bias aug."
    return label


def final_validation_dice(history: pd.DataFrame) -> tuple[float, float]:
    """(mean, CSF) validation Dice of the last joint-training epoch of a history table."""
    joint = history[history.phase != "warmup"] if "phase" in history else history
    if joint.empty:
        raise ValueError("history has no joint-training epoch")
    last = joint.iloc[-1]
    return float(last["val_dice_mean"]), float(last["val_dice_csf"])


def budget_curve_table(histories: dict[tuple[str, int], pd.DataFrame], segmentation: pd.DataFrame,
                       config: dict) -> pd.DataFrame:
    """One row per experiment of a curve and training seed: its budget, joint epochs, final
    validation Dice and test Dice (mean over CSF/GM/WM and CSF). ``histories`` is keyed by
    ``(experiment, seed)``; a model without a history or test scores is an error naming it."""
    rows = []
    for anchor_name, members in budget_curves(config).items():
        anchor = next(e for e in members if e.name == anchor_name)
        for experiment in members:
            test = per_seed(segmentation, experiment.name)["dice"]
            seeds = sorted(seed for name, seed in histories if name == experiment.name)
            if not seeds:
                raise ValueError(f"budget curve: no training history for experiment {experiment.name}")
            for seed in seeds:
                if seed not in test.index:
                    raise ValueError(f"budget curve: no test scores for {experiment.name}, seed {seed}")
                val_mean, val_csf = final_validation_dice(histories[(experiment.name, seed)])
                rows.append({
                    "setting": setting_of(experiment.datasets), "curve": curve_label(anchor),
                    "method": METHOD_LABELS[experiment.method], "experiment": experiment.name,
                    "budget": experiment.budget, "joint epochs": experiment.joint_epochs(config["training"]),
                    "seed": int(seed), "val mean DSC": round(val_mean, 4), "val CSF DSC": round(val_csf, 4),
                    "test mean DSC": round(float(test.loc[seed, "mean"]), 4),
                    "test CSF DSC": round(float(test.loc[seed, "CSF"]), 4),
                })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def write_budget_curve_table(models, history_paths, segmentation_paths, config: dict, path: str) -> None:
    """The workflow's entry: ``models`` lists ``(experiment, seed)`` in the order of
    ``history_paths``; the table is written atomically."""
    if len(models) != len(history_paths):
        raise ValueError(f"budget curve: {len(models)} models but {len(history_paths)} history files")
    histories = {(name, int(seed)): pd.read_csv(p) for (name, seed), p in zip(models, history_paths)}
    table = budget_curve_table(histories, read_tables(segmentation_paths), config)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    log.info("budget curve:\n%s", table.to_string())
