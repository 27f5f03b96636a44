"""Pearson correlation between intensity and position."""

import math
import warnings

import numpy as np
import pytest

from dnorm.metrics import pearson_bias, pearson_bias_slice
from dnorm.metrics.bias import densest_slice


def ramp(shape=(5, 6, 7), axis=1, slope=1.0):
    coordinate = np.indices(shape)[axis].astype(float)
    return 0.3 + slope * 0.1 * coordinate


def test_linear_ramp_gives_plus_or_minus_one():
    mask = np.ones((5, 6, 7), dtype=bool)
    assert pearson_bias(ramp(), mask) == pytest.approx(1.0)
    assert pearson_bias(ramp(slope=-2.0), mask) == pytest.approx(-1.0)
    assert pearson_bias(ramp(axis=0), mask, axis=0) == pytest.approx(1.0)


def test_ramp_along_another_axis_is_uncorrelated():
    mask = np.ones((5, 6, 7), dtype=bool)
    assert pearson_bias(ramp(axis=0), mask, axis=1) == pytest.approx(0.0, abs=1e-12)


def test_matches_numpy_on_noise_inside_mask():
    rng = np.random.default_rng(0)
    volume = rng.random((6, 8, 5)) + ramp((6, 8, 5))
    mask = rng.random(volume.shape) < 0.5
    y = np.nonzero(mask)[1]
    expected = np.corrcoef(volume[mask], y)[0, 1]
    assert pearson_bias(volume, mask) == pytest.approx(expected)


def test_degenerate_cases_are_nan_without_warnings():
    volume = np.full((4, 4, 4), 0.7)
    mask = np.ones_like(volume, dtype=bool)
    one_voxel = np.zeros_like(mask)
    one_voxel[1, 2, 3] = True
    one_plane = np.zeros_like(mask)
    one_plane[:, 2, :] = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(pearson_bias(volume, mask))  # constant intensity
        assert math.isnan(pearson_bias(ramp((4, 4, 4)), np.zeros_like(mask)))  # empty mask
        assert math.isnan(pearson_bias(ramp((4, 4, 4)), one_voxel))
        assert math.isnan(pearson_bias(ramp((4, 4, 4), axis=0), one_plane))  # y constant
        assert math.isnan(pearson_bias_slice(ramp((4, 4, 4)), np.zeros_like(mask)))


def test_slice_defaults_to_densest_axial_slice():
    rng = np.random.default_rng(1)
    volume = rng.random((6, 7, 5))
    mask = np.zeros(volume.shape, dtype=bool)
    mask[1:5, 1:6, 1] = True
    mask[0:6, 0:7, 3] = True  # the densest slice
    mask[2:4, 2:4, 4] = True
    assert densest_slice(mask) == 3
    expected = pearson_bias(volume[:, :, 3], mask[:, :, 3], axis=1)
    assert pearson_bias_slice(volume, mask) == pytest.approx(expected)
    assert pearson_bias_slice(volume, mask, slice_index=1) == pytest.approx(
        pearson_bias(volume[:, :, 1], mask[:, :, 1], axis=1)
    )


def test_slice_axis_before_coordinate_axis():
    volume = ramp((4, 5, 6), axis=2)
    mask = np.ones(volume.shape, dtype=bool)
    # slicing across x: the volume's z axis becomes the plane's axis 1
    assert pearson_bias_slice(volume, mask, slice_axis=0, axis=2) == pytest.approx(1.0)
    assert pearson_bias_slice(volume, mask, slice_axis=0, axis=1) == pytest.approx(0.0, abs=1e-12)


def test_argument_errors():
    volume = np.zeros((3, 4, 5))
    with pytest.raises(ValueError, match=r"\(3, 4, 5\).*\(3, 4\)"):
        pearson_bias(volume, np.ones((3, 4), dtype=bool))
    with pytest.raises(ValueError, match="axis"):
        pearson_bias(volume, np.ones_like(volume), axis=3)
    with pytest.raises(ValueError, match="differ"):
        pearson_bias_slice(volume, np.ones_like(volume), slice_axis=1, axis=1)
    with pytest.raises(ValueError, match="slice_index"):
        pearson_bias_slice(volume, np.ones_like(volume), slice_index=5)
