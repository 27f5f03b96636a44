"""Training throughput of the default configuration on this machine (run on demand).

For each method (``unet``: S alone; ``preprocessor``: G + S; ``ours``: G + S + D with Algorithm 1,
``discriminator_steps`` D updates each on its own batch, then one S/G update on another), in
float32 and in the configured precision, prints:

- **patches/s**: S/G training patches per second (``batch_size`` / median seconds per iteration;
  D's batches are not counted), compute only (random patches already in memory);
- **GFLOP/iteration**: the floating-point operations of one full iteration (every forward and
  backward), counted by ``torch.utils.flop_counter.FlopCounterMode``, which counts convolutions
  and matrix products (element-wise layers, batch norm and the optimizers are not counted);
- **GFLOP/s** and **% of best conv**: that count over the median iteration time, against the best
  GFLOP/s of a few bare 3×3×3 ``Conv3d`` forward + backward configurations (input and weight
  gradients; widths and sizes the U-Nets use) timed in the same run at the same precision and
  memory layout: how close a whole training step gets to what this machine's convolutions reach;
- one iteration's time split into G's forward over D's batches, D's steps, the S/G step (with its
  own GFLOP/s and % of the best conv) and data loading: building the iteration's batches from the patches of a finished data part on disk
  (``--results``, default ``results/<run_name>``; real ``PatchSet`` batches of the ``ours``
  experiment's datasets), or "not measured" when there is none (then the compute is all there is).

    python benchmarks/bench_training.py [--config config/config.yaml] [--batches 12] \\
        [--results results/default] [--quick]

``--quick`` runs a tiny configuration (16³ patches, width-2 U-Nets, batch 2, one timed batch, no
data on disk unless ``--results`` is given): seconds, for tests, not a measurement.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from dnorm.config import load_config
from dnorm.training.data import Batch, Draw
from dnorm.training.device import select_device
from dnorm.training.experiment import Experiment
from dnorm.training.networks import normalize
from dnorm.training.stats import EpochStats
from dnorm.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
METHODS = (("unet", 0.0), ("preprocessor", 0.0), ("ours", 1.5))
#: bare-convolution references: (channels in = out, cube edge) at the default widths (8 at 32³
#: up to 64 at the bottom); the batch is the training batch size
CONVOLUTIONS = ((8, 32), (16, 32), (32, 16), (64, 16), (64, 8))
QUICK_CONVOLUTIONS = ((2, 16), (8, 8))
#: --quick: a tiny training section on top of the config's
QUICK_TRAINING = {
    "patch_size": 16, "batch_size": 2,
    "generator": {"width": 2, "depth": 2, "max_width": 8},
    "segmenter": {"width": 2, "depth": 2, "max_width": 8},
    "discriminator": {"channels": [4, 8], "dropout": 0.25},
}


class SyntheticPatches:
    """Random patches of the right shapes: the compute measurements need no disk."""

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


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, batches: int, device: torch.device = torch.device("cpu"), warmup: int = 2) -> float:
    """Median seconds per call of ``step`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        step()
    _synchronize(device)
    times = []
    for _ in range(batches):
        began = time.perf_counter()
        step()
        _synchronize(device)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def count_flops(step) -> int:
    """Floating-point operations of one call of ``step`` (convolutions and matrix products,
    forward and backward), by ``FlopCounterMode``."""
    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


def conv_step(channels: int, edge: int, batch: int, device: torch.device, channels_last: bool, dtype):
    """A bare ``Conv3d(channels → channels, 3, padding=1)`` forward + backward (input and weight
    gradients, as for a layer inside a network) on ``batch × channels × edge³``, as a closure."""
    torch.manual_seed(0)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    conv = torch.nn.Conv3d(channels, channels, 3, padding=1).to(device, memory_format=memory_format)
    x = torch.rand(batch, channels, edge, edge, edge, device=device)
    x = x.contiguous(memory_format=memory_format).requires_grad_()

    def step():
        conv.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out = conv(x)
        out.float().sum().backward()

    return step


def best_convolution(configs, batch: int, device, channels_last: bool, dtype, batches: int) -> tuple[float, list]:
    """``(best GFLOP/s, [(label, GFLOP/s), …])`` over the bare convolutions ``configs``."""
    rates = []
    for channels, edge in configs:
        step = conv_step(channels, edge, batch, device, channels_last, dtype)
        flops = count_flops(step)
        seconds = time_steps(step, max(batches, 3), device)
        rates.append((f"{channels}→{channels} @{edge}³", flops / seconds / 1e9))
    return max(rate for _, rate in rates), rates


def data_source(results: Path | None, config: dict, training: dict):
    """``(PatchSet of the ours experiment's training patches, description)``, or ``(None, why)``."""
    if results is None:
        return None, "not measured (--quick without --results)"
    manifest = results / "preprocessed" / "manifest.csv"
    from dnorm.training.experiment import experiment_from_config

    names = [n for n, e in config["experiments"].items() if e.get("method") == "ours"]
    name = "ours_dual" if "ours_dual" in names else (names[0] if names else None)
    if name is None:
        return None, "not measured (the config has no `ours` experiment)"
    experiment = experiment_from_config(name, config)
    tables = [results / "patches" / f"{d}.csv" for d in experiment.datasets]
    missing = [str(p) for p in [manifest, *tables] if not p.is_file()]
    if missing:
        return None, f"not measured (no finished data part: {', '.join(missing)} missing)"
    from dnorm.training.run import load_patch_sets

    train, _ = load_patch_sets(experiment, training, str(manifest), [str(t) for t in tables])
    return train, f"{len(train)} training patches of {name} ({', '.join(experiment.datasets)}) in {results}"


def time_data(patch_set, batch_size: int, discriminator_steps: int, batches: int) -> float:
    """Median seconds to build one iteration's batches (``1 + discriminator_steps``) from disk,
    as the training loop does (:meth:`dnorm.training.data.PatchSet.draws`)."""
    rng = np.random.default_rng(0)
    state = {"draws": patch_set.draws(batch_size, discriminator_steps, rng)}

    def step():
        try:
            next(state["draws"])
        except StopIteration:
            state["draws"] = patch_set.draws(batch_size, discriminator_steps, rng)
            next(state["draws"])

    return time_steps(step, max(batches, 3), warmup=1)


def split_iteration(trainer: Trainer, draw: Draw, batches: int) -> dict[str, float]:
    """Median seconds of the parts of one iteration: G's forward over D's batches (no gradient,
    one pass), D's steps (``update_discriminator`` minus that forward), the S/G step."""
    device, parts = trainer.device, {}
    trainer.iteration = 1  # off the every-16th gradient-norm probe
    if trainer.has_discriminator:
        stats = EpochStats()
        images = torch.cat([b.image for b in draw.discriminator])

        def g_forward():
            with torch.no_grad(), trainer._autocast():
                normalize(trainer.networks, trainer._image(images))

        parts["G forward (D)"] = time_steps(g_forward, batches, device)
        whole = time_steps(lambda: trainer.update_discriminator(draw.discriminator, stats), batches, device)
        parts["D steps"] = max(whole - parts["G forward (D)"], 0.0)
    parts["S/G step"] = time_steps(lambda: trainer.update_segmenter_and_generator(draw.task, EpochStats()),
                                   batches, device)
    return parts


def _milliseconds(value: float | None) -> str:
    return "–" if value is None else f"{1e3 * value:.1f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See the module docstring for what each column means.")
    parser.add_argument("--config", nargs="+", default=[str(ROOT / "config" / "config.yaml")],
                        help="config file(s), later override earlier")
    parser.add_argument("--batches", type=int, default=12, help="timed iterations per measurement (median)")
    parser.add_argument("--results", help="a run's results folder with a finished data part "
                                          "(default: results/<run_name>; with --quick: none)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "auto"])
    parser.add_argument("--quick", action="store_true", help="tiny configuration, one timed batch (tests)")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f"--batches must be >= 1, got {args.batches}")
    config = load_config(*args.config)
    base = copy.deepcopy(config["training"])
    convolutions = CONVOLUTIONS
    if args.quick:
        base.update(copy.deepcopy(QUICK_TRAINING))
        convolutions = QUICK_CONVOLUTIONS
    results = Path(args.results) if args.results else (None if args.quick else ROOT / "results" / config["run_name"])
    device = select_device(1)
    batch_size, steps = base["batch_size"], base["discriminator_steps"]
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, batch {batch_size}, "
          f"patch {base['patch_size']}³, {steps} D steps per iteration, median of {args.batches}"
          f"{' (--quick: tiny networks, not a measurement)' if args.quick else ''}")

    patch_set, data_description = data_source(results, config, base)
    data_seconds = {}
    if patch_set is not None:
        data_seconds = {n: time_data(patch_set, batch_size, n, args.batches) for n in sorted({0, steps})}
    print(f"data loading: {data_description}")

    seen_dtypes = set()
    for precision in args.precisions:
        training = base | {"precision": precision}
        patches = SyntheticPatches(2, 1, batch_size, training["patch_size"])
        trainers = {method: Trainer(Experiment("bench", method, ("a", "b"), adversarial_weight=weight), training, 0,
                                    device, patches, patches, "/nonexistent/checkpoint.pt")
                    for method, weight in METHODS}
        first = trainers["unet"]
        if (first.dtype, first.channels_last) in seen_dtypes:
            print(f"\n[{precision}] same autocast dtype and layout as above: skipped")
            continue
        seen_dtypes.add((first.dtype, first.channels_last))
        best, rates = best_convolution(convolutions, batch_size, device, first.channels_last, first.dtype, args.batches)
        dtype_name = str(first.dtype or torch.float32).replace("torch.", "")
        print(f"\n[precision {precision} -> {dtype_name}, channels_last {first.channels_last}] bare Conv3d 3×3×3 "
              f"fwd+bwd, batch {batch_size}: " + ", ".join(f"{label} {rate:.1f}" for label, rate in rates)
              + f" GFLOP/s; best {best:.1f}")
        print(f"{'method':<14}{'patches/s':>10}{'GFLOP/iter':>12}{'GFLOP/s':>10}{'% of best conv':>16}")
        splits = {}
        for method, trainer in trainers.items():
            n_steps = steps if trainer.has_discriminator else 0
            draw = patches.draw(n_steps)
            trainer.iteration = 1
            flops = count_flops(lambda: trainer.train_step(draw, EpochStats()))
            trainer.iteration = 1  # iterations 1..: the gradient probe (every 16th) stays out of the median
            seconds = time_steps(lambda: trainer.train_step(draw, EpochStats()), args.batches, device)
            rate = flops / seconds / 1e9
            print(f"{method:<14}{batch_size / seconds:>10.1f}{flops / 1e9:>12.2f}{rate:>10.1f}{100 * rate / best:>15.1f}%")
            trainer.iteration = 1
            task_flops = count_flops(lambda: trainer.update_segmenter_and_generator(draw.task, EpochStats()))
            splits[method] = split_iteration(trainer, draw, args.batches) | {"iteration": seconds,
                                                                               "data": data_seconds.get(n_steps),
                                                                               "task flops": task_flops}
        print(f"one iteration, ms (median; D steps = update_discriminator minus G's forward; data: "
              f"{'from disk' if data_seconds else 'not measured'})")
        print(f"{'method':<14}{'G fwd (D)':>10}{'D steps':>9}{'S/G step':>10}{'data':>8}{'train_step':>12}"
              f"{'patches/s with data':>21}{'S/G GFLOP/s':>13}{'% of best':>10}")
        for method, parts in splits.items():
            with_data = "–" if parts["data"] is None else f"{batch_size / (parts['iteration'] + parts['data']):.1f}"
            task_rate = parts["task flops"] / parts["S/G step"] / 1e9
            print(f"{method:<14}{_milliseconds(parts.get('G forward (D)')):>10}{_milliseconds(parts.get('D steps')):>9}"
                  f"{_milliseconds(parts['S/G step']):>10}{_milliseconds(parts['data']):>8}"
                  f"{_milliseconds(parts['iteration']):>12}{with_data:>21}{task_rate:>13.1f}{100 * task_rate / best:>9.1f}%")


if __name__ == "__main__":
    main()
