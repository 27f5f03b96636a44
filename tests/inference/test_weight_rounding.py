"""Rounding convolution weights to bfloat16/float16 so that each kernel's sum of rounding errors is
about zero (the fix for the systematic part of bfloat16's label disagreements): the rounding's
properties, its effect on a convolution of a smooth input, and where inference applies it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dnorm.inference.optimize import Float32, fold_batchnorm, round_keeping_kernel_sums, round_weights_keeping_sums
from dnorm.inference.predict import inference_networks
from test_predict import make_model

LOW = [torch.bfloat16, torch.float16]


def kernel_error_sums(weight: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    return (weight - rounded.float()).flatten(2).sum(dim=2)


def random_weight(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(16, 8, 3, 3, 3, generator=generator) * 0.1


@pytest.mark.parametrize("dtype", LOW)
def test_each_tap_is_one_of_its_two_neighbours_in_the_low_precision(dtype):
    weight = random_weight()
    rounded = round_keeping_kernel_sums(weight, dtype)
    assert rounded.dtype == dtype and rounded.shape == weight.shape
    # no representable value lies strictly between a tap and its exact weight
    error = weight - rounded.float()
    towards_exact = torch.where(error > 0, torch.inf, -torch.inf).to(dtype)
    next_value = torch.nextafter(rounded, towards_exact).float()
    assert (error.abs() <= (next_value - rounded.float()).abs()).all()
    moved = rounded != weight.to(dtype)
    assert 0 < moved.float().mean() < 0.5  # some taps take their other neighbour, most stay nearest


@pytest.mark.parametrize("dtype", LOW)
def test_kernel_sums_are_never_worse_than_nearest_and_mostly_near_zero(dtype):
    weight = random_weight(1)
    nearest = kernel_error_sums(weight, weight.to(dtype)).abs()
    kept = kernel_error_sums(weight, round_keeping_kernel_sums(weight, dtype)).abs()
    assert (kept <= nearest).all()
    assert kept.mean() < nearest.mean() / 5


def test_representable_weights_stay_as_they_are():
    weight = random_weight(2).to(torch.bfloat16).float()
    weight[0, 0] = 0.0
    assert torch.equal(round_keeping_kernel_sums(weight).float(), weight)


def test_a_smooth_input_convolves_closer_to_float32():
    """The case it is for: an input with a large common part (activations after batch
    normalization and LeakyReLU), where a kernel's summed rounding error shifts the whole output."""
    torch.manual_seed(3)
    weight = torch.randn(8, 8, 3, 3, 3) * 0.1
    x = 1.0 + 0.02 * torch.randn(2, 8, 12, 12, 12)
    exact = nn.functional.conv3d(x, weight)
    errors = {}
    for name, rounded in {"nearest": weight.to(torch.bfloat16), "kept": round_keeping_kernel_sums(weight)}.items():
        errors[name] = (nn.functional.conv3d(x, rounded.float()) - exact).abs().mean()
    assert errors["kept"] < errors["nearest"] / 3, errors


def test_bad_dtype_is_refused():
    with pytest.raises(ValueError, match="bfloat16 or float16"):
        round_keeping_kernel_sums(random_weight(), torch.float32)


def float32_wrapped(module: nn.Module) -> set[int]:
    return {id(m) for w in module.modules() if isinstance(w, Float32) for m in w.modules()}


@pytest.mark.parametrize("autocast, dtype", [(True, torch.bfloat16), (torch.float16, torch.float16)])
@pytest.mark.parametrize("pack", [1, 2])
def test_low_precision_inference_copies_get_representable_weights_except_the_float32_ends(autocast, dtype, pack):
    networks, _ = make_model("ours")
    for net in networks.values():  # trained-like weights, not exactly representable
        for conv in net.modules():
            if isinstance(conv, nn.Conv3d):
                conv.weight.data.add_(1e-4 * torch.rand_like(conv.weight))
    copy = inference_networks(networks, channels_last=True, autocast=autocast, pack=pack)
    kept = float32_wrapped(copy)
    convolutions = [m for m in copy.modules() if isinstance(m, nn.Conv3d)]
    rounded = [m for m in convolutions if id(m) not in kept]
    assert rounded and len(rounded) < len(convolutions)
    for conv in rounded:
        assert torch.equal(conv.weight, conv.weight.to(dtype).float())
    assert any(not torch.equal(m.weight, m.weight.to(dtype).float()) for m in convolutions if id(m) in kept)


def test_float32_inference_copies_keep_their_weights():
    networks, _ = make_model("preprocessor")
    folded = fold_batchnorm(nn.ModuleDict({k: networks[k] for k in ("segmenter", "generator")}))
    copy = inference_networks(networks)
    for (name, a), (_, b) in zip(sorted(folded.state_dict().items()), sorted(copy.state_dict().items())):
        assert torch.equal(a, b), name


def test_round_weights_keeping_sums_returns_the_module_it_rounds_in_place():
    module = nn.Sequential(nn.Conv3d(2, 4, 3), Float32(nn.Conv3d(4, 4, 1)))
    module[0].weight.data.add_(1e-4)
    before = module[1].module.weight.clone()
    assert round_weights_keeping_sums(module) is module
    assert torch.equal(module[0].weight, module[0].weight.bfloat16().float())
    assert torch.equal(module[1].module.weight, before)


def test_rounding_all_layers_together_equals_rounding_each_alone():
    torch.manual_seed(4)
    module = nn.Sequential(nn.Conv3d(2, 4, 3), nn.Conv3d(4, 8, 3), nn.Conv3d(8, 8, 1))
    expected = [round_keeping_kernel_sums(conv.weight).float() for conv in module]
    round_weights_keeping_sums(module)
    for conv, weight in zip(module, expected):
        assert torch.equal(conv.weight, weight)
