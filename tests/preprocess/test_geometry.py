import numpy as np
import pytest

from dnorm.preprocess.geometry import bounding_box, centred_padding, common_shape, crop, pad, scale_to_unit


def world(affine, index):
    return affine[:3, :3] @ np.asarray(index, float) + affine[:3, 3]


@pytest.fixture
def affine():
    a = np.diag([2.0, 2.0, 3.0, 1.0])
    a[:3, 3] = [-10.0, 5.0, 7.0]
    return a


def test_bounding_box_is_tight():
    mask = np.zeros((6, 7, 8), bool)
    mask[1, 2, 3] = mask[4, 5, 6] = True
    assert bounding_box(mask) == (slice(1, 5), slice(2, 6), slice(3, 7))


def test_bounding_box_of_empty_mask_raises():
    with pytest.raises(ValueError, match="empty brain mask"):
        bounding_box(np.zeros((3, 3, 3), bool))


def test_crop_keeps_world_positions(affine):
    volume = np.arange(6 * 7 * 8, dtype=np.float32).reshape(6, 7, 8)
    box = (slice(1, 5), slice(2, 6), slice(3, 7))
    cropped, cropped_affine = crop(volume, affine, box)
    assert cropped.shape == (4, 4, 4)
    assert cropped[0, 0, 0] == volume[1, 2, 3]
    np.testing.assert_allclose(world(cropped_affine, (0, 0, 0)), world(affine, (1, 2, 3)))


def test_pad_centres_and_keeps_world_positions(affine):
    volume = np.ones((3, 4, 5), np.float32)
    padded, padded_affine = pad(volume, affine, (6, 4, 8))
    assert padded.shape == (6, 4, 8)
    assert centred_padding((3, 4, 5), (6, 4, 8)) == [(1, 2), (0, 0), (1, 2)]
    assert padded.sum() == volume.sum() and padded[0].sum() == 0
    np.testing.assert_allclose(world(padded_affine, (1, 0, 1)), world(affine, (0, 0, 0)))


def test_pad_to_a_smaller_shape_raises(affine):
    with pytest.raises(ValueError, match="cannot pad"):
        pad(np.ones((4, 4, 4)), affine, (3, 4, 4))


def test_scale_to_unit_divides_by_the_brain_percentile_and_zeroes_the_background():
    volume = np.array([[[0.0, 50.0, 100.0, 200.0]]])
    mask = np.array([[[False, True, True, True]]])
    scaled = scale_to_unit(volume, mask, percentile=50.0)  # median of 50, 100, 200 = 100
    np.testing.assert_allclose(scaled, [[[0.0, 0.5, 1.0, 1.0]]])
    assert scaled.dtype == np.float32


def test_scale_to_unit_rejects_an_empty_or_dark_brain():
    with pytest.raises(ValueError, match="mask is empty"):
        scale_to_unit(np.ones((2, 2, 2)), np.zeros((2, 2, 2), bool), 99.0)
    with pytest.raises(ValueError, match="<= 0"):
        scale_to_unit(np.zeros((2, 2, 2)), np.ones((2, 2, 2), bool), 99.0)


def test_common_shape_is_the_per_axis_maximum_with_a_floor():
    assert common_shape([(40, 50, 30), (45, 41, 33)], minimum=32) == (45, 50, 33)
    assert common_shape([(10, 50, 20)], minimum=32) == (32, 50, 32)
