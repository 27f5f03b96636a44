"""Training throughput of the default configuration on this machine (run on demand).

Prints training patches per second for each method (S alone, G + S, G + S + D) in float32 and
in the configured precision, and each as a fraction of a bare Conv3d forward+backward on the
same batch measured in the same run (the floor any 3D network here is bound by).

    python benchmarks/bench_training.py [--config config/config.yaml] [--batches 12]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch

from dnorm.config import load_config
from dnorm.training.data import Batch, Draw
from dnorm.training.device import select_device
from dnorm.training.experiment import Experiment
from dnorm.training.stats import EpochStats
from dnorm.training.trainer import Trainer


class SyntheticPatches:
    """Random patches of the right shapes: the benchmark measures compute, not disk."""

    def __init__(self, n_domains: int, channels: int, batch_size: int, patch: int):
        rng = np.random.default_rng(0)
        self.batch = Batch(image=torch.from_numpy(rng.random((batch_size, channels, patch, patch, patch), np.float32)),
                           labels=torch.from_numpy(rng.integers(0, 4, (batch_size, patch, patch, patch))),
                           domain=torch.from_numpy(rng.integers(0, n_domains, batch_size)))

    def __len__(self):
        return len(self.batch.domain)

    def draw(self, discriminator_steps: int) -> Draw:
        """One iteration's batches (Algorithm 1: a batch per D step and one for S/G; here the
        same random patches, since only compute is measured)."""
        return Draw(task=self.batch, discriminator=(self.batch,) * discriminator_steps)


def time_steps(step, batches: int) -> float:
    """Median seconds per call of ``step`` after two warm-up calls."""
    for _ in range(2):
        step()
    times = []
    for _ in range(batches):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def conv_reference(batch: Batch, width: int, channels_last: bool, dtype) -> float:
    """A single width->width 3x3x3 convolution at full patch resolution: the U-Nets' most
    expensive layer type, so the ratio tells how many such layers a training step costs."""
    conv = torch.nn.Conv3d(width, width, 3, padding=1)
    image = batch.image.repeat(1, width // batch.image.shape[1], 1, 1, 1)
    image = image.contiguous(memory_format=torch.channels_last_3d) if channels_last else image
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last_3d)

    def step():
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            conv(image).float().square().mean().backward()

    return time_steps(step, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", nargs="+", default=["config/config.yaml"], help="config file(s), later override earlier")
    parser.add_argument("--batches", type=int, default=12)
    args = parser.parse_args()
    config = load_config(*args.config)
    device = select_device(1)
    methods = (("unet", 0.0), ("preprocessor", 0.0), ("ours", 1.5))
    print(f"device {device}, threads {torch.get_num_threads()}, batch {config['training']['batch_size']}")
    for precision in ("float32", "auto"):
        training = copy.deepcopy(config["training"]) | {"precision": precision}
        patches = SyntheticPatches(2, 1, training["batch_size"], training["patch_size"])
        trainer_for = lambda m, w: Trainer(Experiment("bench", m, ("a", "b"), adversarial_weight=w), training, 0,  # noqa: E731
                                           device, patches, patches, "/nonexistent/checkpoint.pt")
        reference = None
        for method, weight in methods:
            trainer = trainer_for(method, weight)
            if reference is None:
                reference = conv_reference(patches.batch, training["segmenter"]["width"], trainer.channels_last, trainer.dtype)
                print(f"[{precision} -> autocast {trainer.dtype}, channels_last {trainer.channels_last}] "
                      f"bare Conv3d({training['segmenter']['width']}->{training['segmenter']['width']}) fwd+bwd: "
                      f"{len(patches) / reference:.1f} patches/s")
            draw = patches.draw(training["discriminator_steps"])
            seconds = time_steps(lambda: trainer.train_step(draw, EpochStats()), args.batches)
            rate = len(patches) / seconds
            print(f"  {method:13s} {rate:6.1f} patches/s  = {reference / seconds:.3f} x bare conv throughput")


if __name__ == "__main__":
    main()
