"""A training step that never waits for the GPU, checkpoints that move between devices, and a
prefetching loader that draws exactly what an inline one draws. CPU only: host-device syncs are
counted as the calls that would cause one on CUDA (``.item()``, ``int()``, ``.cpu()``, ...)."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from dnorm.training.data import Batch, prefetch
from dnorm.training.experiment import Experiment
from dnorm.training.stats import EpochStats

from training_fixtures import build_trainer, tiny_training, write_study

#: Tensor methods that copy a device tensor's value to the host, hence wait for the device
SYNCING = {"item", "tolist", "__int__", "__float__", "__bool__", "__index__", "cpu", "numpy"}
DNORM = str(Path(__file__).resolve().parents[2] / "dnorm")
LOSSES = str(Path(DNORM) / "losses.py")


class SyncCounter(TorchFunctionMode):
    """Counts syncing calls made from dnorm's own code (the frame that called the method); calls
    inside PyTorch (e.g. Adam's step counter, which lives on the CPU) are not the code's doing."""

    def __init__(self):
        super().__init__()
        self.calls: Counter = Counter()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in SYNCING:
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(DNORM):
                self.calls[(name, Path(caller.f_code.co_filename).name, caller.f_lineno)] += 1
        return func(*args, **(kwargs or {}))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    write_study(folder)
    return folder


def trainer_for(study, tmp_path, **training):
    experiment = Experiment("t", "ours", ("bright", "flat"), adversarial_weight=1.5, bias_augmentation=True)
    return build_trainer(study / "manifest.csv", tmp_path, experiment, tiny_training(**training), tmp_path / "ck.pt")


def counted_steps(trainer, step, iterations: int = 3):
    """Syncs per call site over ``iterations`` steady-state steps (after a first, warm-up one)."""
    draws = (draw for epoch in range(100) for draw in trainer.train_set.draws(4, 3, np.random.default_rng(epoch)))
    stats = EpochStats()
    step(next(draws), stats)
    with SyncCounter() as counter:
        for _ in range(iterations):
            step(next(draws), stats)
    return counter.calls, stats


def test_a_training_step_does_not_sync_outside_the_losses(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    trainer.iteration = 1  # not a gradient-probe iteration; iteration 16 among the counted ones is
    calls, _ = counted_steps(trainer, trainer.train_step, iterations=16)
    assert trainer.iteration == 18
    ours = {site: n for site, n in calls.items() if not site[1] == Path(LOSSES).name}
    assert ours == {}, f"syncs in a training step: {ours}"


def test_warm_up_and_statistics_do_not_sync(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    calls, stats = counted_steps(trainer, trainer.warmup_step)
    assert {s: n for s, n in calls.items() if s[1] != Path(LOSSES).name} == {}
    with SyncCounter() as counter:
        row = stats.summary("train")
    assert sum(counter.calls.values()) <= 16  # once per running sum, at the end of the epoch
    assert row["train_reconstruction_loss"] > 0 and 0 <= row["train_dice_mean"] <= 1


def test_a_training_step_does_not_sync_at_all(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    trainer.iteration = 1
    calls, _ = counted_steps(trainer, trainer.train_step)
    assert dict(calls) == {}


def test_statistics_match_python_arithmetic():
    """Sums kept as float64/int64 tensors give what float()/int() sums gave."""
    rng = np.random.default_rng(0)
    stats, expected = EpochStats(), 0.0
    for _ in range(7):
        value = torch.tensor(rng.random(), dtype=torch.float32)
        stats.add_losses(loss=value)
        expected += float(value)
    logits, labels = torch.randn(2, 4, 3, 3, 3), torch.randint(0, 4, (2, 3, 3, 3))
    stats.add_segmentation(logits, labels)
    stats.add_gradient_norms(torch.tensor(2.0, dtype=torch.float64), 1.0)
    row = stats.summary("x")
    assert row["x_loss"] == expected / 7
    prediction = logits.argmax(1)
    for c, name in ((1, "csf"), (2, "gm"), (3, "wm")):
        inter = int(((prediction == c) & (labels == c)).sum())
        total = int((prediction == c).sum()) + int((labels == c).sum())
        assert row[f"x_dice_{name}"] == 2 * inter / max(total, 1)
    assert row["x_grad_ratio"] == 0.5


# ------------------------------------------------------------------ checkpoints across devices
@pytest.mark.filterwarnings("ignore:.*meta parameter")
def test_resume_reads_onto_the_cpu_and_moves_adam_state_to_the_parameters(study, tmp_path, monkeypatch):
    """Saved on the CPU, resumed by a trainer whose networks live on another device (``meta``
    here: this machine has no GPU). The weights and Adam's moments go to the networks' device,
    Adam's step counters stay on the CPU (on a GPU they would sync every step)."""
    trainer = trainer_for(study, tmp_path, epochs=1, generator_warmup_epochs=0)
    trainer.fingerprint = "f" * 64
    trainer.fit()
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k.get("map_location")) or real_load(*a, **k))
    import dnorm.training.trainer as trainer_module

    other = trainer_module.Trainer(trainer.experiment, trainer.training, trainer.seed, torch.device("meta"),
                                   trainer.train_set, trainer.val_set, trainer.checkpoint_path,
                                   fingerprint=trainer.fingerprint)
    other._resume()
    assert loads == ["cpu"]
    assert other.history == trainer.history and other.iteration == trainer.iteration
    for optimizer in (other.task_optimizer, other.d_optimizer):
        assert optimizer.state
        for parameter, state in optimizer.state.items():
            assert state["step"].device.type == "cpu"
            assert state["exp_avg"].device == parameter.device == torch.device("meta")
    expected = trainer.task_optimizer.state_dict()["state"]
    resumed = other.task_optimizer.state_dict()["state"]
    assert [float(s["step"]) for s in resumed.values()] == [float(s["step"]) for s in expected.values()]


def test_resume_on_the_cpu_restores_adam_exactly(study, tmp_path):
    trainer = trainer_for(study, tmp_path, epochs=1, generator_warmup_epochs=0)
    trainer.fingerprint = "f" * 64
    trainer.fit()
    other = trainer_for(study, tmp_path, epochs=1, generator_warmup_epochs=0)
    other.fingerprint = "f" * 64
    other._resume()
    for saved, loaded in zip(trainer.task_optimizer.state.values(), other.task_optimizer.state.values()):
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(saved[key], loaded[key]) and saved[key].device == loaded[key].device
    assert "scalers" not in torch.load(trainer.checkpoint_path, weights_only=False)  # float32: no scaler


# ------------------------------------------------------------------ prefetching
def test_prefetched_draws_are_the_inline_draws(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    inline = list(trainer.train_set.draws(4, 3, np.random.default_rng(5)))
    fetched = list(prefetch(trainer.train_set.draws(4, 3, np.random.default_rng(5)), depth=2))
    assert len(inline) == len(fetched)
    for a, b in zip(inline, fetched):
        for x, y in zip((a.task, *a.discriminator), (b.task, *b.discriminator)):
            for name in ("image", "labels", "domain", "clean", "index"):
                assert torch.equal(getattr(x, name), getattr(y, name)), name


def test_prefetch_hands_on_errors_and_stops_when_left_early():
    def broken():
        yield 1
        raise RuntimeError("disk gone")

    with pytest.raises(RuntimeError, match="disk gone"):
        list(prefetch(broken()))
    produced = []

    def endless():
        for i in range(10**6):
            produced.append(i)
            yield i

    for item in prefetch(endless(), depth=1):
        if item == 3:
            break
    assert len(produced) < 10  # the thread stopped
    with pytest.raises(ValueError, match="depth"):
        list(prefetch([], depth=0))


def test_pinning_keeps_a_batch_whose_clean_is_its_image():
    batch = Batch(image=torch.ones(1, 1, 2, 2, 2), labels=torch.zeros(1, 2, 2, 2, dtype=torch.int64),
                  domain=torch.zeros(1, dtype=torch.int64))
    if not torch.cuda.is_available():
        pytest.skip("pinned memory needs CUDA")
    from dnorm.training.data import pin_memory

    pinned = pin_memory(batch)
    assert pinned.image.is_pinned() and pinned.clean is pinned.image
