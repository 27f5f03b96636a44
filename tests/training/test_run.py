"""train_experiment: model, card and checkpoint keyed on the data, settings and code."""

import json
import logging

import nibabel as nib
import numpy as np
import pytest
import torch

from dnorm.manifest import read_manifest
from dnorm.training.experiment import Experiment
from dnorm.training.patches import write_patch_table
from dnorm.training.provenance import code_digest, file_digest
from dnorm.training.run import train_experiment
from training_fixtures import tiny_training, write_study

EXPERIMENT = Experiment("run", "ours", ("bright", "flat"), adversarial_weight=1.5)


@pytest.fixture
def study(tmp_path):
    manifest = write_study(tmp_path)
    training = tiny_training(epochs=2)
    tables = []
    for dataset in EXPERIMENT.datasets:
        tables.append(str(tmp_path / f"patches_{dataset}.csv"))
        write_patch_table(read_manifest(manifest), dataset, {"train": 16, "val": 8}, 3, tables[-1])
    return tmp_path, manifest, training, tables


def train(study, out: str, **kwargs) -> dict:
    folder, manifest, training, tables = study
    paths = {name: str(folder / out / f"{name}") for name in ("model.pt", "history.csv", "card.json")}
    return train_experiment(EXPERIMENT, training, 3, str(manifest), tables, paths["model.pt"], paths["history.csv"],
                            paths["card.json"], str(folder / "last.pt"), gpus=0, **kwargs)


def weights(study, out: str) -> dict:
    return torch.load(study[0] / out / "model.pt", weights_only=False)["networks"]


def test_a_finished_run_leaves_no_checkpoint_and_records_its_inputs(study):
    card = train(study, "a", preprocess={"spacing": 2.0})
    assert not (study[0] / "last.pt").exists()
    inputs = card["provenance"]["inputs"]
    t1 = read_manifest(study[1]).t1.iloc[0]
    assert inputs[t1] == file_digest(t1) and inputs[str(study[1])] == file_digest(study[1])
    assert card["provenance"]["code"] == code_digest()
    assert json.loads((study[0] / "a" / "card.json").read_text())["provenance"] == card["provenance"]


def test_changed_data_under_the_same_paths_trains_afresh(study, caplog):
    """An interrupted run's checkpoint is not resumed once an image it read has changed: the log
    says so, the weights differ and so do the card's digests."""
    folder = study[0]
    first = train(study, "a")
    # A checkpoint as a run on the old data interrupted mid-way would leave it.
    torch.save({"fingerprint": first["provenance"]["fingerprint"]}, folder / "last.pt")

    t1 = read_manifest(study[1]).t1.iloc[0]
    image = nib.load(t1)
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj) * 0.9, image.affine), t1)
    with caplog.at_level(logging.WARNING):
        second = train(study, "c")
    assert "written for other inputs, settings or code" in caplog.text
    assert second["provenance"]["inputs"][t1] != first["provenance"]["inputs"][t1]
    assert second["provenance"]["fingerprint"] != first["provenance"]["fingerprint"]
    changed = [k for k, v in weights(study, "a").items() if v.is_floating_point() and not torch.equal(v, weights(study, "c")[k])]
    assert changed


def test_same_inputs_give_the_same_fingerprint_and_weights(study):
    first, second = train(study, "a"), train(study, "b")
    assert first["provenance"] == second["provenance"]
    assert all(torch.equal(v, weights(study, "b")[k]) for k, v in weights(study, "a").items())


def test_the_card_states_the_models_scope(study):
    """A user reads from the card at what scale and on which sites the model was trained."""
    card = train(study, "scope", preprocess={"spacing": 2.0})
    scope = card["scope"]
    manifest = read_manifest(study[1])
    assert scope["voxel_size_mm"] == 2.0 and scope["network_width"] == study[2]["segmenter"]["width"]
    assert scope["sites"] == {d: sorted(manifest[manifest.dataset == d].site.astype(str).unique())
                              for d in EXPERIMENT.datasets}
    assert scope["training_patches"] > 0 and "synthetic" in scope["note"]
