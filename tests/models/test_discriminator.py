import pytest
import torch

from dnorm.models import Discriminator3D, count_parameters


def test_output_shape_and_generated_class():
    torch.manual_seed(0)
    d = Discriminator3D(in_channels=1, n_domains=3)
    y = d(torch.rand(2, 1, 32, 32, 32))
    assert y.shape == (2, 4)
    assert d.generated_class == 3
    assert d.classifier.in_features == 1024


def test_parameter_count_about_0_3m():
    n = count_parameters(Discriminator3D(1, 3))
    print(f"D parameters (K=3): {n:,}")
    assert 200_000 <= n <= 400_000


def test_batchnorm_only_in_blocks_2_to_4():
    d = Discriminator3D(2, 2)
    has_bn = [any(isinstance(m, torch.nn.BatchNorm3d) for m in block) for block in d.features]
    assert has_bn == [False, True, True, True]


def test_gradient_reaches_input():
    d = Discriminator3D(1, 2, dropout=0.0)
    x = torch.rand(2, 1, 32, 32, 32, requires_grad=True)
    d(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_other_patch_size():
    d = Discriminator3D(1, 2, channels=(4, 8), patch_size=16)
    assert d(torch.rand(1, 1, 16, 16, 16)).shape == (1, 3)


@pytest.mark.parametrize(
    "kwargs,quoted",
    [
        (dict(n_domains=0), "0"),
        (dict(patch_size=24), "24"),
        (dict(channels=()), r"\(\)"),
        (dict(dropout=1.0), "1.0"),
        (dict(negative_slope=-0.1), "-0.1"),
    ],
)
def test_invalid_arguments_raise(kwargs, quoted):
    args = dict(in_channels=1, n_domains=3) | kwargs
    with pytest.raises(ValueError, match=quoted):
        Discriminator3D(**args)


def test_wrong_input_shape_raises():
    d = Discriminator3D(1, 3)
    with pytest.raises(ValueError, match=r"\(1, 1, 16, 16, 16\)"):
        d(torch.rand(1, 1, 16, 16, 16))
