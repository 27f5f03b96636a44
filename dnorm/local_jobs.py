"""Snakemake resource arguments for a study on one machine (``make study``).

Training and inference rules declare ``gpu=1``. On a workstation with N CUDA GPUs,
``--resources gpu=N`` runs one such job per GPU. Without a GPU those jobs run on the CPU, and
there one-thread jobs side by side finish sooner than one job using every core: on the 2-core
reference machine two 1-thread trainings together gave 1.17–1.35× the patches/s of one 2-thread
training (Pre-processor, Ours, S alone; up to 1.55× in another run:
``benchmarks/bench_parallel_jobs.py``), because a width-8 U-Net's convolutions do not scale
across cores. So on a CPU every core takes its own
device job, as far as the available memory allows (``CPU_JOB_MEMORY_MB`` each); with fewer
slots than cores, each job gets an equal share of the cores.

    python -m dnorm.local_jobs [CORES]     # prints the arguments; CORES: a number or "all"
"""

from __future__ import annotations

import os
import sys

#: rules that declare ``gpu=1`` (tests/workflow/test_profiles.py checks the list against rules/*.smk)
DEVICE_RULES = ("warm_up_generator", "train_model", "train_ablation_cell", "segment_test_subject", "measure_bias_robustness",
                "evaluate_discriminator", "probe_dataset_invariance")
#: memory to allow per CPU device job: the default study's largest such job peaked at 0.86 GB
#: resident (probe_dataset_invariance; train_model 0.84 GB; Snakemake benchmark files), doubled
CPU_JOB_MEMORY_MB = 1800


def usable_cores(requested: str | int = "all") -> int:
    """``requested`` as a core count; ``"all"``: the cores this process may run on."""
    if str(requested) == "all":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cores = int(requested)
    if cores < 1:
        raise ValueError(f"cores must be >= 1 or 'all', got {requested!r}")
    return cores


def available_memory_mb(meminfo: str = "/proc/meminfo") -> int | None:
    """MemAvailable in MB, or None where the system does not report it."""
    try:
        with open(meminfo) as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        return None
    return None


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def local_job_arguments(cores: int, gpus: int, memory_mb: int | None) -> list[str]:
    """Snakemake arguments: one device job per GPU; without GPUs, one job per core (as many as
    ``memory_mb`` holds, at least one), the cores shared equally among them."""
    if gpus > 0:
        return ["--resources", f"gpu={gpus}"]
    slots = cores if memory_mb is None else max(1, min(cores, memory_mb // CPU_JOB_MEMORY_MB))
    threads = cores // slots
    return ["--resources", f"gpu={slots}", "--set-threads", *(f"{rule}={threads}" for rule in DEVICE_RULES)]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    cores = usable_cores(argv[0] if argv else "all")
    print(" ".join(local_job_arguments(cores, cuda_device_count(), available_memory_mb())))


if __name__ == "__main__":
    main()
