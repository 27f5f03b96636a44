"""Training jobs side by side on a CPU: one job on N threads against N one-thread jobs at once.

``make study`` runs, on a machine without a GPU, one 1-thread device job per core
(``dnorm/local_jobs.py``). This measures why, per method (``unet``, ``preprocessor``, ``ours``
as in ``bench_training.py``, default configuration, configured precision): the S/G patches/s of
one process using N threads (the reference, measured in the same run), the summed patches/s of N
1-thread processes running at the same time, and their ratio (> 1: side by side finishes sooner).

    python benchmarks/bench_parallel_jobs.py [--jobs N] [--batches 15] [--quick]

``--quick``: tiny networks, one timed batch, 2 jobs: seconds, for tests, not a measurement.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_training import METHODS, QUICK_TRAINING, SyntheticPatches, time_steps  # noqa: E402

from dnorm.config import load_config  # noqa: E402
from dnorm.local_jobs import usable_cores  # noqa: E402
from dnorm.training.experiment import Experiment  # noqa: E402
from dnorm.training.stats import EpochStats  # noqa: E402
from dnorm.training.trainer import Trainer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def training_settings(quick: bool) -> dict:
    training = copy.deepcopy(load_config(str(ROOT / "config" / "config.yaml"))["training"])
    return training | (copy.deepcopy(QUICK_TRAINING) if quick else {})


def patches_per_second(method: str, threads: int, batches: int, quick: bool) -> float:
    """S/G patches/s of ``method`` in this process on ``threads`` threads."""
    torch.set_num_threads(threads)
    training = training_settings(quick)
    patches = SyntheticPatches(2, 1, training["batch_size"], training["patch_size"])
    weight = dict(METHODS)[method]
    trainer = Trainer(Experiment("bench", method, ("a", "b"), adversarial_weight=weight), training, 0,
                      torch.device("cpu"), patches, patches, "/nonexistent/checkpoint.pt")
    draw = patches.draw(training["discriminator_steps"] if trainer.has_discriminator else 0)
    trainer.iteration = 1  # keep the every-16th-iteration gradient probe out of the timings
    return training["batch_size"] / time_steps(lambda: trainer.train_step(draw, EpochStats()), batches)


def run_workers(method: str, jobs: int, threads: int, batches: int, quick: bool) -> list[float]:
    """Start ``jobs`` worker processes at once, each on ``threads`` threads; their patches/s."""
    command = [sys.executable, __file__, "--worker", method, str(threads), "--batches", str(batches)]
    command += ["--quick"] if quick else []
    workers = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(jobs)]
    rates = []
    for worker in workers:
        output, _ = worker.communicate()
        if worker.returncode:
            raise RuntimeError(f"worker {' '.join(command)} failed with exit code {worker.returncode}")
        rates.append(json.loads(output.strip().splitlines()[-1])["patches_per_second"])
    return rates


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, help="jobs side by side (default: the usable cores; --quick: 2)")
    parser.add_argument("--batches", type=int, default=15, help="timed iterations per job (median)")
    parser.add_argument("--quick", action="store_true", help="tiny networks, one timed batch (tests)")
    parser.add_argument("--worker", nargs=2, metavar=("METHOD", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    batches = 1 if args.quick else args.batches
    if args.worker:
        method, threads = args.worker
        print(json.dumps({"patches_per_second": patches_per_second(method, int(threads), batches, args.quick)}))
        return
    jobs = args.jobs or (2 if args.quick else usable_cores("all"))
    print(f"torch {torch.__version__}, {jobs} jobs, median of {batches} iterations per job"
          f"{' (--quick: tiny networks, not a measurement)' if args.quick else ''}")
    print(f"{'method':<14}{f'1 job × {jobs} threads':>20}{f'{jobs} jobs × 1 thread':>20}{'ratio':>8}")
    for method, _ in METHODS:
        reference = run_workers(method, 1, jobs, batches, args.quick)[0]
        side_by_side = sum(run_workers(method, jobs, 1, batches, args.quick))
        print(f"{method:<14}{reference:>20.1f}{side_by_side:>20.1f}{side_by_side / reference:>8.2f}")


if __name__ == "__main__":
    main()
