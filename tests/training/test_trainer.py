import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from dnorm.losses import generator_adversarial_loss, weighted_dice_loss
from dnorm.training.experiment import Experiment
from training_fixtures import RESUME_SCRIPT, build_trainer, tiny_training, write_study

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    write_study(folder)
    return folder


def trainer_for(study, tmp_path, method="ours", weight=1.5, **training):
    experiment = Experiment("t", method, ("bright", "flat"), adversarial_weight=weight)
    return build_trainer(study / "manifest.csv", tmp_path, experiment, tiny_training(**training), tmp_path / "ck.pt")


def generator_gradient(trainer, loss_of) -> float:
    batch = next(trainer.train_set.batches(4))
    trainer.networks.zero_grad(set_to_none=True)
    generated = trainer.networks["generator"](batch.image)
    loss_of(generated, batch).backward()
    return sum(float(p.grad.abs().sum()) for p in trainer.networks["generator"].parameters() if p.grad is not None)


def test_generator_gets_gradient_from_dice_and_from_the_adversarial_term(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    seg, d = trainer.networks["segmenter"], trainer.networks["discriminator"]
    assert generator_gradient(trainer, lambda g, b: weighted_dice_loss(seg(g), b.labels)) > 0
    assert generator_gradient(trainer, lambda g, b: generator_adversarial_loss(d(g))) > 0


def test_outputs_have_the_expected_shapes(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    batch = next(trainer.train_set.batches(4))
    generated = trainer.networks["generator"](batch.image)
    assert generated.shape == batch.image.shape and 0 <= generated.min() and generated.max() <= 1
    assert trainer.networks["segmenter"](generated).shape == (4, 4, 16, 16, 16)
    assert trainer.networks["discriminator"](generated).shape == (4, 3)


@pytest.mark.parametrize("method, weight", [("preprocessor", 0.0), ("ours", 0.0)])
def test_lambda_zero_trains_no_discriminator(study, tmp_path, method, weight):
    trainer = trainer_for(study, tmp_path, method=method, weight=weight, epochs=1)
    assert "discriminator" not in trainer.networks and trainer.d_optimizer is None
    rows = [row for row in trainer.fit() if row["phase"] == "train"]
    assert "val_d_accuracy" not in rows[0] and rows[0]["train_d_loss"] == 0


def test_discriminator_is_updated_three_times_per_iteration(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    calls = []
    original = trainer.d_optimizer.step
    trainer.d_optimizer.step = lambda *a, **k: calls.append(1) or original(*a, **k)
    from dnorm.training.trainer import EpochStats

    trainer.train_step(next(trainer.train_set.batches(4)), EpochStats())
    assert len(calls) == 3


def test_generator_warm_up_precedes_joint_training(study, tmp_path):
    trainer = trainer_for(study, tmp_path, epochs=1)
    history = trainer.fit()
    assert [row["phase"] for row in history] == ["warmup", "train"]
    assert history[0]["train_reconstruction_loss"] > 0


def test_adversarial_weight_ramps_up_to_lambda(study, tmp_path):
    trainer = trainer_for(study, tmp_path, adversarial_rampup=0.5, epochs=2)
    per_epoch = len(trainer.train_set) // 4  # 32 patches, batch 4: 8 iterations, ramp over 8
    assert trainer.adversarial_weight() == 0.0
    trainer.iteration = per_epoch // 2
    assert trainer.adversarial_weight() == pytest.approx(0.75)
    trainer.iteration = per_epoch * 2
    assert trainer.adversarial_weight() == 1.5


def test_segmentation_only_methods_have_no_generator(study, tmp_path):
    for method in ("unet", "standardization"):
        trainer = trainer_for(study, tmp_path, method=method, weight=0.0)
        assert sorted(trainer.networks.keys()) == ["segmenter"]


def run_resume_script(folder: Path, checkpoint: Path, weights: Path) -> subprocess.Popen:
    code = RESUME_SCRIPT.format(tests=str(HERE), folder=str(folder), checkpoint=str(checkpoint), weights=str(weights))
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_training_killed_with_sigkill_resumes_to_identical_weights(study, tmp_path):
    reference = tmp_path / "reference.pt"
    assert run_resume_script(study, tmp_path / "ck_reference.pt", reference).wait(timeout=300) == 0

    checkpoint, resumed = tmp_path / "ck.pt", tmp_path / "resumed.pt"
    process = run_resume_script(study, checkpoint, resumed)
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    passes_done = torch.load(checkpoint, weights_only=False)["passes_done"]
    assert 1 <= passes_done < 4 and not resumed.exists()

    assert run_resume_script(study, checkpoint, resumed).wait(timeout=300) == 0
    expected, actual = torch.load(reference), torch.load(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
