import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnorm.manifest import read_manifest
from dnorm.training.patches import Volume, brain_statistics, patch_corner, sample_centres, write_patch_table
from training_fixtures import write_study


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return read_manifest(write_study(tmp_path_factory.mktemp("study")))


def test_centres_are_foreground_voxels_of_the_split(manifest):
    centres = sample_centres(manifest, "bright", "train", 200, seed=1)
    assert len(centres) == 200 and set(centres.subject) == {"bright_0", "bright_1"}
    for _, row in centres.iterrows():
        labels = np.asarray(nib.load(manifest.set_index("subject").label[row.subject]).dataobj)
        assert labels[row.x, row.y, row.z] > 0


def test_centres_depend_only_on_seed_dataset_and_split(manifest, tmp_path):
    first = sample_centres(manifest, "bright", "train", 50, seed=1)
    other_experiment = manifest[manifest.dataset == "bright"]  # e.g. a single-dataset experiment
    pd.testing.assert_frame_equal(first, sample_centres(other_experiment, "bright", "train", 50, seed=1))
    assert not first.equals(sample_centres(manifest, "bright", "train", 50, seed=2))
    write_patch_table(manifest, "bright", {"train": 50, "val": 10}, 1, tmp_path / "p.csv")
    table = pd.read_csv(tmp_path / "p.csv", dtype={"subject": str})
    assert (table.split == "train").sum() == 50 and (table.split == "val").sum() == 10
    pd.testing.assert_frame_equal(table[table.split == "train"].reset_index(drop=True), first, check_dtype=False)


def test_no_subjects_in_a_split_is_an_error(manifest):
    with pytest.raises(ValueError, match="dataset 'bright' has no 'holdout' subjects"):
        sample_centres(manifest, "bright", "holdout", 5, seed=1)


@pytest.mark.parametrize("centre, expected", [((0, 10, 35), (0, 2, 20)), ((18, 18, 18), (10, 10, 10))])
def test_patch_corner_keeps_the_window_inside(centre, expected):
    assert patch_corner(centre, (36, 36, 36), 16) == expected


def test_standardized_patches_are_z_scored_over_the_brain(manifest):
    row = manifest.iloc[0]
    volume = Volume.open(row, ("t1",), standardize=True)
    image = np.asarray(nib.load(row.t1).dataobj)
    mean, std = brain_statistics(image)
    patch, labels = volume.patch((10, 10, 10), 16)
    raw = image[10:26, 10:26, 10:26]
    np.testing.assert_allclose(patch[0][raw > 0], (raw[raw > 0] - mean) / std, rtol=1e-5)
    assert (patch[0][raw == 0] == 0).all() and labels.dtype == np.int64
