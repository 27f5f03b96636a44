"""MRBrainS13 adapter: T1.nii (not T1_1mm) + FLAIR, anisotropic grid kept, errors."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest

from dnorm.ingest import ingest
from dnorm.manifest import read_manifest


@pytest.mark.parametrize("nested", [True, False], ids=["dataset-root", "TrainingData-root"])
def test_converts_training_subjects(make_mrbrains, out_dir, volumes, nested):
    root = make_mrbrains(labelled=(1, 2, 3), nested=nested)
    table = read_manifest(ingest("mrbrains", root, out_dir))
    assert list(table.subject) == ["1", "2", "3"]
    assert set(table.site) == {"mrbrains"} and set(table.split) == {""}
    assert set(table.spacing) == {"0.958x0.958x3.000"}
    for row, number in zip(table.itertuples(), (1, 2, 3)):
        t1, flair, label = (nib.load(getattr(row, c)) for c in ("t1", "t2", "label"))
        np.testing.assert_array_equal(t1.get_fdata(), volumes.image_values(number))  # T1.nii, not T1_1mm
        np.testing.assert_array_equal(flair.get_fdata(), volumes.image_values(number, second=True))
        np.testing.assert_array_equal(label.get_fdata(), volumes.tissue_pattern())  # LabelsForTesting
        for image in (t1, flair, label):
            assert image.shape == volumes.shape
            np.testing.assert_allclose(image.affine, volumes.mrbrains_affine, atol=1e-6)
            np.testing.assert_allclose(image.header.get_zooms(), (0.958, 0.958, 3.0), atol=1e-6)
        assert nib.aff2axcodes(t1.affine) == ("L", "A", "S")


def test_unlabelled_subject_skipped_with_warning(make_mrbrains, out_dir, caplog):
    root = make_mrbrains(labelled=(1,), unlabelled=(4,))
    (root / "TrainingData" / "notes").mkdir()  # folders without MRBrainS files are ignored
    with caplog.at_level(logging.WARNING):
        table = read_manifest(ingest("mrbrains", root, out_dir))
    assert list(table.subject) == ["1"]
    assert "LabelsForTesting" in caplog.text and "4" in caplog.text


def test_missing_flair_names_file(make_mrbrains, out_dir):
    root = make_mrbrains(labelled=(1, 2))
    (root / "TrainingData" / "2" / "T2_FLAIR.nii").unlink()
    with pytest.raises(ValueError, match=r"2/T1\.nii.*one modality only.*2/T2_FLAIR\.nii"):
        ingest("mrbrains", root, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_missing_t1_names_file(make_mrbrains, out_dir):
    root = make_mrbrains(labelled=(1,))
    (root / "TrainingData" / "1" / "T1.nii").unlink()
    with pytest.raises(ValueError, match=r"1/T2_FLAIR\.nii.*one modality only.*1/T1\.nii"):
        ingest("mrbrains", root, out_dir)


def test_orientation_mismatch_names_both_files(make_mrbrains, out_dir, volumes):
    root = make_mrbrains(labelled=(1,))
    flipped = volumes.mrbrains_affine.copy()
    flipped[0, 0] = -flipped[0, 0]
    label = root / "TrainingData" / "1" / "LabelsForTesting.nii"
    volumes.save_nii(volumes.tissue_pattern(), flipped, label)
    with pytest.raises(ValueError, match=r"LabelsForTesting\.nii: orientation RAS differs from .*1/T1\.nii"):
        ingest("mrbrains", root, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_flair_on_another_grid_names_both_files(make_mrbrains, out_dir, volumes):
    root = make_mrbrains(labelled=(1,))
    shifted = volumes.mrbrains_affine.copy()
    shifted[2, 3] += 3.0
    volumes.save_nii(volumes.image_values(1, True), shifted, root / "TrainingData" / "1" / "T2_FLAIR.nii")
    with pytest.raises(ValueError, match=r"T2_FLAIR\.nii: affine differs from .*T1\.nii"):
        ingest("mrbrains", root, out_dir)


def test_unexpected_label_value(make_mrbrains, out_dir, volumes):
    root = make_mrbrains(labelled=(1,))
    labels = volumes.tissue_pattern()
    labels[0, 0, 0] = 5
    volumes.save_nii(labels, volumes.mrbrains_affine, root / "TrainingData" / "1" / "LabelsForTesting.nii")
    with pytest.raises(ValueError, match=r"LabelsForTesting\.nii.*\[5\]"):
        ingest("mrbrains", root, out_dir)


def test_corrupt_header_names_file(make_mrbrains, out_dir):
    root = make_mrbrains(labelled=(1,))
    path = root / "TrainingData" / "1" / "T2_FLAIR.nii"
    path.write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match=r"1/T2_FLAIR\.nii"):
        ingest("mrbrains", root, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_nan_rejected(make_mrbrains, out_dir, volumes):
    root = make_mrbrains(labelled=(1,))
    data = volumes.image_values(1, True)
    data[1, 1, 1] = np.nan
    volumes.save_nii(data, volumes.mrbrains_affine, root / "TrainingData" / "1" / "T2_FLAIR.nii")
    with pytest.raises(ValueError, match=r"T2_FLAIR\.nii.*NaN"):
        ingest("mrbrains", root, out_dir)


def test_folder_without_subjects(tmp_path, out_dir):
    (tmp_path / "src" / "TrainingData" / "misc").mkdir(parents=True)
    with pytest.raises(ValueError, match="no MRBrainS13 subject folders"):
        ingest("mrbrains", tmp_path / "src", out_dir)
