"""Brain extraction by template registration, on a small synthetic head, and the errors bad input
must give; the ``skull_stripped: false`` preprocessing path that uses it."""

import copy
import os

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")  # before any ANTs filter runs

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from dnorm.config import validate_config  # noqa: E402
from dnorm.manifest import read_manifest, write_manifest  # noqa: E402
from dnorm.preprocess.pipeline import preprocess_dataset  # noqa: E402
from dnorm.preprocess.skullstrip import extract_brain, head_volume, limit_threads  # noqa: E402
from dnorm.synth.template import build_template  # noqa: E402

#: T1 intensity of each template channel (air, CSF, GM, WM, scalp), scanner-like scale.
T1_MEANS = np.array([0.0, 250.0, 500.0, 750.0, 650.0])


def rotated(affine: np.ndarray, degrees: float, shift_mm) -> np.ndarray:
    """``affine`` moved in the world: a rotation about the z axis, then a shift."""
    angle = np.deg2rad(degrees)
    motion = np.eye(4)
    motion[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    motion[:3, 3] = shift_mm
    return motion @ affine


@pytest.fixture(scope="module")
def head():
    """A 4 mm synthetic head (the benchmark's MNI tissues with a 2 mm CSF shell and a 4 mm
    scalp), rotated 8° and shifted in the world, int16, its true brain (CSF + GM + WM > 0.5) and
    labels (0 outside it, else the most probable of 1 CSF, 2 GM, 3 WM)."""
    template = build_template(csf_shell_mm=2.0, scalp_mm=4.0, spacing_mm=4)
    probabilities = template.probabilities
    rng = np.random.default_rng(0)
    image = np.tensordot(T1_MEANS, probabilities, axes=1) + rng.normal(0.0, 20.0, probabilities.shape[1:])
    image = np.clip(np.rint(image), 0, None).astype(np.int16)
    truth = probabilities[1:4].sum(axis=0) > 0.5
    labels = np.where(truth, np.argmax(probabilities[1:4], axis=0) + 1, 0).astype(np.uint8)
    return nib.Nifti1Image(image, rotated(template.affine, 8.0, (6.0, -9.0, 5.0))), truth, labels


@pytest.fixture(scope="module")
def extracted(head):
    image, *_ = head
    return extract_brain(image)


def dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def test_finds_the_brain_of_a_synthetic_head(head, extracted):
    image, truth, _ = head
    brain, mask = extracted
    found = np.asarray(mask.dataobj)
    assert mask.get_data_dtype() == np.uint8 and set(np.unique(found)) == {0, 1}
    assert dice(found > 0, truth) >= 0.9


def test_brain_image_is_the_input_inside_the_mask_and_zero_outside(head, extracted):
    image, *_ = head
    brain, mask = extracted
    inside = np.asarray(mask.dataobj) > 0
    stripped, original = np.asarray(brain.dataobj), np.asarray(image.dataobj)
    assert brain.shape == mask.shape == image.shape
    np.testing.assert_array_equal(brain.affine, image.affine)
    np.testing.assert_array_equal(mask.affine, image.affine)
    assert stripped.dtype == np.int16
    np.testing.assert_array_equal(stripped[inside], original[inside])
    assert (stripped[~inside] == 0).all()


def save(tmp_path, data, name="head.nii.gz"):
    path = tmp_path / name
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(path))
    return nib.load(str(path)), str(path)


@pytest.mark.parametrize(
    "data, message",
    [
        (np.zeros((8, 8, 8, 3), np.float32), "expected a 3D volume"),
        (np.zeros((8, 8, 8), np.float32), "empty image"),
        (np.full((8, 8, 8), 7.0, np.float32), "constant image"),
        (np.where(np.eye(8, dtype=bool)[:, :, None], np.nan, 1.0).repeat(8, axis=2).astype(np.float32), "NaN"),
        (np.ones((8, 8, 1), np.float32), "too thin"),
    ],
    ids=["4d", "empty", "constant", "nan", "thin"],
)
def test_bad_images_are_refused_naming_the_file(tmp_path, data, message):
    image, path = save(tmp_path, data)
    with pytest.raises(ValueError, match=message) as error:
        extract_brain(image)
    assert path in str(error.value)


def test_an_image_in_memory_is_named_by_source():
    image = nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="^scan-7.nii: empty image"):
        extract_brain(image, source="scan-7.nii")


def test_a_single_volume_4d_image_is_read_as_3d(tmp_path):
    data = np.arange(8 * 8 * 8, dtype=np.float32).reshape(8, 8, 8, 1)
    image, _ = save(tmp_path, data)
    assert head_volume(image).shape == (8, 8, 8)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_threads_must_be_a_positive_whole_number(threads):
    with pytest.raises(ValueError, match="threads"):
        limit_threads(threads)


# --- the workflow step: datasets with `skull_stripped: false` -------------------------------------


@pytest.fixture(scope="module")
def whole_head_dataset(head, tmp_path_factory):
    """A one-subject dataset of the synthetic head (with its scalp) and its labels."""
    image, _, labels = head
    folder = tmp_path_factory.mktemp("raw")
    nib.save(image, str(folder / "h1_t1.nii.gz"))
    nib.save(nib.Nifti1Image(labels, image.affine), str(folder / "h1_label.nii.gz"))
    row = dict(dataset="heads", subject="h1", site="s", split="", t1=str(folder / "h1_t1.nii.gz"), t2="",
               label=str(folder / "h1_label.nii.gz"), spacing="4.000x4.000x4.000")
    write_manifest(pd.DataFrame([row]), folder / "manifest.csv")
    return folder / "manifest.csv"


def test_skull_stripped_false_extracts_the_brain_and_writes_the_mask(whole_head_dataset, tmp_path):
    table = read_manifest(preprocess_dataset(whole_head_dataset, 4.0, tmp_path, skull_stripped=False))
    mask_image = nib.load(str(tmp_path / "h1_brainmask.nii.gz"))
    image = nib.load(table.t1[0])
    labels = np.asarray(nib.load(table.label[0]).dataobj)
    mask = np.asarray(mask_image.dataobj)
    assert mask_image.get_data_dtype() == np.uint8 and set(np.unique(mask)) == {0, 1}
    assert mask.shape == image.shape == labels.shape
    np.testing.assert_allclose(mask_image.affine, image.affine)
    assert (np.asarray(image.dataobj)[mask == 0] == 0).all()  # stripped with the extracted mask
    assert dice(mask > 0, labels > 0) >= 0.9
    raw_labels = np.asarray(nib.load(str(whole_head_dataset.parent / "h1_label.nii.gz")).dataobj)
    assert (labels > 0).sum() == (raw_labels > 0).sum()  # the labels are kept whole


def test_skull_stripped_default_uses_the_labels_and_writes_no_mask(whole_head_dataset, tmp_path):
    table = read_manifest(preprocess_dataset(whole_head_dataset, 4.0, tmp_path))
    assert not (tmp_path / "h1_brainmask.nii.gz").exists()
    labels = np.asarray(nib.load(table.label[0]).dataobj)
    assert (np.asarray(nib.load(table.t1[0]).dataobj)[labels == 0] == 0).all()


def test_config_default_is_skull_stripped(default_config):
    assert all(dataset["skull_stripped"] is True for dataset in default_config["datasets"].values())


def test_config_refuses_a_non_boolean_skull_stripped(default_config):
    config = copy.deepcopy(default_config)
    config["datasets"]["iseg"]["skull_stripped"] = "no"
    with pytest.raises(ValueError, match="skull_stripped"):
        validate_config(config)
