"""Folding batch normalization into convolutions for inference: same outputs, original untouched."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dnorm.inference.optimize import Float32, float32_ends, fold_batchnorm
from dnorm.models import build_segmenter


def randomize_statistics(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.3, 2.0)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5)
                m.bias.data.uniform_(-0.2, 0.2)
    return module


def test_folded_unet_matches_eval_mode_and_leaves_the_original():
    torch.manual_seed(0)
    net = randomize_statistics(build_segmenter(2, 4, width=4, depth=3, max_width=16)).train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    folded = fold_batchnorm(net)
    assert net.training and sum(isinstance(m, nn.BatchNorm3d) for m in net.modules()) == 10
    assert not folded.training and not any(isinstance(m, nn.BatchNorm3d) for m in folded.modules())
    for key, value in net.state_dict().items():
        assert torch.equal(value, state[key]), key
    x = torch.rand(3, 2, 16, 16, 16)
    with torch.no_grad():
        expected = net.eval()(x)
        torch.testing.assert_close(folded(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("conv_bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_fold_conv_bias_and_non_affine_norms(conv_bias, affine):
    torch.manual_seed(1)
    seq = randomize_statistics(nn.Sequential(nn.Conv3d(3, 5, 3, padding=1, bias=conv_bias),
                                             nn.BatchNorm3d(5, affine=affine), nn.ReLU())).eval()
    folded = fold_batchnorm(seq)
    assert isinstance(folded[1], nn.Identity) and folded[0].bias is not None
    x = torch.randn(2, 3, 6, 7, 5)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), seq(x), rtol=1e-5, atol=1e-5)


def test_norms_that_cannot_be_folded_are_kept():
    seq = nn.Sequential(nn.Conv3d(2, 4, 1), nn.BatchNorm3d(4, track_running_stats=False),  # batch statistics
                        nn.ReLU(), nn.BatchNorm3d(4),  # not after a convolution
                        nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))  # not 3D
    folded = fold_batchnorm(seq)
    assert [type(m) for m in folded] == [type(m) for m in seq]


def test_float32_ends_wraps_once_and_computes_the_same():
    torch.manual_seed(2)
    net = build_segmenter(1, 4, width=4, depth=2).eval()
    x = torch.rand(1, 1, 8, 8, 8)
    with torch.no_grad():
        expected = net(x)
    wrapped = float32_ends(fold_batchnorm(net))
    float32_ends(wrapped)  # idempotent
    assert isinstance(wrapped.head, Float32) and not isinstance(wrapped.head.module, Float32)
    assert isinstance(wrapped.encoders[0][0], Float32) and not isinstance(wrapped.encoders[0][0].module, Float32)
    with torch.no_grad():
        torch.testing.assert_close(wrapped(x), expected, rtol=1e-5, atol=1e-5)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = wrapped(x)
    assert low.dtype == torch.float32  # the head returns float32 logits


# --- Window packing ---------------------------------------------------------------------------------

from dnorm.inference.optimize import PackedUNet3D, can_pack, pack_windows, unpack_windows  # noqa: E402
from dnorm.models import build_generator  # noqa: E402


@pytest.mark.parametrize(("channels", "depth", "pack", "options"), [
    (1, 4, 2, {}),
    (2, 3, 3, {"upsampling": "nearest", "activation": "relu"}),
    (1, 2, 1, {}),
    (2, 3, 2, {"max_width": 8}),
])
@pytest.mark.parametrize("build", [build_segmenter, build_generator])
def test_packed_unet_computes_each_window_like_the_unet(channels, depth, pack, options, build):
    torch.manual_seed(3)
    unet = build(channels, **({"n_classes": 4} if build is build_segmenter else {}), width=4, depth=depth,
                 **{"max_width": 16, **options})
    unet = randomize_statistics(unet).eval()
    assert can_pack(unet)
    packed = PackedUNet3D(fold_batchnorm(unet), pack)
    x = torch.rand(2 * pack, channels, 16, 16, 16)
    with torch.no_grad():
        expected = unet(x)
        out = unpack_windows(packed(pack_windows(x, pack)), pack)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        cl = packed.to(memory_format=torch.channels_last_3d)
        out_cl = cl(pack_windows(x, pack).contiguous(memory_format=torch.channels_last_3d))
        torch.testing.assert_close(unpack_windows(out_cl, pack), expected, rtol=1e-5, atol=1e-5)


def test_pack_and_unpack_windows():
    x = torch.arange(6 * 2 * 2 * 2 * 2, dtype=torch.float32).reshape(6, 2, 2, 2, 2)
    packed = pack_windows(x, 3)
    assert packed.shape == (2, 6, 2, 2, 2)
    assert torch.equal(packed[1, 2:4], x[4])  # row 1 holds windows 3, 4, 5
    assert torch.equal(unpack_windows(packed.contiguous(memory_format=torch.channels_last_3d), 3), x)
    with pytest.raises(ValueError, match="multiple of pack=4"):
        pack_windows(x, 4)


def test_what_cannot_be_packed():
    unet = build_segmenter(1, 4, width=4, depth=2)
    assert can_pack(unet) and can_pack(fold_batchnorm(unet))
    with pytest.raises(ValueError, match="fold"):
        PackedUNet3D(unet, 2)  # batch normalization still there
    with pytest.raises(ValueError, match="pack"):
        PackedUNet3D(fold_batchnorm(unet), 0)
    assert not can_pack(nn.Sequential(nn.Conv3d(1, 1, 3)))
    odd = fold_batchnorm(build_segmenter(1, 4, width=4, depth=2))
    odd.encoders[0][2] = nn.Dropout3d(0.1)
    assert not can_pack(odd)


def test_window_model_packs_any_batch_size():
    from dnorm.inference.predict import WindowModel, inference_networks

    torch.manual_seed(4)
    networks = nn.ModuleDict({"generator": randomize_statistics(build_generator(1, width=4, depth=2)),
                              "segmenter": randomize_statistics(build_segmenter(1, 4, width=4, depth=2))}).eval()
    plain = WindowModel(networks)
    for pack in (2, 3):
        model = WindowModel(inference_networks(networks, channels_last=True, pack=pack), channels_last=True,
                            pack=pack)
        for n in (1, 2, 5):
            x = torch.rand(n, 1, 8, 8, 8)
            with torch.no_grad():
                torch.testing.assert_close(model(x), plain(x), rtol=1e-5, atol=1e-5)
