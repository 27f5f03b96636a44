"""Where and in which precision to run: one code path for CUDA and CPU.

Device. Snakemake's ``gpu`` resource is only a counter (it sets no ``CUDA_VISIBLE_DEVICES``), so
the device comes from that value, ``torch.cuda.is_available()``, what the scheduler granted and
the ``DNORM_DEVICE`` machine setting (``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``; see
:func:`select_device`). A job that is meant to run on a GPU and cannot fails at once with the
reason, instead of training for days on the CPU.

Precision (``training.precision``; :func:`autocast_dtype`): bfloat16 autocast only where the
hardware has it natively (CUDA compute capability >= 8.0; ``torch.cuda.is_bf16_supported()``
also counts emulation, so the capability is checked), float16 autocast with a gradient scaler
on older GPUs (sm70 V100, sm75 T4), float32 otherwise; ``float32`` also turns TF32 off, so it
means float32 (:func:`configure_backends`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "float32", "bfloat16")
DEVICE_SETTINGS = ("auto", "cpu", "cuda")
#: the machine setting that overrides the device choice (a machine setting, like the profile's
#: resources, not a hyper-parameter: it never changes what is computed, only where)
DEVICE_VARIABLE = "DNORM_DEVICE"
#: first compute capability with native bfloat16 tensor cores (A100)
BF16_CAPABILITY = (8, 0)
#: oldest compute capability this code supports with float16 autocast (V100)
FP16_CAPABILITY = (7, 0)
#: variables through which a scheduler says that it granted this job GPUs
SCHEDULER_GPU_VARIABLES = ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE")

# the lock files that keep one GPU per job on a multi-GPU machine, held until the process ends
_claimed: dict[int, object] = {}


class DeviceUnavailableError(RuntimeError):
    """The job was meant to run on CUDA and PyTorch cannot use CUDA here."""


def _cuda_problem() -> str:
    return (f"PyTorch {torch.__version__} (CUDA build: {torch.version.cuda}) cannot use CUDA here "
            f"(torch.cuda.is_available() is False; CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES')!r}). Install a CUDA build of PyTorch that "
            f"matches the driver (`nvidia-smi`; README, 'Paper scale on a cluster'), or set "
            f"{DEVICE_VARIABLE}=cpu to run on the CPU on purpose")


def scheduler_granted_gpus(environ=None) -> bool:
    """Whether a scheduler (SLURM) granted this job GPUs: then CUDA must work."""
    environ = os.environ if environ is None else environ
    for name in SCHEDULER_GPU_VARIABLES:
        value = environ.get(name, "").strip()
        if not value or value in ("(null)", "N/A", "NoDevFiles"):
            continue
        if name == "SLURM_GPUS_ON_NODE" and value == "0":  # a count; the others list GPU indices
            continue
        return True
    return False


def device_setting(environ=None) -> str:
    """``DNORM_DEVICE`` (default ``auto``), checked."""
    environ = os.environ if environ is None else environ
    value = environ.get(DEVICE_VARIABLE, "auto").strip().lower() or "auto"
    base, _, index = value.partition(":")
    if base not in DEVICE_SETTINGS or (index and (base != "cuda" or not index.isdigit())):
        raise ValueError(f"{DEVICE_VARIABLE}={value!r} is not one of auto, cpu, cuda, cuda:N")
    return value


def select_device(gpus: int = 1, environ=None) -> torch.device:
    """The device of a job that holds ``gpus`` of Snakemake's ``gpu`` resource.

    - ``DNORM_DEVICE=cpu``: the CPU. ``DNORM_DEVICE=cuda`` (or ``cuda:N``): CUDA, or
      :class:`DeviceUnavailableError` when PyTorch cannot use it.
    - ``auto`` (default): CUDA when the job holds a GPU and CUDA works; when it holds one, CUDA
      does not work and a scheduler (SLURM) granted the job a GPU, :class:`DeviceUnavailableError`
      (a CPU-only PyTorch on a GPU node would run a paper-scale job for days); otherwise the CPU,
      with a warning in the job's log (a workstation without a GPU runs the study on its CPU).

    On a machine with several visible GPUs (``--resources gpu=2`` on one workstation), each job
    claims a free one (:func:`claim_gpu`), so two jobs do not share ``cuda:0``. Under SLURM each
    job sees only its own GPU(s), as ``cuda:0``.
    """
    environ = os.environ if environ is None else environ
    setting = device_setting(environ)
    if setting == "cpu":
        return torch.device("cpu")
    explicit = setting.startswith("cuda")
    wants_gpu = explicit or gpus > 0
    if not wants_gpu:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if explicit:
            raise DeviceUnavailableError(f"{DEVICE_VARIABLE}={setting} asks for CUDA, but {_cuda_problem()}")
        if scheduler_granted_gpus(environ):
            granted = {name: environ[name] for name in SCHEDULER_GPU_VARIABLES if name in environ}
            raise DeviceUnavailableError(f"the scheduler granted this job a GPU ({granted}), but {_cuda_problem()}")
        log.warning("this job holds %d GPU(s) but CUDA is not available to PyTorch %s (CUDA build: %s): "
                    "running on the CPU", gpus, torch.__version__, torch.version.cuda)
        return torch.device("cpu")
    if ":" in setting:
        index = int(setting.split(":")[1])
        if index >= torch.cuda.device_count():
            raise DeviceUnavailableError(f"{DEVICE_VARIABLE}={setting}, but only {torch.cuda.device_count()} "
                                         f"CUDA device(s) are visible")
    else:
        index = claim_gpu()
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def _gpu_key(index: int) -> str:
    """A name for visible GPU ``index`` that is the same whatever CUDA_VISIBLE_DEVICES renumbers."""
    try:
        return str(torch.cuda.get_device_properties(index).uuid)
    except (AttributeError, RuntimeError):
        return f"index-{index}"


def claim_gpu(lock_dir: str | Path | None = None) -> int:
    """The index of a visible GPU that no other dnorm job on this machine holds.

    One visible GPU (SLURM, or a one-GPU machine): 0, no lock. Several: the first whose lock file
    (``<tmp>/dnorm-gpu-<uuid>.lock``, an exclusive ``flock``) this process can take; the lock is
    held until the process ends (the kernel drops it even after SIGKILL). If every GPU is held
    (more GPU jobs than GPUs), the one with the most free memory, with a warning.
    """
    count = torch.cuda.device_count()
    if count <= 1:
        return 0
    folder = Path(lock_dir or tempfile.gettempdir())
    for index in range(count):
        if index in _claimed:
            return index
        handle = open(folder / f"dnorm-gpu-{_gpu_key(index)}.lock", "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _claimed[index] = handle
        log.info("claimed GPU %d of %d (%s)", index, count, handle.name)
        return index
    free = [torch.cuda.mem_get_info(index)[0] for index in range(count)]
    index = max(range(count), key=free.__getitem__)
    log.warning("all %d visible GPUs are held by other dnorm jobs: sharing GPU %d (pass --resources gpu=N "
                "with N at most the number of GPUs)", count, index)
    return index


def cpu_has_bfloat16() -> bool:
    """Whether oneDNN has native bfloat16 kernels here (AVX512-BF16 or AMX); elsewhere bf16 is
    emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cuda_capability(device: torch.device) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype for ``precision``; ``None`` means float32.

    ``auto``: on CUDA bfloat16 from compute capability 8.0 (A100, H100, RTX 30xx+), float16 (with
    a gradient scaler, :func:`needs_grad_scaler`) on 7.x (V100, T4), float32 below; on CPU
    bfloat16 where oneDNN has native kernels. ``bfloat16`` on a GPU below 8.0 is a
    ``ValueError``: it would be emulated, slower than float32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {PRECISIONS}")
    if precision == "float32":
        return None
    if device.type == "cuda":
        capability = cuda_capability(device)
        if capability >= BF16_CAPABILITY:
            return torch.bfloat16
        if precision == "bfloat16":
            raise ValueError(f"precision 'bfloat16' needs a GPU of compute capability >= 8.0, but "
                             f"{torch.cuda.get_device_name(device)} has {capability[0]}.{capability[1]} "
                             f"(bfloat16 would be emulated); use precision 'auto' (float16 autocast "
                             f"with a gradient scaler) or 'float32'")
        return torch.float16 if capability >= FP16_CAPABILITY else None
    if precision == "bfloat16":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_bfloat16() else None


def needs_grad_scaler(device: torch.device, dtype: torch.dtype | None) -> bool:
    """float16 gradients underflow without loss scaling; bfloat16 and float32 need none."""
    return device.type == "cuda" and dtype == torch.float16


def configure_backends(device: torch.device, precision: str) -> None:
    """Process-wide CUDA settings for training: cuDNN picks the fastest algorithms for the fixed
    patch shapes (``benchmark``), and ``precision: float32`` turns TF32 off (cuDNN allows it by
    default on Ampere and newer, which is not float32). No effect on CPU."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.benchmark = True
    if precision == "float32":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False


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
