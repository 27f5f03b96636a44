"""Helpers shared by tests (a unique module name: pytest puts several test folders on sys.path)."""

from __future__ import annotations

import copy

from dnorm.config import merge_into, validate_config


def tiny_dataset_config(config: dict, name: str, subjects: int = 2) -> dict:
    """One dataset entry of ``config`` with ``subjects`` subjects (a copy)."""
    dataset = copy.deepcopy(config["datasets"][name])
    dataset["subjects"] = subjects
    return dataset


def with_overrides(config: dict, override: dict) -> dict:
    """A validated deep copy of ``config`` with ``override`` merged in."""
    return validate_config(merge_into(copy.deepcopy(config), override))
