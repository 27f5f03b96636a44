"""Does bfloat16 autocast keep accuracy? Train experiments of the default study twice, in float32
and in the configured precision, on the run's preprocessed data (run the workflow up to
`patches/` first), and print validation Dice and time for both (run on demand).

    python benchmarks/bench_precision.py --experiments unet_iseg unet_mrbrains
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

from dnorm.config import load_config
from dnorm.training.device import select_device
from dnorm.training.experiment import experiment_from_config
from dnorm.training.run import load_patch_sets
from dnorm.training.trainer import Trainer


def train(experiment, training, seed, run: Path) -> tuple[dict, float]:
    tables = [run / "patches" / f"{d}.csv" for d in experiment.datasets]
    train_set, val_set = load_patch_sets(experiment, training, str(run / "preprocessed" / "manifest.csv"), tables)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(experiment, training, seed, select_device(1), train_set, val_set, Path(scratch) / "ck.pt")
        began = time.perf_counter()
        history = trainer.fit()
    return history[-1], time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=["config/config.yaml"])
    parser.add_argument("--experiments", nargs="+", default=["unet_iseg", "unet_mrbrains"])
    args = parser.parse_args()
    config = load_config(*args.config)
    run = Path("results") / config["run_name"]
    for name in args.experiments:
        experiment = experiment_from_config(name, config)
        results = {}
        for precision in ("float32", config["training"]["precision"]):
            training = copy.deepcopy(config["training"]) | {"precision": precision}
            results[precision] = train(experiment, training, config["seed"], run)
        (f32, t32), (low, tlow) = results["float32"], results[config["training"]["precision"]]
        print(f"{name}: float32 Dice {f32['val_dice_mean']:.3f} in {t32:.0f} s | "
              f"{config['training']['precision']} Dice {low['val_dice_mean']:.3f} in {tlow:.0f} s | "
              f"speed-up {t32 / tlow:.2f}x, Dice difference {low['val_dice_mean'] - f32['val_dice_mean']:+.3f}")


if __name__ == "__main__":
    main()
