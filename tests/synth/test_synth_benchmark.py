import hashlib

import nibabel as nib
import numpy as np
import pytest

from study_helpers import tiny_dataset_config
from dnorm.manifest import read_manifest
from dnorm.synth.benchmark import synthesize_dataset, tissue_labels


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


@pytest.fixture(scope="module")
def iseg(tiny_config, tmp_path_factory):
    out = tmp_path_factory.mktemp("iseg")
    manifest = synthesize_dataset("iseg", tiny_dataset_config(tiny_config, "iseg"), tiny_config["synth"],
                                  tiny_config["seed"], out)
    return read_manifest(manifest)


def test_manifest_lists_every_subject_with_both_modalities(iseg):
    assert list(iseg.subject) == ["iseg_001", "iseg_002"]
    assert set(iseg.dataset) == {"iseg"} and set(iseg.site) == {"iseg"}
    assert all(iseg.t2) and set(iseg.split) == {""}
    assert set(iseg.spacing) == {"3.000x3.000x3.000"}


def test_labels_are_the_four_classes_on_the_image_grid(iseg):
    for _, row in iseg.iterrows():
        label = nib.load(row.label)
        values = np.unique(np.asarray(label.dataobj))
        assert values.tolist() == [0, 1, 2, 3]
        for column in ("t1", "t2"):
            image = nib.load(row[column])
            assert image.shape == label.shape
            np.testing.assert_allclose(image.affine, label.affine)
            np.testing.assert_allclose(image.header.get_zooms(), (3.0, 3.0, 3.0))


def test_csf_is_a_sizeable_class(iseg):
    labels = np.asarray(nib.load(iseg.label[0]).dataobj)
    brain = (labels > 0).sum()
    assert 0.05 < (labels == 1).sum() / brain < 0.35


def test_same_seed_gives_byte_identical_files(tiny_config, tmp_path):
    dataset = tiny_dataset_config(tiny_config, "mrbrains", subjects=1)
    first = read_manifest(synthesize_dataset("mrbrains", dataset, tiny_config["synth"], 5, tmp_path / "a"))
    second = read_manifest(synthesize_dataset("mrbrains", dataset, tiny_config["synth"], 5, tmp_path / "b"))
    other = read_manifest(synthesize_dataset("mrbrains", dataset, tiny_config["synth"], 6, tmp_path / "c"))
    for column in ("t1", "t2", "label"):
        assert digest(first[column][0]) == digest(second[column][0])
        assert digest(first[column][0]) != digest(other[column][0])


def test_anisotropic_site_grid_is_kept(tiny_config, tmp_path):
    dataset = tiny_dataset_config(tiny_config, "mrbrains", subjects=1)
    table = read_manifest(synthesize_dataset("mrbrains", dataset, tiny_config["synth"], 1, tmp_path))
    np.testing.assert_allclose(nib.load(table.t1[0]).header.get_zooms(), (2.874, 2.874, 6.0), atol=1e-4)


def test_sites_are_assigned_round_robin(tiny_config, tmp_path):
    dataset = tiny_dataset_config(tiny_config, "abide", subjects=3)
    table = read_manifest(synthesize_dataset("abide", dataset, tiny_config["synth"], 1, tmp_path))
    assert table.site.tolist() == [s["name"] for s in dataset["sites"][:3]]
    assert table.t2.tolist() == ["", "", ""]


def test_tissue_labels_take_the_argmax_and_merge_scalp_into_background():
    tissues = np.zeros((5, 2, 1, 1), dtype=np.float32)
    tissues[:, 0, 0, 0] = [0.1, 0.2, 0.3, 0.0, 0.4]  # air + scalp = 0.5 beats GM 0.3
    tissues[:, 1, 0, 0] = [0.0, 0.1, 0.2, 0.7, 0.0]
    labels = tissue_labels(tissues, np.random.default_rng(0), label_noise=0.0, spacing=(1, 1, 1))
    assert labels[:, 0, 0].tolist() == [0, 3]


def test_missing_modality_in_a_site_profile_is_reported(tiny_config, tmp_path):
    dataset = tiny_dataset_config(tiny_config, "iseg", subjects=1)
    del dataset["sites"][0]["t2"]
    with pytest.raises(ValueError, match="no intensity means for 't2'"):
        synthesize_dataset("iseg", dataset, tiny_config["synth"], 1, tmp_path)
    assert not (tmp_path / "manifest.csv").exists()


def test_subjects_drawn_in_parallel_processes_give_the_same_files(tiny_config, tmp_path):
    dataset = tiny_dataset_config(tiny_config, "abide", subjects=3)
    alone = read_manifest(synthesize_dataset("abide", dataset, tiny_config["synth"], 5, tmp_path / "one"))
    parallel = read_manifest(synthesize_dataset("abide", dataset, tiny_config["synth"], 5, tmp_path / "two",
                                                workers=2))
    assert list(parallel.subject) == list(alone.subject) and list(parallel.site) == list(alone.site)
    for column in ("t1", "label"):
        assert [digest(p) for p in parallel[column]] == [digest(p) for p in alone[column]]
