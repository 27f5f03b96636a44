# Shared paths and target functions. Outputs live under results/<run_name>/ so that runs with
# different configs never mix (and a report only sees its own run).
import re

import dnorm.config
from dnorm.training.experiment import experiment_from_config

dnorm.config.check_config(config, "config")

RESULTS = f"results/{config['run_name']}"
DATASETS = sorted(config["datasets"])
SYNTHETIC_DATASETS = [d for d in DATASETS if config["datasets"][d]["source"] == "synthetic"]
IMPORTED_DATASETS = [d for d in DATASETS if d not in SYNTHETIC_DATASETS]
EXPERIMENTS = sorted(config["experiments"])
EXPERIMENT_PATTERN = "|".join(re.escape(e) for e in EXPERIMENTS) or "(?!)"


def dataset_pattern(names):
    """Wildcard constraint matching exactly ``names`` (a never-matching one if empty)."""
    return "|".join(names) if names else "(?!)"


def cropped_manifests(wildcards):
    return expand(f"{RESULTS}/cropped/{{dataset}}/manifest.csv", dataset=DATASETS)


def dnorm_experiment(name):
    return experiment_from_config(name, config)


def experiment_patch_tables(wildcards):
    datasets = dnorm_experiment(wildcards.experiment).datasets
    return [f"{RESULTS}/patches/{dataset}.csv" for dataset in datasets]


def all_targets():
    return [
        f"{RESULTS}/tables/domain_gap.csv",
        f"{RESULTS}/figures/fig2_intensity_distributions.png",
        f"{RESULTS}/figures/fig2b_site_distributions.png",
        *expand(f"{RESULTS}/models/{{experiment}}/model.pt", experiment=EXPERIMENTS),
        f"{RESULTS}/figures/training_curves.png",
    ]
