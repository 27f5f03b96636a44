"""Shared fixtures: a tiny, fast configuration built from the shipped defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from dnorm.config import load_config

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def default_config() -> dict:
    return load_config(REPO / "config" / "config.yaml")


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    return load_config(REPO / "config" / "config.yaml", REPO / "config" / "tiny.yaml")
