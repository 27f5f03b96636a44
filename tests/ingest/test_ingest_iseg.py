"""iSEG-2017 adapter: Analyze 7.5 pairs, labels 10/150/250, pairing, errors, manifest, CLI."""

from __future__ import annotations

import argparse
import logging
import re

import nibabel as nib
import numpy as np
import pytest

from dnorm.ingest import KINDS, add_ingest_arguments, ingest, run_ingest_command
from dnorm.manifest import read_manifest


def test_converts_labelled_subjects_and_skips_unlabelled(make_iseg, out_dir, volumes, caplog):
    """The label files hold iSEG-2017's own values (0, 10 CSF, 150 GM, 250 WM; real_layouts.ISEG_RAW)
    in a known pattern; the converted labels must be that pattern in 0-3, which checks the label
    table by its effect (a test comparing the table with a copy of itself could not fail)."""
    source = make_iseg(labelled=(1, 2, 10), unlabelled=(11,))
    with caplog.at_level(logging.WARNING):
        manifest = ingest("iseg", source, out_dir)
    assert manifest == out_dir / "manifest.csv"
    assert "subject-11" in caplog.text

    table = read_manifest(manifest)
    assert list(table.subject) == ["subject-1", "subject-2", "subject-10"]  # numeric order
    assert set(table.dataset) == {"iseg"} and set(table.site) == {"iseg"} and set(table.split) == {""}
    assert set(table.spacing) == {"1.000x1.000x1.000"}
    for row, number in zip(table.itertuples(), (1, 2, 10)):
        source_image = nib.load(str(source / f"subject-{number}-T1.hdr"))
        t1, t2, label = (nib.load(getattr(row, c)) for c in ("t1", "t2", "label"))
        assert getattr(row, "t1").endswith(f"iseg/subject-{number}_t1.nii.gz")
        assert t1.get_data_dtype() == np.float32 and label.get_data_dtype() == np.uint8
        np.testing.assert_array_equal(t1.get_fdata(), volumes.image_values(number))
        np.testing.assert_array_equal(t2.get_fdata(), volumes.image_values(number, second=True))
        np.testing.assert_array_equal(label.get_fdata(), volumes.tissue_pattern())
        for image in (t1, t2, label):
            assert image.shape == volumes.shape
            np.testing.assert_allclose(image.affine, source_image.affine)


def test_manifest_paths_are_relative(make_iseg, out_dir):
    manifest = ingest("iseg", make_iseg(labelled=(1,)), out_dir)
    text = manifest.read_text()
    assert "iseg/subject-1_t1.nii.gz" in text and str(out_dir) not in text


def test_site_override(make_iseg, out_dir):
    table = read_manifest(ingest("iseg", make_iseg(labelled=(1,)), out_dir, site="infants"))
    assert list(table.site) == ["infants"]


def test_unexpected_label_value_names_file_and_values(make_iseg, out_dir):
    source = make_iseg(labelled=(1, 2))
    path = source / "subject-2-label.hdr"
    raw = np.asarray(nib.load(str(path)).dataobj).copy()
    raw[0, 0, 0], raw[0, 0, 1] = 100, 7
    nib.save(nib.AnalyzeImage(raw, np.eye(4)), str(path))
    with pytest.raises(ValueError, match=r"subject-2-label\.hdr.*\[7, 100\].*allowed: 0, 10, 150, 250"):
        ingest("iseg", source, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_subject_in_one_modality_only(make_iseg, out_dir):
    source = make_iseg(labelled=(1, 2))
    for suffix in (".hdr", ".img"):
        (source / f"subject-2-T2{suffix}").unlink()
    with pytest.raises(ValueError, match=r"subject-2-T1\.hdr.*one modality only.*subject-2-T2\.hdr"):
        ingest("iseg", source, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_t2_without_t1(make_iseg, out_dir):
    source = make_iseg(labelled=(1,))
    for suffix in (".hdr", ".img"):
        (source / f"subject-1-T1{suffix}").unlink()
    with pytest.raises(ValueError, match=r"subject-1-T2\.hdr.*one modality only \(T2\)"):
        ingest("iseg", source, out_dir)


def test_label_without_images(make_iseg, out_dir):
    source = make_iseg(labelled=(1,))
    for kind in ("T1", "T2"):
        for suffix in (".hdr", ".img"):
            (source / f"subject-1-{kind}{suffix}").unlink()
    with pytest.raises(ValueError, match=r"subject-1-label\.hdr"):
        ingest("iseg", source, out_dir)


def _garbage(path):
    path.write_bytes(b"not an analyze header")


def _bad_datatype(path):
    header = bytearray(path.read_bytes())
    header[40:56] = b"\xff" * 16  # dims and data type code
    path.write_bytes(bytes(header))


def _truncate_data(path):
    data = path.with_suffix(".img")
    data.write_bytes(data.read_bytes()[:100])


@pytest.mark.parametrize("corrupt", [_garbage, _bad_datatype, _truncate_data])
def test_corrupt_file_names_it(make_iseg, out_dir, corrupt):
    source = make_iseg(labelled=(1, 2))
    corrupt(source / "subject-2-T2.hdr")
    with pytest.raises(ValueError, match=r"subject-2-T2\.hdr"):
        ingest("iseg", source, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_missing_img_names_file(make_iseg, out_dir):
    source = make_iseg(labelled=(1,))
    (source / "subject-1-label.img").unlink()
    with pytest.raises(ValueError, match=r"subject-1-label\.img"):
        ingest("iseg", source, out_dir)


def test_label_on_another_grid_names_both_files(make_iseg, out_dir, volumes):
    source = make_iseg(labelled=(1,))
    smaller = volumes.tissue_pattern()[:, :, :-1].astype(np.uint8)
    nib.save(nib.AnalyzeImage(smaller, np.eye(4)), str(source / "subject-1-label.hdr"))
    with pytest.raises(ValueError, match=r"subject-1-label\.hdr.*subject-1-T1\.hdr"):
        ingest("iseg", source, out_dir)


def test_nan_rejected(make_iseg, out_dir, volumes):
    source = make_iseg(labelled=(1,))
    data = volumes.image_values(1).astype(np.float32)
    data[2, 2, 2] = np.nan
    nib.save(nib.AnalyzeImage(data, np.eye(4)), str(source / "subject-1-T1.hdr"))
    with pytest.raises(ValueError, match=r"subject-1-T1\.hdr.*NaN"):
        ingest("iseg", source, out_dir)


def test_failed_rerun_removes_stale_manifest(make_iseg, out_dir):
    source = make_iseg(labelled=(1,))
    ingest("iseg", source, out_dir)
    assert (out_dir / "manifest.csv").exists()
    (source / "subject-1-T1.hdr").write_bytes(b"garbage")
    with pytest.raises(ValueError):
        ingest("iseg", source, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_failed_discovery_removes_stale_manifest(make_iseg, out_dir):
    source = make_iseg(labelled=(1, 2))
    ingest("iseg", source, out_dir)
    for suffix in (".hdr", ".img"):
        (source / f"subject-2-T2{suffix}").unlink()
    with pytest.raises(ValueError, match="one modality only"):
        ingest("iseg", source, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_only_unlabelled_subjects_is_an_error(make_iseg, out_dir):
    source = make_iseg(labelled=(), unlabelled=(11, 12))
    with pytest.raises(ValueError, match="no labelled iseg subjects"):
        ingest("iseg", source, out_dir)


@pytest.mark.parametrize("state", ["missing", "empty", "no iseg files"])
def test_bad_source_folder_named(tmp_path, out_dir, state):
    source = tmp_path / "src"
    if state != "missing":
        source.mkdir()
    if state == "no iseg files":
        (source / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match=re.escape(str(source))):
        ingest("iseg", source, out_dir)


def test_unknown_kind_lists_valid_kinds(tmp_path):
    with pytest.raises(ValueError, match="iseg, mrbrains, abide"):
        ingest("brats", tmp_path, tmp_path / "out")


def test_command_line(make_iseg, out_dir, capsys):
    parser = add_ingest_arguments(argparse.ArgumentParser(prog="dnorm ingest"))
    args = parser.parse_args(["iseg", str(make_iseg(labelled=(1,))), str(out_dir), "--site", "s1"])
    assert run_ingest_command(args) == 0
    assert capsys.readouterr().out.strip() == str(out_dir / "manifest.csv")
    assert list(read_manifest(out_dir / "manifest.csv").site) == ["s1"]
    assert KINDS == ("iseg", "mrbrains", "abide", "bids")
    with pytest.raises(SystemExit):
        parser.parse_args(["brats", "a", "b"])
