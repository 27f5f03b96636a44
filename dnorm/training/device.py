"""Where and in which precision to run: one code path for CUDA and CPU.

Snakemake's ``gpu`` resource is only a counter (it sets no ``CUDA_VISIBLE_DEVICES``), so the
device comes from that value *and* ``torch.cuda.is_available()``.
"""

from __future__ import annotations

import contextlib
import logging

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "bfloat16")


def select_device(gpus: int = 1) -> torch.device:
    """CUDA when the job was granted a GPU and one is visible, else CPU, with a warning in the
    job's log when a GPU was granted but CUDA cannot be used (a paper-scale job would otherwise
    run for hours on the CPU without a word)."""
    if gpus > 0 and torch.cuda.is_available():
        return torch.device("cuda")
    if gpus > 0:
        log.warning("this job holds %d GPU(s) but CUDA is not available to PyTorch %s (CUDA build: %s): "
                    "running on the CPU", gpus, torch.__version__, torch.version.cuda)
    return torch.device("cpu")


def cpu_has_bfloat16() -> bool:
    """Whether oneDNN has native bfloat16 kernels here (AVX512-BF16 or AMX); elsewhere bf16 is
    emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (``auto``: bfloat16 where the hardware has it)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "float32":
        return None
    if precision == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if cpu_has_bfloat16() else None


def autocast(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype``, or a no-op context for float32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def use_channels_last(device: torch.device, setting: str | bool) -> bool:
    """``auto``: channels-last 3D on CPU (measured faster for these U-Nets with oneDNN), the
    default layout on CUDA, where cuDNN picks its own."""
    if setting == "auto":
        return device.type == "cpu"
    return bool(setting)


def to_memory_format(tensor: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return tensor.contiguous(memory_format=torch.channels_last_3d) if channels_last else tensor
