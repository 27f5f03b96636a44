"""The SLURM profile, end to end: the tiny workflow through ``--profile profiles/slurm`` on a
throw-away one-node cluster (see slurm_cluster.py), compared with a local run of the same targets.
The plain command (no ``--resources``) must run GPU jobs side by side: the node has two fake GPUs
and two training jobs must overlap in time.

Needs root and the Debian packages slurmctld, slurmd, slurm-client and munge, which ``.ci/run``
installs (the test never installs anything); skipped without them, failed under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnorm.manifest import read_manifest

from ci_helpers import unavailable
from slurm_cluster import PACKAGES, LocalSlurm, skip_reason
from workflow_helpers import REPO, link_workflow

pytestmark = pytest.mark.workflow

MODEL = "results/tiny/models/unet_iseg/seed-20220331"
SCORES = "results/tiny/metrics/unet_iseg/seed-20220331/segmentation.csv"
TARGETS = ("results/tiny/preprocessed/manifest.csv", f"{MODEL}/model.pt", SCORES)
# Two more trainings that become ready together (both need the iSEG and MRBrainS patches), so the
# SLURM run has GPU jobs to run side by side; only the SLURM run builds them.
PARALLEL_MODELS = tuple(f"results/tiny/models/{name}/seed-20220331/model.pt"
                        for name in ("standardization_dual", "preprocessor_dual"))
# The SLURM jobs of those targets: rule -> number of jobs (unet_iseg is tested on iSEG and MRBrainS).
EXPECTED_JOBS = {"synthesize_dataset": 3, "preprocess_dataset": 3, "harmonize_datasets": 1, "sample_patches": 2,
                 "warm_up_generator": 1, "train_model": 3, "segment_test_subject": 2, "score_segmentations": 1}
FAKE_GPUS = 2
FAKE_CPUS = 8
FAKE_MEMORY_MB = 64000  # room for two train_model jobs (16 GB each in the profile); nothing enforces it
GPU_RULES = {"warm_up_generator", "train_model", "segment_test_subject"}
RUN_TIMEOUT_S = 900
TOOLS = ("slurmctld", "slurmd", "sbatch", "munged")


def run_snakemake(workdir: Path, env: dict, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Snakemake in ``workdir`` under ``timeout`` (SIGINT first, so it cancels its SLURM jobs); wall time."""
    env = dict(env, PYTHONPATH=str(REPO))  # `import dnorm` in the jobs; sbatch exports the environment
    command = ["timeout", "-s", "INT", "-k", "60", str(RUN_TIMEOUT_S), sys.executable, "-m", "snakemake", *args]
    start = time.monotonic()
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT_S + 120)
    return result, time.monotonic() - start


class TwoGpuSlurm(LocalSlurm):
    """The one-node cluster with two fake GPUs, and more CPUs and memory than the host has
    (``SlurmdParameters=config_overrides``: slurmd takes the node as configured), so that two
    GPU jobs with the profile's requests fit at once."""

    def _daemon(self, name: str, *args: str) -> None:
        if name == "slurmctld":  # before any daemon reads the configuration
            gres = self.conf.parent / "gres.conf"
            gres.write_text(gres.read_text() + gres.read_text().replace("/dev/null", "/dev/zero"))
            node = dict(field.split("=", 1) for field in self.node.split())
            node.update(CPUs=str(FAKE_CPUS), Boards="1", SocketsPerBoard="1", CoresPerSocket=str(FAKE_CPUS),
                        ThreadsPerCore="1", RealMemory=str(FAKE_MEMORY_MB))
            fake = " ".join(f"{key}={value}" for key, value in node.items())
            text = self.conf.read_text().replace(f"{self.node} Gres=gpu:1", f"{fake} Gres=gpu:{FAKE_GPUS}")
            self.conf.write_text("SlurmdParameters=config_overrides\n" + text)
        super()._daemon(name, *args)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    reason = skip_reason()
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if reason is None and missing:
        reason = f"SLURM is not installed ({', '.join(missing)} missing: apt-get install {' '.join(PACKAGES)})"
    if reason:
        unavailable(reason)
    start = time.monotonic()
    slurm = TwoGpuSlurm(tmp_path_factory.mktemp("slurm_cluster"))
    try:
        slurm.start()
        print(f"\n[slurm] cluster up in {time.monotonic() - start:.1f} s ({slurm.root})")
        yield slurm
    finally:
        slurm.stop()
        assert not slurm.running(), f"daemons still running: {slurm.running()}"
        assert not slurm.made, f"left behind: {slurm.made}"


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory):
    workdir = link_workflow(tmp_path_factory.mktemp("slurm_workflow"))
    cpus = int(re.search(r"\bCPUs=(\d+)", cluster.node).group(1))
    # The fake GPUs are no GPUs: SLURM sets SLURM_JOB_GPUS, and a GPU job on a CPU-only PyTorch
    # would (rightly) fail; run the jobs on the CPU on purpose.
    env = dict(cluster.env, DNORM_DEVICE="cpu")
    result, seconds = run_snakemake(
        workdir, env, "--profile", "profiles/slurm", "--configfile", "config/tiny.yaml",
        # the host's real CPUs for train_model's 8 threads; no --resources: the plain command
        "--max-threads", str(cpus),
        # poll soon and often: tiny jobs take seconds (MinJobAge stays >= 3 x this)
        "--slurm-init-seconds-before-status-checks", "5", "--retries", "0", *TARGETS, *PARALLEL_MODELS)
    print(f"[slurm] snakemake --profile profiles/slurm: {seconds:.1f} s wall time "
          f"(return code {result.returncode})")
    assert result.returncode == 0, (f"stderr:\n{result.stderr[-6000:]}\n\nslurmctld log:\n"
                                    f"{cluster.ctld_log.read_text()[-3000:]}")
    return workdir, result


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    workdir = link_workflow(tmp_path_factory.mktemp("local_workflow"))
    result, seconds = run_snakemake(workdir, dict(os.environ), "--configfile", "config/tiny.yaml", "--cores", "2",
                                    *TARGETS)
    print(f"[slurm] the same targets locally (--cores 2): {seconds:.1f} s wall time")
    assert result.returncode == 0, result.stderr[-6000:]
    return workdir


def slurm_jobs(cluster: LocalSlurm) -> list[dict[str, str]]:
    """Every job slurmctld still knows (MinJobAge outlasts the run), as ``scontrol show job`` fields."""
    jobs = []
    for line in cluster.command("scontrol", "show", "job", "--oneliner").splitlines():
        if line.strip() and not line.startswith("No jobs"):
            jobs.append(dict(re.findall(r"(\w+)=(\S*)", line)))
    return jobs


def test_every_job_went_through_slurm_in_its_partition(slurm_run, cluster):
    workdir, result = slurm_run
    jobs = [job for job in slurm_jobs(cluster) if job.get("Comment", "").startswith("rule_")]
    per_rule: dict[str, list[dict]] = {}
    for job in jobs:
        rule = next(name for name in EXPECTED_JOBS if job["Comment"].startswith(f"rule_{name}"))
        per_rule.setdefault(rule, []).append(job)
    assert {rule: len(found) for rule, found in per_rule.items()} == EXPECTED_JOBS
    for rule, found in per_rule.items():
        for job in found:
            assert job["JobState"] == "COMPLETED", job
            assert job["Partition"] == ("gpu" if rule in GPU_RULES else "cpu"), job
            assert ("gpu" in job.get("TresPerJob", "")) == (rule in GPU_RULES), job
            assert Path(job["WorkDir"]).resolve() == workdir.resolve(), job
        # the plugin's per-job SLURM logs (kept by the profile)
        logs = list((workdir / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log"))
        assert sorted(p.stem for p in logs) == sorted(job["JobId"] for job in found), rule
    # slurmctld's own log: each job was allocated (by the main or the backfill scheduler)
    started = set(re.findall(r"(?:Allocate|Started) JobId=(\d+)", cluster.ctld_log.read_text()))
    assert started >= {job["JobId"] for job in jobs}


def test_slurm_outputs_match_a_local_run(slurm_run, local_run):
    slurm_dir, _ = slurm_run
    slurm_manifest = slurm_dir / TARGETS[0]
    local_manifest = local_run / TARGETS[0]
    assert slurm_manifest.read_bytes() == local_manifest.read_bytes()
    slurm_table, local_table = read_manifest(slurm_manifest), read_manifest(local_manifest)
    compared = 0
    for (_, slurm_row), (_, local_row) in zip(slurm_table.iterrows(), local_table.iterrows()):
        for column in ("t1", "t2", "label"):
            if not slurm_row[column]:
                continue
            ours, theirs = nib.load(slurm_row[column]), nib.load(local_row[column])
            np.testing.assert_array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
            np.testing.assert_array_equal(ours.affine, theirs.affine)
            compared += 1
    assert compared >= 2 * len(slurm_table)
    for name in ("model.pt", "history.csv", "model_card.json"):
        assert (slurm_dir / MODEL / name).stat().st_size > 0
    # Training may run with other thread counts under SLURM (set-threads), so weights can differ
    # in the last bits: the test subjects' scores must agree, not the bytes.
    slurm_scores, local_scores = pd.read_csv(slurm_dir / SCORES), pd.read_csv(local_run / SCORES)
    assert len(slurm_scores) == 2 * 3
    pd.testing.assert_frame_equal(slurm_scores.drop(columns=["dice", "mhd", "hd95", "asd"]),
                                  local_scores.drop(columns=["dice", "mhd", "hd95", "asd"]))
    np.testing.assert_allclose(slurm_scores.dice, local_scores.dice, atol=0.01)


def test_gpu_jobs_run_side_by_side_without_a_resources_flag(slurm_run, cluster):
    """profiles/default sets no `resources: gpu=1` that would queue the GPU jobs one by one."""
    # any two GPU jobs: preprocessor_dual's training waits for its warm-up, which runs beside
    # standardization_dual's training
    jobs = [job for job in slurm_jobs(cluster)
            if any(job.get("Comment", "").startswith(f"rule_{rule}_") for rule in GPU_RULES)]
    spans = sorted((time.mktime(time.strptime(job["StartTime"], "%Y-%m-%dT%H:%M:%S")),
                    time.mktime(time.strptime(job["EndTime"], "%Y-%m-%dT%H:%M:%S")), job["Comment"]) for job in jobs)
    print("[slurm] GPU jobs (start, end):", [(s[0] - spans[0][0], s[1] - spans[0][0], s[2]) for s in spans])
    overlapping = [(a[2], b[2]) for i, a in enumerate(spans) for b in spans[i + 1:] if b[0] < a[1] and a[0] < b[1]]
    assert overlapping, f"no two GPU jobs ran at the same time: {spans}"
