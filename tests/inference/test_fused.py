"""Fused bfloat16 convolutions with a float32 bias (the fix for bfloat16's label disagreements):
the operator's behaviour, the modules it replaces, near-tie labels equal to float32's, and
predict_volume's default. Tiny networks, seconds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from dnorm.inference.optimize import (Float32, FusedConv3d, float32_ends, fold_batchnorm, fuse_convolutions,
                                      fused_convolution_available)
from dnorm.inference.patch_average import patch_average
from dnorm.inference.predict import WindowModel, inference_networks, predict_volume, use_fused_convolutions
from dnorm.models import build_segmenter
from test_predict import brain_volume, make_model

needs_fused = pytest.mark.skipif(not fused_convolution_available(),
                                 reason="this PyTorch build has no oneDNN fused convolution with a float32 bias")
BF16 = torch.bfloat16


def bf16_step(value: torch.Tensor) -> torch.Tensor:
    """The spacing of bfloat16 numbers around ``value`` (8 significant bits)."""
    return 2.0 ** (torch.floor(torch.log2(value.abs().clamp_min(1e-30))) - 7)


@needs_fused
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("activation", [None, nn.LeakyReLU(0.2), nn.ReLU()])
@pytest.mark.parametrize("channels_last", [True, False])
def test_fused_convolution_is_the_float32_layer_rounded_once(groups, activation, channels_last):
    torch.manual_seed(0)
    conv = nn.Conv3d(4, 6, 3, padding=1, groups=groups)
    x = torch.rand(2, 4, 6, 7, 5)
    with torch.no_grad():
        # inputs and weights exactly representable in bfloat16: only the output rounding remains
        conv.weight.copy_(conv.weight.to(BF16).float())
        conv.bias.uniform_(-3, 3)
        x = x.to(BF16).float()
        expected = conv(x)
        expected = activation(expected) if activation is not None else expected
        fused = FusedConv3d(conv, activation, channels_last)
        out = fused(x)
    assert out.dtype == BF16 and out.shape == expected.shape
    assert out.is_contiguous(memory_format=torch.channels_last_3d if channels_last else torch.contiguous_format)
    assert torch.all((out.float() - expected).abs() <= bf16_step(expected) / 2 + 1e-6)


@needs_fused
def test_the_bias_stays_float32_where_autocast_rounds_it():
    """A bias that nearly cancels the convolution's sum (as folded batch norm makes them): autocast
    rounds the bias to bfloat16 (steps of 2 near 300) and loses the small result; the fused layer
    keeps it to bfloat16's relative precision."""
    conv = nn.Conv3d(1, 3, 1)
    with torch.no_grad():
        conv.weight.fill_(-600.0)  # exact in bfloat16
        conv.bias.copy_(torch.tensor([300.3, 300.5, 300.1]))
    x = torch.full((1, 1, 2, 2, 2), 0.5)  # w·x = -300 exactly
    expected = torch.tensor([0.3, 0.5, 0.1]).view(1, 3, 1, 1, 1)
    with torch.no_grad(), torch.autocast("cpu", dtype=BF16):
        plain = conv(x).float()
    fused = FusedConv3d(conv)(x).float()
    assert torch.equal(plain, torch.zeros_like(plain))  # 300.x rounds to 300
    assert torch.allclose(fused, expected.expand_as(fused), rtol=2**-8)


@needs_fused
def test_near_tie_labels_equal_float32_labels_through_patch_averaging():
    """Class scores that differ by less than bfloat16's rounding of the bias: plain autocast ties
    every voxel (argmax 0), the fused path gives float32's labels on every voxel."""
    model = nn.Sequential(nn.Conv3d(1, 4, 1), nn.Identity())
    with torch.no_grad():
        model[0].weight.fill_(-600.0)
        model[0].bias.copy_(torch.tensor([300.3, 300.5, 300.1, 300.4]))
    brain = brain_volume((12, 11, 10))[0] > 0
    volume = np.where(brain, 0.5, 0.0)[None].astype(np.float32)
    options = dict(patch_size=8, stride=4)
    reference = patch_average(volume, model, **options).argmax(axis=0)[brain]
    plain = patch_average(volume, model, autocast_dtype=BF16, **options).argmax(axis=0)[brain]
    fused_model = fuse_convolutions(fold_batchnorm(model))
    fused = patch_average(volume, fused_model, autocast_dtype=BF16, **options).argmax(axis=0)[brain]
    assert (reference == 1).all()
    assert (plain != reference).all()
    np.testing.assert_array_equal(fused, reference)


def calibrated_segmenter_model(seed: int):
    """A tiny G-less model whose batch norms see inputs with a large mean against their spread
    (positive weights, statistics measured on the volume): folded biases nearly cancel the sums."""
    networks, card = make_model("unet", seed=seed)
    volume = brain_volume((24, 24, 24), seed=seed)
    segmenter = networks["segmenter"]
    with torch.no_grad():
        for module in segmenter.modules():
            if isinstance(module, nn.Conv3d) and module.kernel_size == (3, 3, 3):
                module.weight.abs_()
            if isinstance(module, nn.BatchNorm3d):
                module.momentum = None
                module.reset_running_stats()
        x = torch.from_numpy(volume)[None]
        segmenter.train()(torch.cat([x[..., :16, :16, :16], x[..., 8:, 8:, 8:]]))
    return networks.eval(), card, volume


@needs_fused
def test_fused_default_is_closer_to_float32_on_cancelling_biases():
    """On a whole (tiny) U-Net the bias is one error among others (inputs, weights, outputs are
    rounded too): the fused default must not be farther from float32 than plain autocast."""
    networks, card, volume = calibrated_segmenter_model(0)
    brain = volume[0] > 0
    reference = predict_volume(volume, networks, card, precision="float32")[0][:, brain]
    fused = predict_volume(volume, networks, card, precision="bfloat16")[0][:, brain]
    plain = predict_volume(volume, networks, card, precision="bfloat16", fused=False)[0][:, brain]
    fused_error, plain_error = np.abs(fused - reference).mean(), np.abs(plain - reference).mean()
    assert fused_error <= plain_error, (fused_error, plain_error)


@needs_fused
@pytest.mark.parametrize("pack", [1, 2])
def test_fuse_convolutions_replaces_every_convolution_but_the_float32_ends(pack):
    networks, _ = make_model("ours")
    plain = inference_networks(networks, channels_last=True, autocast=True, pack=pack)
    fused = inference_networks(networks, channels_last=True, autocast=True, pack=pack, fused=True)
    assert not any(isinstance(m, FusedConv3d) for m in plain.modules())
    assert not any(type(m) is nn.Conv3d for m in fused.modules()
                   if not any(m is w.module for w in fused.modules() if isinstance(w, Float32)))
    assert sum(isinstance(m, FusedConv3d) for m in fused.modules()) > 0
    activations = [sum(isinstance(m, nn.LeakyReLU) for m in n.modules()) for n in (plain, fused)]
    assert activations[1] < activations[0]  # fused into the convolutions before them
    assert sum(isinstance(m, Float32) for m in fused.modules()) == sum(isinstance(m, Float32) for m in plain.modules())
    x = torch.from_numpy(brain_volume((16, 16, 16), seed=1))[None].repeat(2, 1, 1, 1, 1)
    with torch.inference_mode(), torch.autocast("cpu", dtype=BF16):
        a = WindowModel(plain, channels_last=True, pack=pack)(x)
        b = WindowModel(fused, channels_last=True, pack=pack)(x)
    assert (a - b).abs().max() < 0.05  # both bfloat16: they differ by rounding only


def test_fusing_leaves_other_modules_and_float32_paths_alone():
    torch.manual_seed(0)
    net = float32_ends(fold_batchnorm(build_segmenter(1, 4, width=2, depth=2, max_width=8)))
    reflect = nn.Sequential(nn.Conv3d(2, 2, 3, padding=1, padding_mode="reflect"), nn.LeakyReLU(0.2))
    module = fuse_convolutions(nn.ModuleDict({"unet": net, "other": reflect}))
    assert type(module["other"][0]) is nn.Conv3d and isinstance(module["other"][1], nn.LeakyReLU)
    assert isinstance(module["unet"].encoders[0][0], Float32)
    assert isinstance(module["unet"].head, Float32)
    with pytest.raises(ValueError, match="FusedConv3d"):
        FusedConv3d(reflect[0])
    with pytest.raises(ValueError, match="cannot fuse"):
        FusedConv3d(nn.Conv3d(2, 2, 3), nn.Sigmoid())


def test_predict_volume_uses_fused_convolutions_only_on_cpu_bfloat16():
    cpu = torch.device("cpu")
    assert not use_fused_convolutions(cpu, None)
    assert not use_fused_convolutions(cpu, torch.float16)
    assert not use_fused_convolutions(torch.device("cuda"), BF16)
    assert use_fused_convolutions(cpu, BF16) == fused_convolution_available()
    networks, card = make_model("ours")
    volume = brain_volume()
    # float32 is untouched by the option
    a = predict_volume(volume, networks, card, precision="float32")
    b = predict_volume(volume, networks, card, precision="float32", fused=False)
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError, match="fused"):
        predict_volume(volume, networks, card, fused="yes")
