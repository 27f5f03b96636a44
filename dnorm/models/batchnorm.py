"""Batch normalization that stays fast on channels-last 3D tensors with few channels (CPU).

PyTorch's CPU kernel for channels-last batch normalization vectorizes over the channels: at the
8 channels of the default U-Nets' first level (32³ patches) one layer's forward + backward took
about 10 ms, ten times the channels-first kernel, and batch normalization was a third of a U-Net
training step (``benchmarks/bench_training.py``). A channels-last tensor's memory is a
(voxels × C) matrix; viewed as a (voxels / k) × (k·C) matrix with k·C = 64 columns, PyTorch's
2-D kernels run at full vector width. :class:`BatchNorm3d` computes per-column statistics there,
combines the k column groups into per-channel ones, and applies them with tiled per-column
scale and shift; the backward pass does the same with the column sums of the gradient. Same
results as ``nn.BatchNorm3d`` up to floating-point rounding (tests), same parameters and buffers
(checkpoints and the inference folding are unchanged); other inputs (channels-first, CUDA, many
channels) take ``nn.BatchNorm3d``'s own path.
"""

from __future__ import annotations

import torch
from torch import nn

#: columns of the 2-D view (64 bfloat16 or float32 values fill AVX-512 registers several times)
WIDE_COLUMNS = 64
#: the wide path is taken up to this many channels: measured on a 2-core AVX-512 CPU (batch 8,
#: forward + backward), 2 to 8 channels at 32³ 3.5-15× faster than the native kernel, 8 at 16³
#: 2×; 16 channels at 16³ or 32³ 1.3-1.8× slower
WIDE_MAX_CHANNELS = 8


def _wide_view(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """``(matrix, k)``: the memory of channels-last ``x`` (N×C×D×H×W) as a (voxels/k) × (k·C)
    matrix, a view; column ``j`` holds channel ``j mod C``."""
    channels = x.shape[1]
    voxels = x.numel() // channels
    k = max(WIDE_COLUMNS // channels, 1)
    while voxels % k:
        k //= 2
    return x.permute(0, 2, 3, 4, 1).reshape(voxels // k, k * channels), k


def _accumulation_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for bfloat16 and float16 tensors (as the native kernels), else their own dtype."""
    return torch.promote_types(dtype, torch.float32)


def _channel_statistics(matrix: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and biased variance (float32) from the k column groups of ``matrix``: the
    native kernel's per-column mean and variance, combined as equal-sized groups (mean of the
    variances plus the variance of the means)."""
    # float32 weight and bias: with a bfloat16 ``matrix`` the kernel then returns float32 statistics
    ones = torch.ones(matrix.shape[1], device=matrix.device, dtype=_accumulation_dtype(matrix.dtype))
    _, column_mean, column_invstd = torch.native_batch_norm(matrix, ones, torch.zeros_like(ones), None, None,
                                                            True, 0.0, 0.0)
    column_mean = column_mean.view(k, -1)
    column_var = column_invstd.pow(-2).view(k, -1)  # eps 0: a constant column gives inf → variance 0
    mean = column_mean.mean(0)
    return mean, column_var.mean(0) + (column_mean - mean).pow(2).mean(0)


def _normalize(x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
               eps: float) -> torch.Tensor:
    """``(x − mean)·(var + eps)^-½·weight + bias`` per channel by the native kernel on the wide view
    (float32 or float64 inside, one rounding to ``x``'s dtype), written into a new channels-last tensor (not a
    view: the activation after batch normalization modifies it in place). No autograd."""
    matrix, k = _wide_view(x)
    result = torch.empty_like(x, memory_format=torch.channels_last_3d)
    dtype = _accumulation_dtype(x.dtype)
    unused = matrix.new_empty(0, dtype=dtype)
    weight, bias, mean, var = (t.to(dtype).repeat(k) for t in (weight, bias, mean, var))
    torch.ops.aten.native_batch_norm.out(matrix, weight, bias, mean, var, False, 0.0, eps,
                                         out=_wide_view(result)[0], save_mean=unused, save_invstd=unused.clone())
    return result


class _WideBatchNorm(torch.autograd.Function):
    """Training-mode batch normalization of a channels-last tensor through :func:`_wide_view`;
    returns (output, batch mean, batch biased variance)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        matrix, k = _wide_view(x)
        mean, var = _channel_statistics(matrix, k)
        invstd = torch.rsqrt(var + eps)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.mark_non_differentiable(mean, var)
        return _normalize(x, mean, var, weight, bias, eps), mean, var

    @staticmethod
    def backward(ctx, grad_out, _grad_mean, _grad_var):
        x, weight, mean, invstd = ctx.saved_tensors
        matrix, k = _wide_view(x)
        grad, _ = _wide_view(grad_out.contiguous(memory_format=torch.channels_last_3d))
        # per-column Σ g·x̂ and Σ g (the native backward's weight and bias gradients)
        _, column_gx, column_g = torch.ops.aten.native_batch_norm_backward(
            grad, matrix, torch.ones_like(invstd.repeat(k)), None, None, mean.repeat(k), invstd.repeat(k), True, 0.0,
            [False, True, True])
        sum_gx, sum_g = column_gx.view(k, -1).sum(0), column_g.view(k, -1).sum(0)
        grad_x = None
        if ctx.needs_input_grad[0]:
            # dx = w·σ⁻¹·(g − Σg/n − x̂·Σg·x̂/n) = a·g + (b·x + c) per channel: b·x + c by the native
            # kernel (float32 inside), then a·g added in x's dtype (no float32 copies of g and x:
            # memory traffic is what this layer costs)
            n = matrix.shape[0] * k
            a = weight.to(invstd.dtype) * invstd
            b = -a * invstd * sum_gx / n
            c = -a * sum_g / n - b * mean
            grad_x = _normalize(x, torch.zeros_like(b), torch.ones_like(b), b, c, 0.0)
            _wide_view(grad_x)[0].addcmul_(grad, a.to(grad.dtype).repeat(k))
        return grad_x, sum_gx.to(weight.dtype), sum_g.to(weight.dtype), None


class BatchNorm3d(nn.BatchNorm3d):
    """``nn.BatchNorm3d`` with a fast path for channels-last CPU tensors of at most
    :data:`WIDE_MAX_CHANNELS` channels (module docstring); same parameters, buffers and results."""

    def _takes_wide_path(self, x: torch.Tensor) -> bool:
        return (x.dim() == 5 and x.device.type == "cpu" and x.shape[1] <= WIDE_MAX_CHANNELS and self.affine
                and x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous()
                and x.numel() > x.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._takes_wide_path(x):
            return super().forward(x)
        self._check_input_dim(x)
        use_batch_statistics = self.training or self.running_mean is None
        if not use_batch_statistics:
            if torch.is_grad_enabled():  # the wide path has no autograd in eval mode
                return super().forward(x)
            return _normalize(x, self.running_mean, self.running_var, self.weight, self.bias, self.eps)
        out, mean, var = _WideBatchNorm.apply(x, self.weight, self.bias, self.eps)
        if self.training and self.track_running_stats:
            self._update_running_statistics(mean, var, x.numel() // x.shape[1])
        return out

    @torch.no_grad()
    def _update_running_statistics(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        """As ``nn.BatchNorm3d``: an exponential (or, with ``momentum=None``, cumulative) average
        of the batch mean and the unbiased batch variance."""
        self.num_batches_tracked.add_(1)
        factor = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        self.running_mean.lerp_(mean.to(self.running_mean.dtype), factor)
        self.running_var.lerp_((var * (n / max(n - 1, 1))).to(self.running_var.dtype), factor)
