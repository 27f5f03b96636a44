"""Stage 1 and 2 on hand-made volumes, and the errors bad input must give."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnorm.manifest import read_manifest, write_manifest
from dnorm.preprocess.pipeline import harmonize_datasets, preprocess_dataset


def write(path, data, affine=None):
    nib.save(nib.Nifti1Image(data, np.eye(4) if affine is None else affine), str(path))
    return str(path)


def make_subject(folder, name, shape=(30, 32, 28), offset=0):
    labels = np.zeros(shape, np.uint8)
    labels[5 + offset : 25, 6:26, 4:24] = 1
    labels[8 + offset : 22, 9:23, 7:21] = 2
    labels[11 + offset : 19, 12:20, 10:18] = 3
    image = (labels * 100.0 + 10.0).astype(np.float32)
    return dict(dataset="site", subject=name, site="site", split="", spacing="1.000x1.000x1.000",
                t1=write(folder / f"{name}_t1.nii.gz", image), t2="",
                label=write(folder / f"{name}_label.nii.gz", labels))


@pytest.fixture
def raw(tmp_path):
    rows = [make_subject(tmp_path, f"s{i}", offset=i) for i in range(3)]
    write_manifest(pd.DataFrame(rows), tmp_path / "manifest.csv")
    return tmp_path


def test_stage_one_crops_to_the_brain_and_strips_the_skull(raw, tmp_path):
    manifest = preprocess_dataset(raw / "manifest.csv", 2.0, tmp_path / "cropped")
    table = read_manifest(manifest)
    image = nib.load(table.t1[0])
    labels = np.asarray(nib.load(table.label[0]).dataobj)
    assert image.shape == labels.shape == (10, 10, 10)
    np.testing.assert_allclose(image.header.get_zooms(), (2.0, 2.0, 2.0))
    assert (np.asarray(image.dataobj)[labels == 0] == 0).all()
    assert set(table.spacing) == {"2.000x2.000x2.000"}


def test_stage_two_pads_scales_and_splits(raw, tmp_path):
    cropped = preprocess_dataset(raw / "manifest.csv", 2.0, tmp_path / "cropped")
    final = read_manifest(harmonize_datasets([cropped], {"site": [0.34, 0.33, 0.33]}, 1, 100.0, 12, tmp_path / "final"))
    assert sorted(final.split) == ["test", "train", "val"]
    for _, row in final.iterrows():
        image = np.asarray(nib.load(row.t1).dataobj)
        assert image.shape == (12, 12, 12)
        assert image.min() == 0.0 and image.max() == 1.0


def break_subject(raw, column, data, affine=None):
    table = read_manifest(raw / "manifest.csv")
    write(table.at[0, column], data, affine)


@pytest.mark.parametrize(
    "column, data, affine, message",
    [
        ("label", np.full((30, 32, 28), 5, np.uint8), None, r"unexpected label value\(s\) \[5\]"),
        ("t1", np.full((30, 32, 29), 1.0, np.float32), None, r"shape \(30, 32, 29\) differs"),
        ("t1", np.full((30, 32, 28), 1.0, np.float32), np.diag([1.0, 1.0, 2.0, 1.0]), "affine differs"),
        ("t1", np.full((30, 32, 28), np.nan, np.float32), None, "NaN or infinite"),
    ],
)
def test_bad_subject_files_name_the_file_and_leave_no_manifest(raw, tmp_path, column, data, affine, message):
    break_subject(raw, column, data, affine)
    bad_file = read_manifest(raw / "manifest.csv")[column][0]
    with pytest.raises(ValueError, match=message) as error:
        preprocess_dataset(raw / "manifest.csv", 2.0, tmp_path / "out")
    assert bad_file in str(error.value)
    assert not (tmp_path / "out" / "manifest.csv").exists()


def test_a_manifest_row_pointing_to_a_missing_file_is_reported(raw, tmp_path):
    table = read_manifest(raw / "manifest.csv")
    missing = table.t1[1]
    (raw / missing.rsplit("/", 1)[1]).unlink()
    with pytest.raises(ValueError, match=f"row 3 \\(site/s1\\): t1 file {missing} does not exist"):
        preprocess_dataset(raw / "manifest.csv", 2.0, tmp_path / "out")


def test_a_corrupt_image_is_reported(raw, tmp_path):
    path = read_manifest(raw / "manifest.csv").t1[0]
    with open(path, "wb") as handle:
        handle.write(b"not a nifti file")
    with pytest.raises(ValueError, match=f"{path}: unreadable image"):
        preprocess_dataset(raw / "manifest.csv", 2.0, tmp_path / "out")
