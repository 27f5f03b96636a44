import numpy as np
import pytest

from dnorm.training.augment import apply_bias, bias_profile


def test_bias_profile_follows_eq_6():
    # B(y) = (y / H) * alpha + (1 - alpha): H = 10, alpha = 0.5
    np.testing.assert_allclose(bias_profile(0, 3, 10, 0.5), [0.5, 0.55, 0.6])
    np.testing.assert_allclose(bias_profile(8, 2, 10, 0.5), [0.9, 0.95])
    np.testing.assert_allclose(bias_profile(4, 4, 10, 0.0), 1.0)


def test_apply_bias_scales_along_the_image_y_axis_only():
    image = np.ones((1, 2, 4, 3), np.float32)
    biased = apply_bias(image, y_start=2, height=8, alpha=1.0)
    np.testing.assert_allclose(biased[0, 0, :, 0], [0.25, 0.375, 0.5, 0.625])
    assert (biased[0, :, 1, :] == 0.375).all()


def test_invalid_alpha_is_rejected():
    with pytest.raises(ValueError, match="alpha in \\[0, 1\\]"):
        bias_profile(0, 4, 10, 1.5)
