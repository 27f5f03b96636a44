"""Scale out without a trap: no profile serializes the GPU jobs; the local command does."""

from __future__ import annotations

import re

import yaml

from workflow_helpers import REPO


def profile(name: str) -> dict:
    return yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text()) or {}


def test_no_profile_limits_the_gpu_resource():
    """profiles/default is read with --profile profiles/slurm and wins key by key: a `gpu` limit
    there would run a cluster's trainings one after another."""
    for name in ("default", "slurm"):
        resources = profile(name).get("resources") or []
        assert not [r for r in resources if str(r).replace(" ", "").startswith("gpu")], (name, resources)


def test_the_local_study_takes_its_device_job_slots_from_the_machine():
    makefile = (REPO / "Makefile").read_text()
    study = re.search(r"^study:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE).group(1)
    assert "-m dnorm.local_jobs $(CORES)" in study and "$$args" in study
    assert "&&" in study  # a failing helper stops the recipe instead of running without limits


def test_gpu_check_target_is_thin():
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^gpu-check:.*\n((?:\t.*\n)+)", makefile, flags=re.MULTILINE).group(1)
    assert recipe.strip() == "$(BIN)/python benchmarks/gpu_check.py"


def test_training_jobs_may_run_long_enough_to_resume():
    slurm = profile("slurm")
    assert slurm["set-resources"]["train_model"]["runtime"] >= 720
    assert slurm["retries"] >= 1
