"""``dnorm normalize`` / ``dnorm segment`` on a BIDS dataset write a BIDS-derivatives dataset
(``dnorm.bids_output``); ``--participant-label``; ``--skull-strip`` wiring (the skull-stripper is
replaced by a stand-in: the flag's plumbing is what is tested). Tiny random model of test_apply.

The ``bids-validator`` package judges paths offline, but only against the raw-data rules: it
rejects every derivative name (``sub-01_desc-normalized_T1w.nii.gz``, ``sub-01_dseg.nii.gz``).
:class:`DerivativeValidator` is the same validator given the BIDS schema's derivative rules too
(``bidsschematools``, which it ships with); the exact names and JSON fields are tested as well."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from bids_validator import BIDSValidator

import dnorm
from dnorm.cli import main
from dnorm.ingest.bids import read_label_map
from dnorm.training.provenance import file_digest
from test_apply import write_model

sys.path.insert(0, str(Path(__file__).parent / "ingest"))
from bids_layouts import AFFINE, SHAPE, brain, build_bids  # noqa: E402

#: Every file a segment (--probabilities) + normalize run writes for the fixture dataset.
SESSIONS = {"sub-01": "sub-01/anat/sub-01", "sub-02_ses-1": "sub-02/ses-1/anat/sub-02_ses-1",
            "sub-02_ses-2": "sub-02/ses-2/anat/sub-02_ses-2_run-2", "sub-03": "sub-03/anat/sub-03"}


class DerivativeValidator(BIDSValidator):
    """``bids_validator.BIDSValidator`` with the BIDS schema's derivative file rules added."""

    regexes = None  # its own, not the raw-only ones the base class caches

    @classmethod
    def _init_regexes(cls):
        if cls.regexes is None:
            import bidsschematools.rules
            import bidsschematools.schema

            schema = bidsschematools.schema.load_schema()
            files = schema.rules.files
            cls.regexes = [rule["regex"] for group in (files.common, files.raw, files.deriv)
                           for rule in bidsschematools.rules.regexify_filename_rules(group, schema, level=2)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """The tiny model, its card carrying a training fingerprint as trained models' cards do."""
    path = write_model(tmp_path_factory.mktemp("model") / "model.pt")
    content = torch.load(path, weights_only=True)
    content["card"]["provenance"] = {"fingerprint": "f" * 64}
    torch.save(content, path)
    return path


@pytest.fixture(scope="module")
def bids_run(tmp_path_factory, model):
    """segment --probabilities, then normalize, into one derivatives folder inside the dataset."""
    root = build_bids(tmp_path_factory.mktemp("bids") / "ds")
    out = root / "derivatives" / "dnorm"
    assert main(["segment", str(model), str(root), str(out), "-q", "--probabilities"]) == 0
    assert main(["normalize", str(model), str(root), str(out), "-q"]) == 0
    return root, out


def relative_files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_bids_derivative_file_names(bids_run):
    _, out = bids_run
    expected = {"dataset_description.json", "dseg.tsv"}
    for prefix in SESSIONS.values():
        expected |= {f"{prefix}_{kind}.{ext}" for kind in ("dseg", "probseg", "desc-normalized_T1w")
                     for ext in ("nii.gz", "json")}
    assert relative_files(out) == expected
    strict, derivative = BIDSValidator(), DerivativeValidator()
    assert strict.is_bids("/dataset_description.json")
    assert not strict.is_bids("/sub-01/anat/sub-01_desc-normalized_T1w.nii.gz")  # raw rules only (see doc)
    for name in sorted(expected):
        assert derivative.is_bids(f"/{name}"), name
    assert not derivative.is_bids("/sub-01/anat/sub-01_T1w_normalized.nii.gz")  # the validator does judge


def test_dataset_description_and_label_map(bids_run, model):
    root, out = bids_run
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert re.fullmatch(r"1\.\d+\.\d+", description["BIDSVersion"])
    generated = description["GeneratedBy"][0]
    assert generated["Name"] == "dnorm" and generated["Version"] == dnorm.__version__
    assert generated["ModelSHA256"] == file_digest(model)
    assert generated["ModelFingerprint"] == "f" * 64
    assert generated["ModelExperiment"] == "tiny_ours"
    assert description["SourceDatasets"] == [{"URL": root.resolve().as_uri()}]
    assert (out / "dseg.tsv").read_text().splitlines() == [
        "index\tname\tabbreviation", "0\tbackground\tBG", "1\tcerebrospinal fluid\tCSF", "2\tgray matter\tGM",
        "3\twhite matter\tWM"]
    assert read_label_map(out / "dseg.tsv") == {0: 0, 1: 1, 2: 2, 3: 3}  # dnorm's own ingest reads it back
    sidecar = json.loads((out / f"{SESSIONS['sub-02_ses-2']}_desc-normalized_T1w.json").read_text())
    assert sidecar["Sources"] == ["bids:raw:sub-02/ses-2/anat/sub-02_ses-2_run-2_T1w.nii.gz"]
    assert sidecar["SkullStripped"] is True


def test_outputs_on_the_input_grid(bids_run):
    _, out = bids_run
    inside = brain()
    for prefix in SESSIONS.values():
        labels = nib.load(out / f"{prefix}_dseg.nii.gz")
        normalized = nib.load(out / f"{prefix}_desc-normalized_T1w.nii.gz")
        assert labels.shape == normalized.shape == SHAPE
        assert nib.load(out / f"{prefix}_probseg.nii.gz").shape == SHAPE + (4,)
        np.testing.assert_allclose(labels.affine, AFFINE, atol=1e-5)
        values = np.asarray(labels.dataobj)
        assert labels.get_data_dtype() == np.uint8 and set(np.unique(values)) <= {0, 1, 2, 3}
        assert (values[~inside] == 0).all()
        assert (normalized.get_fdata()[~inside] == 0).all()


def test_participant_label_with_or_without_prefix(tmp_path, model, capsys):
    root = build_bids(tmp_path / "ds")
    out = tmp_path / "out"
    assert main(["segment", str(model), str(root), str(out), "-q", "--participant-label", "sub-01", "03"]) == 0
    printed = capsys.readouterr().out.split()
    assert sorted(relative_files(out)) == sorted(
        ["dataset_description.json", "dseg.tsv", "sub-01/anat/sub-01_dseg.nii.gz", "sub-01/anat/sub-01_dseg.json",
         "sub-03/anat/sub-03_dseg.nii.gz", "sub-03/anat/sub-03_dseg.json"])
    assert str(out / "sub-01/anat/sub-01_dseg.nii.gz") in printed
    assert main(["segment", str(model), str(root), str(out), "-q", "--participant-label", "09"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == (f"dnorm segment: error: {root}: participant label(s) 09 not in the dataset (its subjects: "
                     f"01, 02, 03)")


def test_bad_bids_inputs_are_one_line_errors(tmp_path, model, capsys):
    root = build_bids(tmp_path / "ds")

    def error_of(*argv) -> str:
        assert main(["segment", str(model), *map(str, argv), "-q"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("dnorm segment: error: ")
        return lines[0].removeprefix("dnorm segment: error: ")

    (root / "sub-04" / "anat").mkdir(parents=True)
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE), str(root / "sub-04/anat/sub-04_T2w.nii.gz"))
    assert error_of(root, tmp_path / "out").startswith(f"{root / 'sub-04'}: subject sub-04 has no T1w image")
    (root / "dataset_description.json").unlink()
    assert error_of(root, tmp_path / "out").startswith(f"{root / 'dataset_description.json'}: missing")
    flat = tmp_path / "flat"
    flat.mkdir()
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE), str(flat / "a_t1.nii.gz"))
    assert error_of(flat, tmp_path / "out", "--participant-label", "01").startswith(
        f"{flat}: --participant-label needs a BIDS dataset")


def test_output_folder_of_another_model_is_refused(tmp_path, model, capsys):
    root = build_bids(tmp_path / "ds")
    out = tmp_path / "out"
    assert main(["segment", str(model), str(root), str(out), "-q", "--participant-label", "01"]) == 0
    other = write_model(tmp_path / "other.pt", method="unet")
    assert main(["segment", str(other), str(root), str(out), "-q", "--participant-label", "01"]) == 2
    assert "already holds derivatives of another model" in capsys.readouterr().err


@pytest.fixture
def fake_skullstrip(monkeypatch):
    """Stand-in for ``dnorm.preprocess.skullstrip.extract_brain``: the brain is the voxels of the
    lower half of x inside the fixture's sphere; records every call."""
    calls = []

    def extract_brain(image):
        calls.append(image.shape)
        data = np.asarray(image.dataobj, dtype=np.float32)
        mask = (data != 0) & (np.arange(data.shape[0]) < data.shape[0] // 2)[:, None, None]
        return (nib.Nifti1Image(np.where(mask, data, 0).astype(np.float32), image.affine),
                nib.Nifti1Image(mask.astype(np.uint8), image.affine))

    module = types.ModuleType("dnorm.preprocess.skullstrip")
    module.extract_brain = extract_brain
    monkeypatch.setitem(sys.modules, "dnorm.preprocess.skullstrip", module)
    return calls


def expected_mask() -> np.ndarray:
    return brain() & (np.arange(SHAPE[0]) < SHAPE[0] // 2)[:, None, None]


def test_skull_strip_in_bids_mode_writes_the_mask(tmp_path, model, fake_skullstrip):
    root = build_bids(tmp_path / "ds")
    out = tmp_path / "out"
    assert main(["segment", str(model), str(root), str(out), "-q", "--skull-strip", "--participant-label", "01"]) == 0
    assert fake_skullstrip == [SHAPE]
    mask = nib.load(out / "sub-01/anat/sub-01_desc-brain_mask.nii.gz")
    assert DerivativeValidator().is_bids("/sub-01/anat/sub-01_desc-brain_mask.nii.gz")
    np.testing.assert_array_equal(np.asarray(mask.dataobj), expected_mask())
    np.testing.assert_allclose(mask.affine, AFFINE, atol=1e-5)
    labels = np.asarray(nib.load(out / "sub-01/anat/sub-01_dseg.nii.gz").dataobj)
    assert (labels[~expected_mask()] == 0).all() and (labels[expected_mask()] > 0).any()


def test_skull_strip_single_image_and_folder(tmp_path, model, fake_skullstrip, capsys):
    source = tmp_path / "in"
    source.mkdir()
    data = (np.random.default_rng(0).uniform(0.2, 1.0, SHAPE) * 800 * brain()).astype(np.float32)
    for name in ("a_t1.nii.gz", "b_t1.nii.gz"):
        nib.save(nib.Nifti1Image(data, AFFINE), str(source / name))
    assert main(["normalize", str(model), str(source / "a_t1.nii.gz"), str(tmp_path / "one"), "-q",
                 "--skull-strip"]) == 0
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["a_t1_brainmask.nii.gz",
                                                                     "a_t1_normalized.nii.gz"]
    mask = np.asarray(nib.load(tmp_path / "one" / "a_t1_brainmask.nii.gz").dataobj)
    np.testing.assert_array_equal(mask, expected_mask())
    normalized = nib.load(tmp_path / "one" / "a_t1_normalized.nii.gz").get_fdata()
    assert (normalized[~expected_mask()] == 0).all()
    assert main(["segment", str(model), str(source), str(tmp_path / "many"), "-q", "--skull-strip"]) == 0
    assert {p.name for p in (tmp_path / "many").iterdir()} == {
        "a_t1_brainmask.nii.gz", "a_t1_labels.nii.gz", "b_t1_brainmask.nii.gz", "b_t1_labels.nii.gz"}
    assert len(fake_skullstrip) == 3
    capsys.readouterr()
    mask_file = tmp_path / "one" / "a_t1_brainmask.nii.gz"
    assert main(["segment", str(model), str(source / "a_t1.nii.gz"), str(tmp_path / "x"), "-q", "--skull-strip",
                 "--mask", str(mask_file)]) == 2
    assert f"{mask_file}: --mask and --skull-strip both give the brain" in capsys.readouterr().err


def test_skull_strip_failure_is_one_line_naming_the_image(tmp_path, model, monkeypatch, capsys):
    def extract_brain(image):
        raise ValueError("no brain found")

    module = types.ModuleType("dnorm.preprocess.skullstrip")
    module.extract_brain = extract_brain
    monkeypatch.setitem(sys.modules, "dnorm.preprocess.skullstrip", module)
    image = tmp_path / "a_t1.nii.gz"
    nib.save(nib.Nifti1Image(np.ones(SHAPE, np.float32), AFFINE), str(image))
    assert main(["segment", str(model), str(image), str(tmp_path / "out"), "-q", "--skull-strip"]) == 2
    assert capsys.readouterr().err == f"dnorm segment: error: {image}: skull-stripping failed (no brain found)\n"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
