"""Device-job slots of a local study: one per GPU, else one 1-thread job per core within memory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dnorm import local_jobs
from dnorm.local_jobs import CPU_JOB_MEMORY_MB, DEVICE_RULES, local_job_arguments

REPO = Path(local_jobs.__file__).resolve().parents[1]


def test_one_device_job_per_gpu():
    assert local_job_arguments(cores=16, gpus=2, memory_mb=64000) == ["--resources", "gpu=2"]


def test_without_a_gpu_every_core_runs_its_own_one_thread_job():
    arguments = local_job_arguments(cores=2, gpus=0, memory_mb=20000)
    assert arguments[:2] == ["--resources", "gpu=2"]
    assert arguments[2] == "--set-threads"
    assert arguments[3:] == [f"{rule}=1" for rule in DEVICE_RULES]


def test_memory_caps_the_cpu_slots_and_the_cores_are_shared_among_them():
    arguments = local_job_arguments(cores=8, gpus=0, memory_mb=2 * CPU_JOB_MEMORY_MB + 1)
    assert arguments[1] == "gpu=2"
    assert "train_model=4" in arguments
    assert local_job_arguments(cores=4, gpus=0, memory_mb=10)[1] == "gpu=1"  # never zero slots
    assert "train_model=4" in local_job_arguments(cores=4, gpus=0, memory_mb=10)


def test_cores_all_and_bad_counts():
    assert local_jobs.usable_cores("all") >= 1
    assert local_jobs.usable_cores("3") == 3
    with pytest.raises(ValueError, match="cores"):
        local_jobs.usable_cores(0)


def test_available_memory_reads_meminfo(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24000000 kB\nMemAvailable:   20480000 kB\n")
    assert local_jobs.available_memory_mb(str(meminfo)) == 20000
    assert local_jobs.available_memory_mb(str(tmp_path / "missing")) is None


def test_module_prints_arguments_snakemake_accepts():
    printed = subprocess.run([sys.executable, "-m", "dnorm.local_jobs", "2"], capture_output=True, text=True,
                             check=True, cwd=REPO).stdout.split()
    assert printed[0] == "--resources" and printed[1].startswith("gpu=")
