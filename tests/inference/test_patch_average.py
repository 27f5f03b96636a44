"""Patch averaging: exact identity, hand-computed means, mask skipping, modules, argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dnorm.inference import iter_windows, patch_average


def wide_floats(shape, seed=0) -> np.ndarray:
    """Arbitrary float32 values over many binades (not just small dyadic ones)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * np.exp(rng.normal(0, 4, shape))).astype(np.float32)


def reference_average(volume: np.ndarray, model, patch_size: int, stride: int) -> np.ndarray:
    """Plain float64 sum-and-count over padded windows, one window at a time."""
    spatial = volume.shape[1:]
    padded = tuple(max(n, patch_size) for n in spatial)
    source = np.zeros((volume.shape[0], *padded), dtype=np.float32)
    source[(slice(None), *(slice(0, n) for n in spatial))] = volume
    total, count = None, np.zeros(padded)
    for corner in iter_windows(padded, patch_size, stride):
        window = (slice(None), *(slice(c, c + patch_size) for c in corner))
        out = model(torch.from_numpy(source[window][None].copy()))[0].double().numpy()
        if total is None:
            total = np.zeros((out.shape[0], *padded))
        total[window] += out
        count[window[1:]] += 1
    mean = total / count
    return mean[(slice(None), *(slice(0, n) for n in spatial))]


def window_dependent(x: torch.Tensor) -> torch.Tensor:
    """A model whose output at a voxel depends on which window it is seen through."""
    return x * x.mean(dim=(2, 3, 4), keepdim=True) + x.amax(dim=(1, 2, 3, 4), keepdim=True)


class CountingModel:
    def __init__(self, fn):
        self.fn, self.calls, self.windows = fn, 0, 0

    def __call__(self, x):
        self.calls += 1
        self.windows += x.shape[0]
        return self.fn(x)


@pytest.mark.parametrize(
    ("shape", "patch_size", "stride"),
    [
        ((1, 20, 16, 9), 16, 4),  # non-multiple of the stride, axis equal to and axis below the patch
        ((2, 37, 16, 18), 16, 8),
        ((2, 19, 21, 16), 16, 16),  # stride == patch: last window overlaps only at the end
        ((1, 40, 33, 32), 32, 16),
        ((2, 35, 12, 32), 32, 8),  # axis smaller than a 32 patch, padded then cropped
        ((1, 9, 6, 5), 4, 1),
        ((2, 3, 2, 5), 4, 2),  # every axis but one below the patch
    ],
)
def test_identity_model_reproduces_input_exactly(shape, patch_size, stride):
    volume = wide_floats(shape, seed=sum(shape))
    out = patch_average(volume, lambda x: x, patch_size=patch_size, stride=stride, batch_size=7)
    assert out.dtype == np.float32
    assert out.shape == volume.shape
    assert np.array_equal(out, volume)


def test_hand_computed_average_of_window_start_sums():
    # Channels hold the x, y, z coordinates; the model outputs, over its whole window, the sum of
    # the window's start indices (the per-channel minimum), as one channel.
    shape, patch_size, stride = (8, 6, 4), 4, 2  # starts: x [0, 2, 4], y [0, 2], z [0]
    coords = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")).astype(np.float32)

    def start_sum(x):
        starts = x.amin(dim=(2, 3, 4)).sum(dim=1)  # N
        return starts[:, None, None, None, None].expand(-1, 1, *x.shape[2:]).clone()

    out = patch_average(coords, start_sum, patch_size=patch_size, stride=stride)
    assert out.shape == (1, *shape)
    assert out[0, 1, 1, 0] == 0.0  # only window (0, 0, 0)
    assert out[0, 3, 1, 2] == 1.0  # x windows 0 and 2, y window 0: (0 + 2) / 2
    assert out[0, 5, 1, 2] == 3.0  # x windows 2 and 4: (2 + 4) / 2
    assert out[0, 3, 3, 0] == 2.0  # x {0, 2} × y {0, 2}: (0 + 2 + 2 + 4) / 4
    assert out[0, 4, 4, 3] == 5.0  # x {2, 4} × y {2}: (4 + 6) / 2
    assert out[0, 7, 5, 3] == 6.0  # only window (4, 2, 0)


def test_matches_a_plain_sum_and_count_reference():
    volume = np.random.default_rng(1).standard_normal((2, 13, 10, 7)).astype(np.float32)
    out = patch_average(volume, window_dependent, patch_size=6, stride=3, batch_size=4)
    expected = reference_average(volume, window_dependent, 6, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_mask_skips_windows_and_keeps_mask_voxels_unchanged():
    volume = np.random.default_rng(2).standard_normal((1, 40, 24, 20)).astype(np.float32)
    mask = np.zeros(volume.shape[1:], dtype=bool)
    mask[5:9, 3:6, 2:4] = True
    full_model, masked_model = CountingModel(window_dependent), CountingModel(window_dependent)
    full = patch_average(volume, full_model, patch_size=8, stride=4, batch_size=1)
    masked = patch_average(volume, masked_model, patch_size=8, stride=4, mask=mask, batch_size=1)
    assert masked_model.calls < full_model.calls
    assert full_model.calls == len(list(iter_windows(volume.shape[1:], 8, 4)))
    np.testing.assert_allclose(masked[:, mask], full[:, mask], rtol=1e-6, atol=1e-6)
    assert np.all(masked[:, 20:, :, :] == 0)  # far from the mask: no evaluated window
    # With the identity model the masked result is exact on the mask.
    identity = patch_average(volume, lambda x: x, patch_size=8, stride=4, mask=mask)
    assert np.array_equal(identity[:, mask], volume[:, mask])


def test_full_mask_equals_no_mask_and_padding_with_mask():
    volume = wide_floats((2, 11, 5, 9), seed=3)  # y shorter than the patch
    mask = np.ones(volume.shape[1:], dtype=np.uint8)  # any non-zero counts as inside
    a = patch_average(volume, window_dependent, patch_size=8, stride=4, mask=mask)
    b = patch_average(volume, window_dependent, patch_size=8, stride=4)
    assert np.array_equal(a, b)
    corner = np.zeros(volume.shape[1:], dtype=bool)
    corner[-1, -1, -1] = True
    model = CountingModel(lambda x: x)
    out = patch_average(volume, model, patch_size=8, stride=4, mask=corner, batch_size=1)
    assert model.windows == 1  # only the window holding the last voxel
    assert out[:, -1, -1, -1].tolist() == volume[:, -1, -1, -1].tolist()


def test_empty_mask_returns_zeros_with_the_output_channels():
    volume = wide_floats((2, 12, 12, 12), seed=4)
    model = CountingModel(lambda x: torch.cat([x, x, x], dim=1))
    out = patch_average(volume, model, patch_size=8, stride=4, mask=np.zeros((12, 12, 12), bool))
    assert out.shape == (6, 12, 12, 12) and out.dtype == np.float32
    assert not out.any()
    assert model.windows == 1  # one probe to learn the channel count


def test_module_is_left_in_eval_mode_and_batch_size_does_not_matter():
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv3d(2, 3, kernel_size=3, padding=1), torch.nn.Dropout3d(0.5), torch.nn.Softmax(dim=1)
    )
    model.train()
    volume = np.random.default_rng(5).standard_normal((2, 14, 9, 11)).astype(np.float32)
    results = [patch_average(volume, model, patch_size=8, stride=4, batch_size=b) for b in (1, 3, 16, 1000)]
    assert not model.training and not any(m.training for m in model.modules())
    assert results[0].shape == (3, 14, 9, 11)
    for other in results[1:]:
        np.testing.assert_allclose(other, results[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0].sum(axis=0), 1.0, rtol=1e-5)  # averaged probabilities
    with torch.no_grad():
        expected = reference_average(volume, model, 8, 4)
    np.testing.assert_allclose(results[0], expected, rtol=1e-5, atol=1e-6)
    explicit = patch_average(volume, model, patch_size=8, stride=4, device="cpu")
    np.testing.assert_allclose(explicit, results[0], rtol=1e-5, atol=1e-6)


def test_callable_receives_float32_batches_of_patches():
    seen = []

    def model(x):
        seen.append((type(x), x.dtype, tuple(x.shape), torch.is_inference_mode_enabled()))
        return x[:, :1]

    volume = np.arange(2 * 10 * 8 * 8, dtype=np.float64).reshape(2, 10, 8, 8)
    out = patch_average(volume, model, patch_size=8, stride=4, batch_size=2)
    assert out.dtype == np.float32 and out.shape == (1, 10, 8, 8)
    assert seen == [(torch.Tensor, torch.float32, (2, 2, 8, 8, 8), True)]  # windows x 0 and 2


def test_autocast_runs_in_low_precision_but_returns_float32():
    torch.manual_seed(0)
    model = torch.nn.Conv3d(1, 2, kernel_size=3, padding=1)
    volume = np.random.default_rng(6).standard_normal((1, 12, 10, 10)).astype(np.float32)
    dtypes = []
    model.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    low = patch_average(volume, model, patch_size=8, stride=4, batch_size=4, autocast_dtype=torch.bfloat16)
    high = patch_average(volume, model, patch_size=8, stride=4)
    assert dtypes == [torch.bfloat16] * 2 + [torch.float32]  # 8 windows in batches of 4, then one fp32 call
    assert low.dtype == np.float32
    np.testing.assert_allclose(low, high, atol=0.05)


@pytest.mark.parametrize(
    ("kwargs", "quoted"),
    [
        ({"volume": np.zeros((8, 8, 8), np.float32)}, r"\(8, 8, 8\)"),
        ({"volume": np.zeros((1, 1, 8, 8, 8), np.float32)}, r"\(1, 1, 8, 8, 8\)"),
        ({"mask": np.ones((8, 8, 7), bool)}, r"\(8, 8, 7\)"),
        ({"patch_size": 0}, "patch_size.*0"),
        ({"stride": 0}, "stride.*0"),
        ({"stride": 9}, "stride=9"),
        ({"batch_size": 0}, "batch_size.*0"),
        ({"autocast_dtype": "bfloat16"}, "bfloat16"),
        ({"model": lambda x: x[:, :, :4]}, r"\(1, 1, 4, 8, 8\)"),
        ({"model": lambda x: x.numpy()}, "ndarray"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs, quoted):
    arguments = {"volume": np.zeros((1, 8, 8, 8), np.float32), "model": lambda x: x, "patch_size": 8, "stride": 4}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=quoted):
        patch_average(**arguments)
