import pytest
import torch

from dnorm.models import UNet3D, build_generator, build_segmenter, count_parameters


def _paper_count(**kwargs) -> int:
    with torch.device("meta"):
        model = UNet3D(width=64, depth=5, max_width=512, **kwargs)
    return count_parameters(model)


@pytest.mark.parametrize("batch,channels", [(1, 1), (2, 2)])
def test_generator_shape_and_range(batch, channels):
    torch.manual_seed(0)
    g = build_generator(in_channels=channels, width=4, depth=3)
    x = torch.rand(batch, channels, 32, 32, 32)
    with torch.no_grad():
        y = g(x)
    assert y.shape == (batch, channels, 32, 32, 32)
    assert y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


@pytest.mark.parametrize("batch,channels", [(1, 1), (2, 2)])
def test_segmenter_shape_logits(batch, channels):
    torch.manual_seed(0)
    s = build_segmenter(in_channels=channels, n_classes=4, width=4, depth=3, upsampling="nearest")
    with torch.no_grad():
        y = s(torch.rand(batch, channels, 32, 32, 32))
    assert y.shape == (batch, 4, 32, 32, 32)
    assert isinstance(s.final, torch.nn.Identity)


def test_relu_and_depth_one_and_replicate_padding():
    m = UNet3D(1, 2, width=2, depth=1, activation="relu", final="none", padding_mode="replicate")
    assert m(torch.rand(1, 1, 5, 6, 7)).shape == (1, 2, 5, 6, 7)


def test_paper_configuration_has_about_40m_parameters():
    g = _paper_count(in_channels=1, out_channels=1, final="sigmoid")
    s = _paper_count(in_channels=1, out_channels=4, final="none")
    print(f"paper G parameters: {g:,}; paper S parameters: {s:,}")
    assert 35_000_000 <= g <= 45_000_000
    assert 35_000_000 <= s <= 45_000_000
    # Analytic count: 3×3×3 convs without bias, BatchNorm (2 per conv), 1×1×1 head with bias.
    c = [64, 128, 256, 512, 512]
    convs = [(1, 64), (64, 64)]
    convs += [(c[i - 1], c[i]) for i in range(1, 5)] + [(c[i], c[i]) for i in range(1, 5)]
    convs += [(512 + 512, 256), (256, 256), (256 + 256, 128), (128, 128),
              (128 + 128, 64), (64, 64), (64 + 64, 64), (64, 64)]
    expected = sum(27 * a * b + 2 * b for a, b in convs) + 64 * 1 + 1
    assert g == expected


def test_channels_are_capped():
    m = UNet3D(1, 1, width=8, depth=4, max_width=16)
    assert m.channels == (8, 16, 16, 16)
    assert m(torch.rand(1, 1, 16, 16, 16)).shape == (1, 1, 16, 16, 16)


def test_gradient_reaches_input():
    m = build_segmenter(1, 4, width=2, depth=2)
    x = torch.rand(2, 1, 8, 8, 8, requires_grad=True)
    m(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bfloat16_autocast_runs():
    m = build_generator(1, width=2, depth=2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = m(torch.rand(1, 1, 8, 8, 8))
    assert y.shape == (1, 1, 8, 8, 8)


@pytest.mark.parametrize(
    "kwargs,quoted",
    [
        (dict(width=0), "0"),
        (dict(depth=-1), "-1"),
        (dict(width=64, max_width=32), "32"),
        (dict(upsampling="bilinear"), "'bilinear'"),
        (dict(activation="gelu"), "'gelu'"),
        (dict(final="softmax"), "'softmax'"),
        (dict(negative_slope=1.5), "1.5"),
        (dict(padding_mode="circ"), "'circ'"),
        (dict(width=2.5), "2.5"),
    ],
)
def test_invalid_arguments_raise(kwargs, quoted):
    with pytest.raises(ValueError, match=quoted):
        UNet3D(1, 1, **kwargs)


def test_invalid_input_shapes_raise():
    m = UNet3D(1, 1, width=2, depth=3)
    with pytest.raises(ValueError, match="divisible"):
        m(torch.rand(1, 1, 30, 32, 32))
    with pytest.raises(ValueError, match="input channels"):
        m(torch.rand(1, 2, 32, 32, 32))
    with pytest.raises(ValueError, match="N×C×D×H×W"):
        m(torch.rand(1, 32, 32, 32))


def test_pooling_keeps_bfloat16_under_cpu_autocast():
    # CPU autocast runs max pooling in float32 (a full copy of the level's activations); pooling
    # only selects values, so the U-Net runs it outside autocast, in the input's dtype
    m = build_generator(1, width=2, depth=3)
    dtypes = []
    m.pool.register_forward_hook(lambda module, inputs, output: dtypes.append(output.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m(torch.rand(1, 1, 8, 8, 8))
    assert dtypes == [torch.bfloat16, torch.bfloat16]


def test_unet_uses_the_channels_last_batchnorm():
    from dnorm.models.batchnorm import BatchNorm3d

    m = build_segmenter(1, 4, width=2, depth=2)
    norms = [module for module in m.modules() if isinstance(module, torch.nn.BatchNorm3d)]
    assert norms and all(isinstance(module, BatchNorm3d) for module in norms)
