"""Device and precision policy for GPUs this machine does not have (torch.cuda mocked)."""

from __future__ import annotations

import fcntl
import logging

import pytest
import torch

from dnorm.training import device as policy
from dnorm.training.device import (DeviceUnavailableError, autocast_dtype, claim_gpu, configure_backends,
                                   needs_grad_scaler, scheduler_granted_gpus, select_device)

CUDA = torch.device("cuda", 0)


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def gpus(monkeypatch, tmp_path):
    """Two visible (fake) GPUs; the lock files go to ``tmp_path``; set_device is recorded."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: type("P", (), {"uuid": f"GPU-fake-{i}"})())
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i: ((10 - i) * 2**30, 16 * 2**30))
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(policy, "_claimed", {})
    monkeypatch.setattr(policy.tempfile, "gettempdir", lambda: str(tmp_path))
    return chosen


def capability(monkeypatch, major: int, minor: int, bf16_emulated: bool = True):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (major, minor))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: f"fake sm{major}{minor}")
    # is_bf16_supported() is True on sm70/75 too (emulation): the policy must not rely on it
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_emulated)


# ------------------------------------------------------------------ which device
def test_asking_for_cuda_without_cuda_is_an_error(no_cuda):
    with pytest.raises(DeviceUnavailableError, match="DNORM_DEVICE=cuda asks for CUDA.*CUDA build"):
        select_device(1, environ={"DNORM_DEVICE": "cuda"})


def test_a_slurm_gpu_job_without_cuda_is_an_error(no_cuda):
    with pytest.raises(DeviceUnavailableError, match="scheduler granted this job a GPU"):
        select_device(1, environ={"SLURM_JOB_GPUS": "0"})
    with pytest.raises(DeviceUnavailableError):
        select_device(1, environ={"SLURM_GPUS_ON_NODE": "2"})


def test_a_workstation_without_gpu_runs_on_the_cpu_with_a_warning(no_cuda, caplog):
    with caplog.at_level(logging.WARNING):
        assert select_device(1, environ={"SLURM_GPUS_ON_NODE": "0"}) == torch.device("cpu")
    assert "holds 1 GPU(s) but CUDA is not available" in caplog.text


def test_cpu_on_purpose_and_bad_settings(gpus):
    assert select_device(1, environ={"DNORM_DEVICE": "cpu", "SLURM_JOB_GPUS": "0"}) == torch.device("cpu")
    assert select_device(0, environ={}) == torch.device("cpu")
    for bad in ("gpu", "cuda:x", "cpu:1"):
        with pytest.raises(ValueError, match=repr(bad)):
            select_device(1, environ={"DNORM_DEVICE": bad})
    with pytest.raises(DeviceUnavailableError, match="only 2 CUDA device"):
        select_device(1, environ={"DNORM_DEVICE": "cuda:2"})


def test_scheduler_variables():
    assert not scheduler_granted_gpus({})
    assert not scheduler_granted_gpus({"SLURM_GPUS_ON_NODE": "0", "SLURM_JOB_GPUS": ""})
    assert scheduler_granted_gpus({"SLURM_STEP_GPUS": "0,1"})


def test_two_jobs_on_a_two_gpu_machine_do_not_share_cuda0(gpus, tmp_path):
    # another job (its own open file description: flock conflicts as across processes) holds GPU 0
    other = open(tmp_path / "dnorm-gpu-GPU-fake-0.lock", "a+")
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        assert select_device(1, environ={}) == torch.device("cuda", 1)
        assert gpus == [1]
        assert select_device(1, environ={}) == torch.device("cuda", 1)  # the same process keeps its GPU
    finally:
        other.close()


def test_more_jobs_than_gpus_share_the_freest_one_with_a_warning(gpus, tmp_path, caplog):
    held = []
    for index in range(2):
        handle = open(tmp_path / f"dnorm-gpu-GPU-fake-{index}.lock", "a+")
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append(handle)
    with caplog.at_level(logging.WARNING):
        assert claim_gpu() == 0  # 10 GiB free on GPU 0, 9 GiB on GPU 1
    assert "held by other dnorm jobs" in caplog.text
    for handle in held:
        handle.close()


def test_one_visible_gpu_needs_no_lock(gpus, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert select_device(1, environ={"SLURM_JOB_GPUS": "3"}) == torch.device("cuda", 0)
    assert not list(tmp_path.glob("*.lock"))


# ------------------------------------------------------------------ which precision
@pytest.mark.parametrize("major, minor, expected", [
    (7, 0, torch.float16),   # V100
    (7, 5, torch.float16),   # T4
    (8, 0, torch.bfloat16),  # A100
    (8, 6, torch.bfloat16),  # RTX 30xx
    (9, 0, torch.bfloat16),  # H100
    (6, 1, None),            # Pascal: float32
])
def test_auto_precision_follows_the_compute_capability(monkeypatch, major, minor, expected):
    capability(monkeypatch, major, minor)
    assert autocast_dtype(CUDA, "auto") == expected
    assert autocast_dtype(CUDA, "float32") is None
    assert needs_grad_scaler(CUDA, expected) == (expected == torch.float16)


@pytest.mark.parametrize("major, minor", [(7, 0), (7, 5)])
def test_explicit_bfloat16_below_sm80_is_an_error(monkeypatch, major, minor):
    capability(monkeypatch, major, minor)
    with pytest.raises(ValueError, match=f"has {major}.{minor}"):
        autocast_dtype(CUDA, "bfloat16")


def test_no_grad_scaler_off_cuda():
    assert not needs_grad_scaler(torch.device("cpu"), torch.float16)
    assert not needs_grad_scaler(torch.device("cpu"), torch.bfloat16)


@pytest.fixture
def backends():
    """Start from PyTorch's defaults; restore the process-wide flags after the test."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = False, True, True
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved


def test_float32_turns_tf32_off_and_cudnn_benchmarks(backends):
    configure_backends(CUDA, "float32")
    assert torch.backends.cudnn.benchmark
    assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32


def test_autocast_leaves_tf32_alone_and_cpu_is_untouched(backends):
    configure_backends(torch.device("cpu"), "float32")
    assert not torch.backends.cudnn.benchmark and torch.backends.cudnn.allow_tf32
    configure_backends(CUDA, "auto")
    assert torch.backends.cudnn.benchmark and torch.backends.cudnn.allow_tf32
