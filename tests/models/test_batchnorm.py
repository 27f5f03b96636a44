import copy

import pytest
import torch
from torch import nn

import dnorm.models.batchnorm as batchnorm
from dnorm.models.batchnorm import WIDE_MAX_CHANNELS, BatchNorm3d

CHANNELS_LAST = torch.channels_last_3d


def _pair(channels: int, momentum=0.1, seed: int = 0) -> tuple[nn.BatchNorm3d, BatchNorm3d]:
    """A reference ``nn.BatchNorm3d`` with random affine parameters and statistics, and ours with
    the same state."""
    torch.manual_seed(seed)
    reference = nn.BatchNorm3d(channels, momentum=momentum)
    with torch.no_grad():
        reference.weight.uniform_(0.5, 1.5)
        reference.bias.uniform_(-1.0, 1.0)
        reference.running_mean.uniform_(-1.0, 1.0)
        reference.running_var.uniform_(0.5, 2.0)
    ours = BatchNorm3d(channels, momentum=momentum)
    ours.load_state_dict(reference.state_dict())
    return reference, ours


def _input(channels: int, size: int = 8, batch: int = 4, dtype=torch.float32, channels_last: bool = True):
    torch.manual_seed(1)
    # a mean far from 0 and a std far from 1, as convolution outputs have them
    x = torch.randn(batch, channels, size, size, size) * 3.0 + 2.0
    x = x.contiguous(memory_format=CHANNELS_LAST) if channels_last else x
    return x.to(dtype)


def _run(module: nn.Module, x: torch.Tensor, grad: torch.Tensor, norm: nn.Module | None = None):
    """Output, input gradient, weight and bias gradients (of ``norm``, default ``module``) of one
    forward + backward."""
    norm = module if norm is None else norm
    x = x.detach().clone().requires_grad_()
    module.zero_grad(set_to_none=True)
    out = module(x)
    out.backward(grad)
    return out.detach(), x.grad, norm.weight.grad, norm.bias.grad


@pytest.fixture
def wide_path_calls(monkeypatch):
    """How many times the wide path ran (training and evaluation)."""
    calls = []
    real_wide_view = batchnorm._wide_view
    monkeypatch.setattr(batchnorm, "_wide_view", lambda x: calls.append(x.shape) or real_wide_view(x))
    return calls


@pytest.mark.parametrize("channels", [2, 3, 8])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_training_matches_torch_batchnorm(channels, momentum, wide_path_calls):
    reference, ours = _pair(channels, momentum)
    x = _input(channels)
    grad = torch.randn_like(x)
    for _ in range(2):  # two steps: the running statistics accumulate the same way
        expected, got = _run(reference, x, grad), _run(ours, x, grad)
        for name, e, g in zip(("output", "input grad", "weight grad", "bias grad"), expected, got):
            torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5, msg=name)
    assert wide_path_calls, "the channels-last input did not take the wide path"
    assert got[0].is_contiguous(memory_format=CHANNELS_LAST)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(reference, name), rtol=1e-5, atol=1e-6, msg=name)


def test_evaluation_matches_torch_batchnorm_with_and_without_autograd(wide_path_calls):
    reference, ours = _pair(8)
    reference.eval(), ours.eval()
    x = _input(8)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)
    assert wide_path_calls
    grad = torch.randn_like(x)
    for e, g in zip(_run(reference, x, grad), _run(ours, x, grad)):  # with autograd: the native path
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_bfloat16_keeps_the_dtype_and_float32_statistics():
    reference, ours = _pair(8)
    x = _input(8, dtype=torch.bfloat16)
    grad = torch.randn_like(x)
    expected, got = _run(reference, x, grad), _run(ours, x, grad)
    assert got[0].dtype == got[1].dtype == torch.bfloat16 and ours.running_mean.dtype == torch.float32
    # within a few bfloat16 roundings of the native kernel (which also computes in float32 inside)
    for name, e, g in zip(("output", "input grad", "weight grad", "bias grad"), expected, got):
        torch.testing.assert_close(g.float(), e.float(), rtol=2e-2, atol=2e-2, msg=name)
    torch.testing.assert_close(ours.running_var, reference.running_var, rtol=1e-4, atol=1e-4)


def test_an_in_place_activation_after_it_gets_the_right_gradient():
    reference, ours = _pair(4)
    x = _input(4)
    grad = torch.randn_like(x)
    expected = _run(nn.Sequential(reference, nn.LeakyReLU(0.2, inplace=True)), x, grad, reference)
    got = _run(nn.Sequential(ours, nn.LeakyReLU(0.2, inplace=True)), x, grad, ours)
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_float64_gradients_are_exact():
    torch.manual_seed(0)
    module = BatchNorm3d(2).double()
    x = _input(2, size=2, batch=2, dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: module(t), (x,), eps=1e-6, atol=1e-6)


def test_a_constant_channel_normalizes_to_its_bias():
    _, ours = _pair(2)
    x = _input(2)
    x[:, 1] = 5.0
    out = ours(x)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[:, 1], torch.full_like(out[:, 1], float(ours.bias.detach()[1])))


@pytest.mark.parametrize("channels,channels_last", [(WIDE_MAX_CHANNELS * 2, True), (8, False)])
def test_other_inputs_take_the_native_path_bit_for_bit(channels, channels_last, wide_path_calls):
    reference, ours = _pair(channels)
    x = _input(channels, channels_last=channels_last)
    grad = torch.randn_like(x)
    for e, g in zip(_run(reference, x, grad), _run(ours, x, grad)):
        assert torch.equal(g, e)
    assert not wide_path_calls


def test_state_dict_is_that_of_torch_batchnorm():
    reference, ours = _pair(8)
    assert list(ours.state_dict()) == list(reference.state_dict())
    assert isinstance(copy.deepcopy(ours), nn.BatchNorm3d)
