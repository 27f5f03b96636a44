"""BIDS adapter: sessions, runs, sites from participants.tsv, labels from a derivatives dseg with
its dseg.tsv, unlabelled subjects kept for normalization only, and the errors a user meets."""

from __future__ import annotations

import json
import logging
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

from bids_layouts import (
    AFFINE,
    DSEG_TO_DNORM,
    SHAPE,
    build_bids,
    dseg_values,
    image_values,
    offset_of,
    save,
)
from dnorm.cli import main
from dnorm.ingest import ingest
from dnorm.ingest.bids import DEFAULT_LABEL_TABLE, options_from_entry, read_label_map
from dnorm.manifest import read_manifest


@pytest.fixture
def bids_root(tmp_path):
    return build_bids(tmp_path / "ds")


def expected_labels() -> np.ndarray:
    values = dseg_values()
    return np.vectorize(DSEG_TO_DNORM.get)(values).astype(np.uint8)


def test_one_row_per_subject_session_with_sites_and_mapped_labels(bids_root, out_dir, caplog):
    with caplog.at_level(logging.WARNING):
        table = read_manifest(ingest("bids", bids_root, out_dir))
    assert list(table.subject) == ["sub-01", "sub-02_ses-1", "sub-02_ses-2"]
    assert list(table.site) == ["A", "B", "B"]
    assert set(table.dataset) == {"bids"} and set(table.split) == {""} and set(table.t2) == {""}
    assert set(table.spacing) == {"1.000x1.000x2.000"}
    # sub-02 ses-2 has two T1w runs: the highest run is used, with a warning.
    chosen = {"sub-01": ("01", None, None), "sub-02_ses-1": ("02", "1", None), "sub-02_ses-2": ("02", "2", 2)}
    for row in table.itertuples():
        t1, label = nib.load(row.t1), nib.load(row.label)
        np.testing.assert_array_equal(t1.get_fdata(), image_values(offset_of(*chosen[row.subject])))
        # dseg.tsv says 1 GM, 2 WM, 3 CSF: mapped to dnorm's 1 CSF, 2 GM, 3 WM.
        np.testing.assert_array_equal(np.asarray(label.dataobj), expected_labels())
        assert label.get_data_dtype() == np.uint8
        for image in (t1, label):
            assert image.shape == SHAPE
            np.testing.assert_allclose(image.affine, AFFINE, atol=1e-6)
    assert "2 runs (1, 2); using run 2" in caplog.text


def test_unlabelled_subject_is_listed_for_normalization_only(bids_root, out_dir, caplog):
    with caplog.at_level(logging.WARNING):
        table = read_manifest(ingest("bids", bids_root, out_dir, modalities=("t1", "t2")))
    assert "sub-03" not in set(table.subject)
    assert "sub-03_T1w.nii.gz: no dseg label volume" in caplog.text
    unlabelled = pd.read_csv(out_dir / "unlabelled.csv", dtype=str, keep_default_na=False)
    assert list(unlabelled.columns) == ["dataset", "subject", "site", "split", "t1", "t2", "label", "spacing"]
    row = unlabelled.iloc[0]
    assert (len(unlabelled), row.subject, row.site, row.label) == (1, "sub-03", "A", "")
    np.testing.assert_array_equal(nib.load(out_dir / row.t1).get_fdata(), image_values(offset_of("03", None, None)))
    np.testing.assert_array_equal(nib.load(out_dir / row.t2).get_fdata(),
                                  image_values(offset_of("03", None, None), second=True))


@pytest.mark.parametrize("modality, suffix_offset", [("t2", 0.0), ("flair", 5.0)])
def test_second_modality_as_the_config_asks(bids_root, out_dir, modality, suffix_offset):
    if modality == "flair":  # only sub-01 has a FLAIR: keep that subject
        for subject in ("sub-02", "sub-03"):
            shutil.rmtree(bids_root / subject)
    table = read_manifest(ingest("bids", bids_root, out_dir, modalities=("t1", modality)))
    for row in table.itertuples():
        subject = row.subject.split("_")[0][4:]
        session = row.subject.split("ses-")[1] if "ses-" in row.subject else None
        run = 2 if session == "2" else None  # the T2w of the T1w's run
        expected = image_values(offset_of(subject, session, run) + suffix_offset, second=True)
        np.testing.assert_array_equal(nib.load(row.t2).get_fdata(), expected)


def test_missing_second_modality_names_the_t1w(bids_root, out_dir):
    with pytest.raises(ValueError, match=r"sub-02_ses-1_T1w\.nii\.gz: no FLAIR image beside it, as modalities "
                                         r"\['t1', 'flair'\] ask"):
        ingest("bids", bids_root, out_dir, modalities=("t1", "flair"))
    assert not (out_dir / "manifest.csv").exists()


def test_site_column_override_and_fallback(bids_root, out_dir, caplog):
    table = read_manifest(ingest("bids", bids_root, out_dir, site_column="scanner"))
    assert list(table.site) == ["scanner-a", "scanner-b", "scanner-b"]
    table = read_manifest(ingest("bids", bids_root, out_dir, site="X"))
    assert set(table.site) == {"X"}
    with pytest.raises(ValueError, match=r"participants\.tsv: no column 'nope'; .*--site-column"):
        ingest("bids", bids_root, out_dir, site_column="nope")
    (bids_root / "participants.tsv").write_text("participant_id\tsite\nsub-01\tA\nsub-03\tA\n")
    with pytest.raises(ValueError, match=r"participants\.tsv: no 'site' value for participant sub-02"):
        ingest("bids", bids_root, out_dir)
    (bids_root / "participants.tsv").unlink()
    with caplog.at_level(logging.WARNING):
        table = read_manifest(ingest("bids", bids_root, out_dir))
    assert set(table.site) == {"bids"} and "every subject's site is 'bids'" in caplog.text


def test_label_map_names(tmp_path):
    tsv = tmp_path / "dseg.tsv"
    tsv.write_text("index\tname\tabbreviation\n4\tGray Matter\tGM\n5\tWhite_matter\tWM\n6\tcerebrospinal fluid\tCSF\n"
                   "7\tLeft-Cerebral-Cortex\tGM\n")
    assert read_label_map(tsv) == {0: 0, 4: 2, 5: 3, 6: 1, 7: 2}  # 7: by its abbreviation
    tsv.write_text("index\tname\n1\tGM\n2\tLesion\n")
    with pytest.raises(ValueError, match=r"dseg\.tsv: label 'Lesion' \(index 2\) is not a tissue dnorm knows"):
        read_label_map(tsv)
    tsv.write_text("index\tlabel\n1\tGM\n")
    with pytest.raises(ValueError, match=r"dseg\.tsv: label map lacks column\(s\) \['name'\]"):
        read_label_map(tsv)
    tsv.write_text("index\tname\n1\tGM\n1\tWM\n")
    with pytest.raises(ValueError, match=r"dseg\.tsv: index 1 appears twice"):
        read_label_map(tsv)


def test_nearest_tsv_wins_and_default_map_without_tsv(bids_root, out_dir, caplog):
    manual = bids_root / "derivatives" / "manual"
    # A per-file tsv beside sub-01's dseg, in dnorm's numbering, overrides the root dseg.tsv for it.
    (manual / "sub-01" / "anat" / "sub-01_dseg.tsv").write_text("index\tname\n1\tCSF\n2\tGM\n3\tWM\n")
    table = read_manifest(ingest("bids", bids_root, out_dir)).set_index("subject")
    np.testing.assert_array_equal(np.asarray(nib.load(table.label["sub-01"]).dataobj), dseg_values())
    np.testing.assert_array_equal(np.asarray(nib.load(table.label["sub-02_ses-1"]).dataobj), expected_labels())
    (manual / "dseg.tsv").unlink()
    with caplog.at_level(logging.WARNING):
        table = read_manifest(ingest("bids", bids_root, out_dir)).set_index("subject")
    assert "sub-02_ses-1_dseg.nii.gz: no dseg.tsv applies to it; assuming dnorm's label numbering" in caplog.text
    assert DEFAULT_LABEL_TABLE == {0: 0, 1: 1, 2: 2, 3: 3}
    np.testing.assert_array_equal(np.asarray(nib.load(table.label["sub-02_ses-1"]).dataobj), dseg_values())


def test_dseg_value_outside_the_label_map_names_both_files(bids_root, out_dir):
    values = dseg_values()
    values[0, 0, 0] = 7
    dseg = bids_root / "derivatives" / "manual" / "sub-02" / "ses-1" / "anat" / "sub-02_ses-1_dseg.nii.gz"
    save(dseg, values)
    with pytest.raises(ValueError, match=r"sub-02_ses-1_dseg\.nii\.gz: unexpected label value\(s\) \[7\] not in the "
                                         r"label map .*manual/dseg\.tsv; allowed: 0-3"):
        ingest("bids", bids_root, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_dataset_without_description_is_refused(bids_root, out_dir):
    (bids_root / "dataset_description.json").unlink()
    with pytest.raises(ValueError, match=r"ds/dataset_description\.json: missing; every BIDS dataset has one"):
        ingest("bids", bids_root, out_dir)


def test_subject_without_t1w_names_its_folder(bids_root, out_dir):
    folder = bids_root / "sub-04" / "anat"
    folder.mkdir(parents=True)
    save(folder / "sub-04_T2w.nii.gz", image_values(0.0, second=True))
    with pytest.raises(ValueError, match=r"ds/sub-04: subject sub-04 has no T1w image"):
        ingest("bids", bids_root, out_dir)


def test_derivatives_choice(bids_root, out_dir, caplog):
    manual = bids_root / "derivatives" / "manual"
    # dnorm's own outputs in derivatives/ are predictions, never labels: not ambiguous.
    shutil.copytree(manual, bids_root / "derivatives" / "dnorm")
    description = json.loads((manual / "dataset_description.json").read_text())
    (bids_root / "derivatives" / "dnorm" / "dataset_description.json").write_text(
        json.dumps(description | {"GeneratedBy": [{"Name": "dnorm", "Version": "0.1.0"}]}))
    assert len(read_manifest(ingest("bids", bids_root, out_dir))) == 3
    # A second labelling pipeline makes the choice ambiguous, until one is named.
    shutil.copytree(manual, bids_root / "derivatives" / "other")
    with pytest.raises(ValueError, match=r"sub-01_T1w\.nii\.gz: several label volumes match it .*--derivatives"):
        ingest("bids", bids_root, out_dir)
    assert len(read_manifest(ingest("bids", bids_root, out_dir, derivatives=[manual]))) == 3
    (bids_root / "derivatives" / "other" / "dataset_description.json").unlink()
    with caplog.at_level(logging.WARNING):
        assert len(read_manifest(ingest("bids", bids_root, out_dir))) == 3
    assert "other: no dataset_description.json, not searched for labels" in caplog.text
    with pytest.raises(ValueError, match=r"other/dataset_description\.json: missing; a BIDS derivatives dataset"):
        ingest("bids", bids_root, out_dir, derivatives=[bids_root / "derivatives" / "other"])


def test_only_unlabelled_subjects_is_an_error(bids_root, out_dir):
    shutil.rmtree(bids_root / "derivatives")
    with pytest.raises(ValueError, match=r"no subject has a dseg label volume .* `dnorm normalize`"):
        ingest("bids", bids_root, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_command_line(bids_root, out_dir, capsys):
    status = main(["ingest", "bids", str(bids_root), str(out_dir), "--modalities", "t1", "t2",
                   "--site-column", "scanner"])
    assert status == 0
    assert capsys.readouterr().out.strip() == str(out_dir / "manifest.csv")
    table = read_manifest(out_dir / "manifest.csv")
    assert set(table.site) == {"scanner-a", "scanner-b"} and (table.t2 != "").all()
    assert main(["ingest", "iseg", str(bids_root), str(out_dir), "--site-column", "scanner"]) == 2
    assert "error: --site-column: for BIDS datasets only, not iseg" in capsys.readouterr().err
    (bids_root / "dataset_description.json").unlink()
    assert main(["ingest", "bids", str(bids_root), str(out_dir)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("dnorm ingest: error: ") and "dataset_description.json: missing" in error
    assert len(error.splitlines()) == 1


def test_config_entry_for_a_bids_dataset(tmp_path, bids_root):
    from dnorm.cli import default_config_path
    from dnorm.config import load_config

    override = tmp_path / "bids.yaml"
    override.write_text(yaml.safe_dump({"datasets": {"mine": {
        "source": "bids", "path": str(bids_root), "split": [0.34, 0.33, 0.33], "modalities": ["t1", "t2"],
        "site_column": "scanner", "derivatives": [str(bids_root / "derivatives" / "manual")]}}}))
    entry = load_config(default_config_path(), override)["datasets"]["mine"]
    assert options_from_entry(entry) == {"modalities": ("t1", "t2"), "site_column": "scanner",
                                         "derivatives": [str(bids_root / "derivatives" / "manual")]}
