"""A shared warm-up gives exactly what each experiment's own warm-up gives."""

from __future__ import annotations

import pytest
import torch

from dnorm.training.experiment import Experiment
from dnorm.training.warmup import warmup_experiment, warmup_key
from training_fixtures import build_trainer, tiny_training, write_study

DATASETS = ("bright", "flat")


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-identity is asked of runs on the same number of threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    write_study(folder)
    return folder


def ours(weight=1.5, **options) -> Experiment:
    return Experiment("ours", "ours", DATASETS, adversarial_weight=weight, **options)


def test_methods_lambdas_and_augmentation_share_a_warm_up_but_not_data_or_modalities():
    training = tiny_training(warmup_discriminator=False)
    preprocessor = Experiment("pre", "preprocessor", DATASETS)
    key = warmup_key(preprocessor, training)
    assert key == "bright+flat_t1"
    assert warmup_key(ours(), training) == warmup_key(ours(0.1), training) == key
    assert warmup_key(ours(bias_augmentation=True), training) == key  # the warm-up reads un-augmented patches
    assert warmup_key(ours(modalities=("t1", "t2")), training) == "bright+flat_t1+t2"
    assert warmup_key(Experiment("p", "preprocessor", ("bright",)), training) == "bright_t1"


def test_no_shared_warm_up_without_a_generator_without_epochs_or_with_d_warming_up():
    assert warmup_key(Experiment("u", "unet", DATASETS), tiny_training(warmup_discriminator=False)) is None
    assert warmup_key(ours(), tiny_training(warmup_discriminator=False, generator_warmup_epochs=0)) is None
    assert warmup_key(ours(), tiny_training(warmup_discriminator=True)) is None
    assert warmup_key(Experiment("p", "preprocessor", DATASETS), tiny_training(warmup_discriminator=True)) is not None
    with pytest.raises(ValueError, match="no shareable warm-up"):
        warmup_experiment(Experiment("u", "unet", DATASETS), tiny_training())


def final_state(trainer) -> dict:
    trainer.fit()
    return {k: v.clone() for k, v in trainer.networks.state_dict().items()}


@pytest.mark.parametrize("experiment", [ours(), ours(bias_augmentation=True), Experiment("pre", "preprocessor", DATASETS)],
                         ids=["ours", "ours-bias", "pre"])
def test_training_from_the_shared_warm_up_is_bit_identical_to_warming_up_alone(study, tmp_path, experiment):
    training = tiny_training(warmup_discriminator=False, generator_warmup_epochs=2, warmup_target_rmse=1e-9,
                             epochs=1)
    alone = final_state(build_trainer(study / "manifest.csv", tmp_path / "a", experiment, training, tmp_path / "a.pt"))

    shared = build_trainer(study / "manifest.csv", tmp_path / "w", warmup_experiment(experiment, training), training,
                           tmp_path / "w.pt")
    history = shared.fit(warmup_only=True)
    assert [row["phase"] for row in history] == ["warmup", "warmup"]
    torch.save(shared.warmup_state(), tmp_path / "warmup.pt")

    started = build_trainer(study / "manifest.csv", tmp_path / "s", experiment, training, tmp_path / "s.pt")
    started.warmup_path = tmp_path / "warmup.pt"
    from_warmup = final_state(started)
    assert [row["phase"] for row in started.history] == ["warmup", "warmup", "train"]
    assert from_warmup.keys() == alone.keys()
    different = [k for k in alone if not torch.equal(alone[k], from_warmup[k])]
    assert different == []


def test_a_warm_up_for_other_data_is_refused(study, tmp_path):
    training = tiny_training(warmup_discriminator=False, epochs=1)
    one_dataset = Experiment("pre", "preprocessor", ("bright",))
    warm = build_trainer(study / "manifest.csv", tmp_path / "w", warmup_experiment(one_dataset, training), training,
                         tmp_path / "w.pt")
    warm.fit(warmup_only=True)
    torch.save(warm.warmup_state(), tmp_path / "warmup.pt")
    trainer = build_trainer(study / "manifest.csv", tmp_path / "t", ours(), training, tmp_path / "t.pt")
    trainer.warmup_path = tmp_path / "warmup.pt"
    with pytest.raises(ValueError, match=r"warmup\.pt: a warm-up for .*bright.*needs one for"):
        trainer.fit()


def test_warm_up_reads_no_discriminator_batches_unless_d_warms_up(study, tmp_path):
    for warms, expected in ((False, 0), (True, 3)):
        trainer = build_trainer(study / "manifest.csv", tmp_path / str(warms), ours(),
                                tiny_training(warmup_discriminator=warms), tmp_path / f"{warms}.pt")
        assert trainer.warmup_discriminator_steps == expected


def test_an_unreadable_or_misshapen_warm_up_file_is_named(study, tmp_path):
    training = tiny_training(warmup_discriminator=False, epochs=1)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a torch file")
    trainer = build_trainer(study / "manifest.csv", tmp_path / "t", ours(), training, tmp_path / "t.pt")
    trainer.warmup_path = broken
    with pytest.raises(ValueError, match=r"broken\.pt: cannot read the shared warm-up"):
        trainer.fit()
    warm = build_trainer(study / "manifest.csv", tmp_path / "w", warmup_experiment(ours(), training), training,
                         tmp_path / "w.pt")
    warm.fit(warmup_only=True)
    torch.save(warm.warmup_state(), tmp_path / "warmup.pt")
    wider = tiny_training(warmup_discriminator=False, epochs=1,
                          generator={**training["generator"], "width": 4})
    trainer = build_trainer(study / "manifest.csv", tmp_path / "x", ours(), wider, tmp_path / "x.pt")
    trainer.warmup_path = tmp_path / "warmup.pt"
    with pytest.raises(ValueError, match=r"warmup\.pt: does not fit"):
        trainer.fit()


def test_warm_up_state_is_only_taken_between_warm_up_and_joint_training(study, tmp_path):
    trainer = build_trainer(study / "manifest.csv", tmp_path, ours(), tiny_training(warmup_discriminator=False),
                            tmp_path / "t.pt")
    with pytest.raises(RuntimeError, match="finished warm-up"):
        trainer.warmup_state()
