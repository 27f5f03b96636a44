import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from dnorm.losses import GENERATOR_LOSSES, generator_adversarial_loss, weighted_dice_loss
from dnorm.training.experiment import Experiment
from dnorm.training.stats import EpochStats
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


def test_generator_leaves_the_background_exactly_zero(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    batch = next(trainer.train_set.batches(8))
    generated = trainer.networks["generator"](batch.image)
    background = batch.image == 0
    assert background.any() and (generated[background] == 0).all()
    assert (generated[~background] > 0).all()


@pytest.mark.parametrize("method, weight", [("preprocessor", 0.0), ("ours", 0.0)])
def test_lambda_zero_trains_no_discriminator(study, tmp_path, method, weight):
    trainer = trainer_for(study, tmp_path, method=method, weight=weight, epochs=1)
    assert "discriminator" not in trainer.networks and trainer.d_optimizer is None
    rows = [row for row in trainer.fit() if row["phase"] == "train"]
    assert not any(key.startswith(("val_d_", "train_d_")) for key in rows[0])


def spy_on_steps(trainer):
    """Record the patch indices each D update and each S/G update receives."""
    seen = {"d": [], "task": []}
    update_d, update_task = trainer.update_discriminator, trainer.update_segmenter_and_generator
    trainer.update_discriminator = lambda batches, stats: (
        seen["d"].append([b.index.tolist() for b in batches]), update_d(batches, stats))
    trainer.update_segmenter_and_generator = lambda batch, stats: (
        seen["task"].append(batch.index.tolist()), update_task(batch, stats))
    return seen


def test_each_step_of_an_iteration_gets_its_own_batch(study, tmp_path):
    trainer = trainer_for(study, tmp_path)  # 32 patches, batch 4, 3 D steps: 16 patches per iteration
    seen = spy_on_steps(trainer)
    for draw in trainer.train_set.draws(4, 3, np.random.default_rng(0)):
        trainer.train_step(draw, EpochStats())
    assert len(seen["task"]) == len(seen["d"]) == 8
    for task, d_batches in zip(seen["task"], seen["d"]):
        assert len(d_batches) == 3 and all(len(b) == 4 for b in d_batches)
        assert len(set(task).union(*d_batches)) == 16  # no patch serves two steps
    # The S/G batches still cover every patch once per epoch.
    assert sorted(i for task in seen["task"] for i in task) == list(range(32))


def test_discriminator_is_updated_three_times_per_iteration(study, tmp_path):
    trainer = trainer_for(study, tmp_path)
    calls = []
    original = trainer.d_optimizer.step
    trainer.d_optimizer.step = lambda *a, **k: calls.append(1) or original(*a, **k)
    trainer.train_step(next(trainer.train_set.draws(4, 3, np.random.default_rng(0))), EpochStats())
    assert len(calls) == 3


def test_discriminator_sees_real_patches_without_the_bias_augmentation(study, tmp_path):
    experiment = Experiment("t", "ours", ("bright", "flat"), adversarial_weight=1.5, bias_augmentation=True)
    trainer = build_trainer(study / "manifest.csv", tmp_path, experiment, tiny_training(bias_probability=1.0),
                            tmp_path / "ck.pt")
    inputs = []
    trainer.networks["discriminator"].register_forward_hook(lambda module, args, out: inputs.append(args[0]))
    draw = next(trainer.train_set.draws(4, 3, np.random.default_rng(0)))
    trainer.update_discriminator(draw.discriminator, EpochStats())
    first = draw.discriminator[0]
    assert not torch.equal(first.image, first.clean)
    assert torch.equal(inputs[0][:4], first.clean)


def test_learning_rate_drops_after_half_and_three_quarters_of_the_iterations(study, tmp_path):
    trainer = trainer_for(study, tmp_path, epochs=3)  # 8 iterations per epoch: 24 in all
    assert trainer.total_iterations == 24
    assert trainer.task_learning_rate(0) == trainer.task_learning_rate(11) == pytest.approx(1e-3)
    assert trainer.task_learning_rate(12) == trainer.task_learning_rate(17) == pytest.approx(1e-4)
    assert trainer.task_learning_rate(18) == trainer.task_learning_rate(23) == pytest.approx(1e-5)


def test_optimizer_uses_the_scheduled_learning_rate(study, tmp_path):
    trainer = trainer_for(study, tmp_path, epochs=1)
    trainer.iteration = 5  # past the first milestone (iteration 4 of 8), before the second (6)
    trainer.train_step(next(trainer.train_set.draws(4, 3, np.random.default_rng(0))), EpochStats())
    assert trainer.task_optimizer.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_adversarial_weight_ramps_up_to_lambda(study, tmp_path):
    trainer = trainer_for(study, tmp_path, adversarial_rampup=0.5, epochs=2)  # 16 iterations, ramp over 8
    assert trainer.adversarial_weight() == 0.0
    trainer.iteration = 4
    assert trainer.adversarial_weight() == pytest.approx(0.75)
    trainer.iteration = 16
    assert trainer.adversarial_weight() == 1.5


def changed(before: dict, module: torch.nn.Module) -> bool:
    """Whether any parameter (not a BatchNorm statistic, which a forward pass alone moves) changed."""
    return any(not torch.equal(before[k], v) for k, v in module.named_parameters())


def snapshot(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def test_one_iteration_updates_all_three_networks(study, tmp_path):
    trainer = trainer_for(study, tmp_path, adversarial_rampup=0.0)
    before = {name: snapshot(net) for name, net in trainer.networks.items()}
    trainer.train_step(next(trainer.train_set.draws(4, 3, np.random.default_rng(0))), EpochStats())
    assert all(changed(before[name], net) for name, net in trainer.networks.items())


def test_the_adversarial_term_moves_the_generator(study, tmp_path):
    """Same iteration with λ = 1.5 and with the adversarial term switched off (λ ramp at 0):
    G ends in different places, S and D in the same."""
    results = {}
    for rampup in (0.0, 1.0):  # 1.0: λ(iteration 0) = 0
        trainer = trainer_for(study, tmp_path, adversarial_rampup=rampup)
        trainer.train_step(next(trainer.train_set.draws(4, 3, np.random.default_rng(0))), EpochStats())
        results[rampup] = {name: snapshot(net) for name, net in trainer.networks.items()}
    assert not all(torch.equal(results[0.0]["generator"][k], results[1.0]["generator"][k]) for k in results[0.0]["generator"])
    for name in ("segmenter", "discriminator"):
        assert all(torch.equal(results[0.0][name][k], results[1.0][name][k]) for k in results[0.0][name])


@pytest.mark.parametrize("form", GENERATOR_LOSSES)
def test_generator_steps_make_its_output_look_less_generated_to_a_fixed_d(study, tmp_path, form):
    """Descending G's term, in each form, lowers D's P("generated") on G(x); a flipped sign raises it."""
    optimizer = {"lr": 0.01, "lr_discriminator": 0.01, "weight_decay": 0.0, "milestones": [1.0], "gamma": 0.1,
                 "plateau_patience": 7}
    trainer = trainer_for(study, tmp_path, adversarial_rampup=0.0, weight=50.0, optimizer=optimizer,
                          generator_loss=form)
    d, g = trainer.networks["discriminator"], trainer.networks["generator"]
    for draw in trainer.train_set.draws(4, 3, np.random.default_rng(1)):  # D learns to tell G(x) apart
        trainer.update_discriminator(draw.discriminator, EpochStats())
    batch = next(trainer.train_set.draws(8, 3, np.random.default_rng(0))).task

    def p_generated() -> float:
        with torch.no_grad():
            g.eval(), d.eval()
            p = torch.softmax(d(g(batch.image)), dim=1)[:, d.generated_class].mean()
            g.train(), d.train()
        return float(p)

    before = p_generated()
    for _ in range(5):
        trainer.update_segmenter_and_generator(batch, EpochStats())
    assert p_generated() < before - 0.01


def test_discriminator_step_is_not_disturbed_by_the_generator_step(study, tmp_path):
    """G's step reads D as a fixed critic: D's weights and BatchNorm statistics stay as they were."""
    trainer = trainer_for(study, tmp_path, adversarial_rampup=0.0)
    d = trainer.networks["discriminator"]
    before, statistics = snapshot(d), {k: v.clone() for k, v in d.named_buffers()}
    draw = next(trainer.train_set.draws(4, 3, np.random.default_rng(0)))
    trainer.update_segmenter_and_generator(draw.task, EpochStats())
    assert not changed(before, d) and d.training and all(p.requires_grad for p in d.parameters())
    assert statistics and all(torch.equal(v, statistics[k]) for k, v in d.named_buffers())


def test_history_carries_the_diagnostics(study, tmp_path):
    trainer = trainer_for(study, tmp_path, epochs=1)
    row = trainer.fit()[-1]
    for key in ("train_grad_g_seg", "train_grad_g_adv", "train_grad_ratio", "train_d_accuracy",
                "train_d_accuracy_real", "train_d_accuracy_generated", "train_d_p_generated_real",
                "train_d_p_generated_generated", "val_d_accuracy", "val_reconstruction_rmse", "lr", "lambda"):
        assert np.isfinite(row[key]), key
    assert row["train_grad_g_seg"] > 0


def test_warm_up_runs_until_the_reconstruction_target(study, tmp_path):
    trainer = trainer_for(study, tmp_path, epochs=1, generator_warmup_epochs=3, warmup_target_rmse=1e-9)
    phases = [row["phase"] for row in trainer.fit()]
    assert phases == ["warmup"] * 3 + ["train"]
    trainer = trainer_for(study, tmp_path / "b", epochs=1, generator_warmup_epochs=3, warmup_target_rmse=1.0)
    history = trainer.fit()
    assert [row["phase"] for row in history] == ["warmup", "train"]
    assert 0 < history[0]["train_reconstruction_rmse"] <= 1.0


@pytest.mark.parametrize("segmenter, discriminator", [(True, True), (False, False)])
def test_warm_up_trains_segmenter_and_discriminator_when_asked(study, tmp_path, segmenter, discriminator):
    trainer = trainer_for(study, tmp_path, warmup_segmenter=segmenter, warmup_discriminator=discriminator)
    before = {name: snapshot(net) for name, net in trainer.networks.items()}
    trainer.warmup_step(next(trainer.train_set.draws(4, 3, np.random.default_rng(0))), EpochStats())
    assert changed(before["generator"], trainer.networks["generator"])
    assert changed(before["segmenter"], trainer.networks["segmenter"]) == segmenter
    assert changed(before["discriminator"], trainer.networks["discriminator"]) == discriminator


@pytest.mark.parametrize("method, weight, floor", [("unet", 0.0, 0.5), ("preprocessor", 0.0, 0.5), ("ours", 1.5, 0.45)])
def test_training_learns_the_separable_fixture(study, tmp_path, method, weight, floor):
    """Chance is about 0.1 here: a trainer that skips an optimizer step, or whose loss has a
    flipped sign, stays far below ``floor`` after these 64 iterations (measured: 0.57-0.70)."""
    net = {"width": 4, "depth": 2, "max_width": 8, "upsampling": "trilinear", "activation": "leaky_relu"}
    optimizer = {"lr": 0.01, "lr_discriminator": 0.001, "weight_decay": 0.0, "milestones": [1.0], "gamma": 0.1,
                 "plateau_patience": 7}
    trainer = trainer_for(study, tmp_path, method=method, weight=weight, epochs=4, train_patches_per_dataset=32,
                          segmenter=net, generator=net, optimizer=optimizer)
    history = trainer.fit()
    assert history[-1]["val_dice_mean"] > floor


def test_segmentation_only_methods_have_no_generator(study, tmp_path):
    for method in ("unet", "standardization"):
        trainer = trainer_for(study, tmp_path, method=method, weight=0.0)
        assert sorted(trainer.networks.keys()) == ["segmenter"]


def test_a_checkpoint_with_another_fingerprint_is_not_resumed(study, tmp_path, caplog):
    trainer = trainer_for(study, tmp_path, epochs=1)
    trainer.fingerprint = "a" * 64
    trainer.fit()
    other = trainer_for(study, tmp_path, epochs=1)
    other.fingerprint = "b" * 64
    with caplog.at_level("WARNING"):
        history = other.fit()
    assert "starting afresh" in caplog.text and len(history) == 2
    same = trainer_for(study, tmp_path, epochs=1)
    same.fingerprint = "b" * 64
    assert same.fit() == history  # resumed: nothing left to train
    same.discard_checkpoint()
    assert not (tmp_path / "ck.pt").exists()


def run_resume_script(folder: Path, checkpoint: Path, weights: Path, precision: str, channels_last: bool) -> subprocess.Popen:
    code = RESUME_SCRIPT.format(tests=str(HERE), folder=str(folder), checkpoint=str(checkpoint), weights=str(weights),
                                precision=precision, channels_last=channels_last)
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("precision, channels_last", [("float32", False), ("auto", "auto")])
def test_training_killed_with_sigkill_resumes_to_identical_weights(study, tmp_path, precision, channels_last):
    """Float32, and the default path (bfloat16 autocast where the CPU has it, channels-last 3D)."""
    run = lambda checkpoint, weights: run_resume_script(study, checkpoint, weights, precision, channels_last)  # noqa: E731
    reference = tmp_path / "reference.pt"
    assert run(tmp_path / "ck_reference.pt", reference).wait(timeout=300) == 0

    checkpoint, resumed = tmp_path / "ck.pt", tmp_path / "resumed.pt"
    process = run(checkpoint, resumed)
    deadline = time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    passes_done = len(torch.load(checkpoint, weights_only=False)["history"])
    assert 1 <= passes_done < 5 and not resumed.exists()

    assert run(checkpoint, resumed).wait(timeout=300) == 0
    expected, actual = torch.load(reference), torch.load(resumed)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), name
