"""Which seeds, test datasets and test subjects evaluate each experiment (dnorm.evaluation.plan)."""

from __future__ import annotations

import pandas as pd
import pytest

from dnorm.evaluation.plan import test_datasets as datasets_of
from dnorm.evaluation.plan import test_subjects as subjects_of
from dnorm.evaluation.plan import training_seeds
from evaluation_builders import paper_config, without


def test_training_seeds_default_to_the_config_seed():
    config = paper_config()
    assert training_seeds(config) == [config["seed"]]
    assert training_seeds({**config, "training_seeds": None}) == [config["seed"]]


def test_training_seeds_keep_the_configured_order():
    assert training_seeds(paper_config(training_seeds=[7, 1, 2])) == [7, 1, 2]


def test_test_datasets_default_to_the_training_datasets():
    config = paper_config()
    assert datasets_of("ours_dual", config) == ["iseg", "mrbrains"]
    assert datasets_of("preprocessor_multi", config) == ["iseg", "mrbrains", "abide"]


def test_test_datasets_entry_overrides_for_cross_dataset_unets():
    config = paper_config()
    assert datasets_of("unet_iseg", config) == ["iseg", "mrbrains"]
    assert datasets_of("unet_mrbrains", config) == ["mrbrains", "iseg"]


def test_unknown_test_dataset_is_rejected_naming_the_experiment():
    config = paper_config(without(extra={"unet_x": {"method": "unet", "datasets": ["iseg"],
                                                     "test_datasets": ["iseg", "nowhere"]}}))
    with pytest.raises(ValueError, match=r"experiments\.unet_x\.test_datasets.*nowhere"):
        datasets_of("unet_x", config)


def test_two_channel_experiment_cannot_be_tested_on_a_one_modality_dataset():
    config = paper_config(without(extra={"t1t2_abide": {"method": "ours", "datasets": ["iseg", "mrbrains"],
                                                         "modalities": ["t1", "t2"],
                                                         "test_datasets": ["iseg", "abide"]}}))
    with pytest.raises(ValueError, match=r"t1t2_abide.*abide"):
        datasets_of("t1t2_abide", config)


def test_unknown_experiment_is_rejected():
    with pytest.raises(ValueError, match="no_such"):
        datasets_of("no_such", paper_config())


MANIFEST = pd.DataFrame({
    "dataset": ["iseg", "mrbrains", "iseg", "abide", "iseg", "mrbrains"],
    "subject": ["i1", "m1", "i2", "a1", "i3", "m2"],
    "split": ["train", "test", "test", "test", "test", "val"],
})


def test_test_subjects_are_the_test_split_of_the_datasets_in_manifest_order():
    assert subjects_of(MANIFEST, ["iseg", "mrbrains"]) == [("mrbrains", "m1"), ("iseg", "i2"), ("iseg", "i3")]
    assert subjects_of(MANIFEST, ["abide"]) == [("abide", "a1")]


def test_dataset_without_test_subject_is_an_error():
    manifest = MANIFEST[MANIFEST.dataset != "abide"]
    with pytest.raises(ValueError, match="abide"):
        subjects_of(manifest, ["iseg", "abide"])
