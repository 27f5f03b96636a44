"""Validation Dice of training variants on an existing preprocessed study (run on demand).

The study's ablation table is a workflow layer (``config/ablation.yaml``: one job per cell, the
shared warm-up reused); this script is for quick trials outside the workflow, in one process.

Trains each experiment × variant × seed on the study's training patches and prints (and writes)
the final validation Dice, so design choices are decided on validation data, never on test
subjects. A variant is a name and ``key=value`` overrides of the config's ``training`` section
(values parsed as YAML; dotted keys reach nested sections).

    python benchmarks/ablate_training.py --results results/default \\
        --experiments preprocessor_dual ours_dual --seeds 20220331 1 \\
        --variant default --variant pooled dice_reduction=pooled --out ablation.csv

``--quick`` trains tiny networks (16³ patches, width 2, depth 2, batch 2) for one warm-up and one
joint epoch: seconds on a tiny data part, for tests; not a measurement.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import torch
import yaml

from dnorm.config import load_config
from dnorm.training.ablation import AblationCell, ablation_row, apply_overrides
from dnorm.training.experiment import experiment_from_config
from dnorm.training.run import load_patch_sets
from dnorm.training.trainer import Trainer

#: --quick: tiny networks and one epoch, on top of the config's training section (before variants)
QUICK_TRAINING = {
    "patch_size": 16, "batch_size": 2, "epochs": 1, "generator_warmup_epochs": 1,
    "generator": {"width": 2, "depth": 2, "max_width": 8},
    "segmenter": {"width": 2, "depth": 2, "max_width": 8},
    "discriminator": {"channels": [4, 8], "dropout": 0.25},
}


def parse_variant(items: list[str]) -> tuple[str, dict]:
    name, *assignments = items
    overrides = {}
    for assignment in assignments:
        key, _, value = assignment.partition("=")
        overrides[key] = yaml.safe_load(value)
    return name, overrides


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=["config/config.yaml"])
    parser.add_argument("--results", required=True, help="results/<run_name> of a run whose data part is done")
    parser.add_argument("--experiments", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, required=True)
    parser.add_argument("--variant", nargs="+", action="append", required=True, metavar="NAME [KEY=VALUE ...]")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--out", required=True)
    parser.add_argument("--quick", action="store_true", help="tiny networks, one epoch (tests)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(*args.config)
    if args.quick:
        config["training"] = apply_overrides(config["training"], {
            key: value for key, value in QUICK_TRAINING.items() if not isinstance(value, dict)})
        for section in ("generator", "segmenter", "discriminator"):
            config["training"][section] = config["training"][section] | QUICK_TRAINING[section]
    results = Path(args.results)
    rows = pd.read_csv(args.out).to_dict("records") if Path(args.out).exists() else []
    done = {(r["experiment"], r["variant"], r["seed"]) for r in rows}
    for experiment_name in args.experiments:
        experiment = experiment_from_config(experiment_name, config)
        tables = [str(results / "patches" / f"{d}.csv") for d in experiment.datasets]
        for name, overrides in map(parse_variant, args.variant):
            budgeted = config["training"] | {"epochs": experiment.joint_epochs(config["training"])}
            training = apply_overrides(budgeted, overrides)
            train, val = load_patch_sets(experiment, training, str(results / "preprocessed" / "manifest.csv"), tables)
            for seed in args.seeds:
                if (experiment_name, name, seed) in done:
                    continue
                trainer = Trainer(experiment, training, seed, torch.device("cpu"), train, val,
                                  Path("/tmp") / f"ablation-{experiment_name}-{name}-{seed}.pt")
                history = pd.DataFrame(trainer.fit())
                trainer.discard_checkpoint()
                row = ablation_row(AblationCell(experiment_name, name, seed), overrides, history)
                rows.append(row)
                pd.DataFrame(rows).to_csv(args.out, index=False, float_format="%.4g")
                print(f"{experiment_name} {name} seed {seed}: val Dice mean {row['val_dice_mean']:.3f} "
                      f"CSF {row['val_dice_csf']:.3f} ({row['minutes']:.1f} min, {row['warmup_epochs']} warm-up epochs)",
                      flush=True)


if __name__ == "__main__":
    main()
