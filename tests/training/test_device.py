import logging

import torch

from dnorm.training.device import select_device


def test_a_job_granted_a_gpu_without_cuda_says_so(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert select_device(1) == torch.device("cpu")
    assert "holds 1 GPU(s) but CUDA is not available" in caplog.text


def test_a_cpu_job_is_silent(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.WARNING):
        assert select_device(0) == torch.device("cpu")
    assert not caplog.text
