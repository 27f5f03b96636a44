"""The SLURM profile sends every rule that asks for a GPU to the GPU partition."""

from __future__ import annotations

import re

import yaml

from workflow_helpers import REPO


def gpu_rules() -> set[str]:
    """Rules (and checkpoints) whose resources ask for ``gpu=1`` in rules/*.smk."""
    found = set()
    for path in (REPO / "rules").glob("*.smk"):
        blocks = re.split(r"^(?:rule|checkpoint) ", path.read_text(), flags=re.MULTILINE)[1:]
        for block in blocks:
            name = block.split(":", 1)[0].strip()
            if re.search(r"^\s+gpu=1,?\s*$", block, flags=re.MULTILINE):
                found.add(name)
    return found


def test_local_device_slots_cover_exactly_the_gpu_rules():
    from dnorm.local_jobs import DEVICE_RULES

    assert gpu_rules() == set(DEVICE_RULES)


def test_every_gpu_rule_runs_in_the_gpu_partition():
    rules = gpu_rules()
    assert {"train_model", "segment_test_subject", "measure_bias_robustness", "evaluate_discriminator"} <= rules
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    partitions = {rule: settings.get("slurm_partition") for rule, settings in profile["set-resources"].items()}
    assert {rule: partitions.get(rule) for rule in rules} == {rule: "gpu" for rule in rules}
    assert profile["default-resources"]["slurm_partition"] == "cpu"
