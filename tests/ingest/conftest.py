"""Fixtures for ingestion tests; the dataset builders live in ``real_layouts`` (a unique module
name, so other test folders can import them too)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from real_layouts import *  # noqa: F401,F403 - builders and constants used by the tests
from real_layouts import SHAPE, build_abide, build_iseg, build_mrbrains


@pytest.fixture
def make_iseg(tmp_path):
    return lambda **kwargs: build_iseg(tmp_path / "iseg_src", **kwargs)


@pytest.fixture
def make_mrbrains(tmp_path):
    return lambda **kwargs: build_mrbrains(tmp_path / "mrbrains_src", **kwargs)


@pytest.fixture
def make_abide(tmp_path):
    return lambda **kwargs: build_abide(tmp_path / "abide_src", **kwargs)


@pytest.fixture
def out_dir(tmp_path):
    return tmp_path / "out"


@pytest.fixture
def volumes():
    """The fixture builders' helpers and constants, for computing expected outputs in tests."""
    return SimpleNamespace(shape=SHAPE, ramp=ramp, tissue_pattern=tissue_pattern, image_values=image_values,
                           abide_labels=abide_labels, save_nii=save_nii, mrbrains_affine=MRBRAINS_AFFINE,
                           lia_affine=LIA_AFFINE, iseg_raw=ISEG_RAW)
