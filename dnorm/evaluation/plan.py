"""Which trained models are evaluated on which test subjects.

Every experiment is trained once per seed of ``training_seeds`` (default: the config's ``seed``)
and evaluated on the test subjects of its ``test_datasets`` (default: the datasets it was trained
on; the single-dataset U-Nets of Table 2 also name the other dataset).
"""

from __future__ import annotations

import pandas as pd

from dnorm.training.experiment import experiment_from_config


def training_seeds(config: dict) -> list[int]:
    """Seeds of the repeated trainings of every experiment."""
    return list(config.get("training_seeds") or [config["seed"]])


def test_datasets(name: str, config: dict) -> list[str]:
    """Datasets whose test subjects evaluate experiment ``name``. Raises ``ValueError`` naming the
    experiment for a dataset the config lacks or one without the experiment's modalities."""
    experiment = experiment_from_config(name, config)
    entry = config["experiments"][name]
    datasets = list(entry.get("test_datasets", experiment.datasets))
    where = f"config experiments.{name}.test_datasets"
    unknown = [d for d in datasets if d not in config["datasets"]]
    if unknown:
        raise ValueError(f"{where}: {unknown} are not datasets of the config")
    lacking = [d for d in datasets
               if len(config["datasets"][d].get("modalities", ["t1"])) < len(experiment.modalities)]
    if lacking:
        raise ValueError(f"{where}: {lacking} lack the second modality the experiment uses")
    return datasets


def test_subjects(manifest: pd.DataFrame, datasets) -> list[tuple[str, str]]:
    """``(dataset, subject)`` of the manifest's test split for ``datasets``, in manifest order.
    Raises ``ValueError`` when a dataset has no test subject (nothing to evaluate it on)."""
    test = manifest[manifest.split == "test"]
    empty = [d for d in datasets if not (test.dataset == d).any()]
    if empty:
        raise ValueError(f"datasets {empty} have no test subject in the manifest (split column)")
    rows = test[test.dataset.isin(list(datasets))]
    return list(zip(rows.dataset, rows.subject))
