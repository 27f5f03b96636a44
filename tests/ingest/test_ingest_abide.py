"""ABIDE (FreeSurfer) adapter: aseg table, aparc+aseg, LIA kept, sites, errors."""

from __future__ import annotations

import logging

import nibabel as nib
import numpy as np
import pytest

from dnorm.ingest import ingest
from dnorm.ingest.abide import APARC_ASEG_TO_TISSUE, ASEG_TO_TISSUE, site_from_name
from dnorm.manifest import read_manifest


def test_converts_aseg_and_brainmask(make_abide, out_dir, volumes):
    source = make_abide()
    table = read_manifest(ingest("abide", source, out_dir))
    assert list(table.subject) == ["CMU_a_0050642", "Caltech_0051456"]  # natural order (upper-case first)
    assert list(table.site) == ["CMU", "CALTECH"]
    assert set(table.t2) == {""} and set(table.split) == {""}
    assert set(table.spacing) == {"1.000x1.000x1.000"}
    _, expected = volumes.abide_labels()
    for row in table.itertuples():
        mri = source / row.subject / "mri"
        image, label = nib.load(row.t1), nib.load(row.label)
        np.testing.assert_array_equal(image.get_fdata(), nib.load(str(mri / "brainmask.mgz")).get_fdata())
        np.testing.assert_array_equal(label.get_fdata(), expected)
        assert image.get_data_dtype() == np.float32 and label.get_data_dtype() == np.uint8
        for converted in (image, label):  # conformed LIA grid kept as is
            assert converted.shape == volumes.shape
            np.testing.assert_allclose(converted.affine, volumes.lia_affine, atol=1e-6)
            assert nib.aff2axcodes(converted.affine) == ("L", "I", "A")


def test_fallbacks_t1_and_aparc_aseg(make_abide, out_dir, volumes):
    source = make_abide(subjects=("Pitt_0050003",), image_name="T1.mgz", label_name="aparc+aseg.mgz",
                        cortex=(1001, 2035))
    table = read_manifest(ingest("abide", source, out_dir))
    _, expected = volumes.abide_labels()
    np.testing.assert_array_equal(nib.load(table.label[0]).get_fdata(), expected)  # parcels -> GM
    np.testing.assert_array_equal(nib.load(table.t1[0]).get_fdata(),
                                  nib.load(str(source / "Pitt_0050003" / "mri" / "T1.mgz")).get_fdata())


def test_prefers_brainmask_and_aseg(make_abide, out_dir):
    source = make_abide(subjects=("NYU_0050952",))
    mri = source / "NYU_0050952" / "mri"
    shape = nib.load(str(mri / "aseg.mgz")).shape
    nib.save(nib.MGHImage(np.full(shape, 7, np.uint8), np.eye(4)), str(mri / "T1.mgz"))  # other grid
    nib.save(nib.MGHImage(np.full(shape, 99, np.int32), np.eye(4)), str(mri / "aparc+aseg.mgz"))
    table = read_manifest(ingest("abide", source, out_dir))
    assert nib.load(table.t1[0]).get_fdata().max() > 7


def test_unknown_aseg_label_names_file_and_value(make_abide, out_dir, volumes):
    source = make_abide()
    path = source / "Caltech_0051456" / "mri" / "aseg.mgz"
    aseg, _ = volumes.abide_labels()
    aseg[0, 0, :2] = (99, 1001)  # 1001 is a cortical parcel: valid only in aparc+aseg.mgz
    nib.save(nib.MGHImage(aseg, volumes.lia_affine), str(path))
    with pytest.raises(ValueError, match=r"Caltech_0051456/mri/aseg\.mgz.*\[99, 1001\].*aseg label table"):
        ingest("abide", source, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_orientation_mismatch_names_both_files(make_abide, out_dir, volumes):
    source = make_abide(subjects=("Yale_0050551",))
    aseg, _ = volumes.abide_labels()
    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    nib.save(nib.MGHImage(aseg, ras), str(source / "Yale_0050551" / "mri" / "aseg.mgz"))
    with pytest.raises(ValueError, match=r"aseg\.mgz: orientation RAS differs from .*brainmask\.mgz orientation LIA"):
        ingest("abide", source, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_corrupt_mgz_names_file(make_abide, out_dir):
    source = make_abide()
    path = source / "CMU_a_0050642" / "mri" / "brainmask.mgz"
    path.write_bytes(b"definitely not gzip")
    with pytest.raises(ValueError, match=r"CMU_a_0050642/mri/brainmask\.mgz"):
        ingest("abide", source, out_dir)
    assert not (out_dir / "manifest.csv").exists()


def test_label_without_image(make_abide, out_dir):
    source = make_abide(subjects=("KKI_0050772",))
    (source / "KKI_0050772" / "mri" / "brainmask.mgz").unlink()
    with pytest.raises(ValueError, match=r"KKI_0050772/mri/aseg\.mgz.*brainmask\.mgz"):
        ingest("abide", source, out_dir)


def test_unlabelled_and_template_subjects_skipped(make_abide, out_dir, caplog):
    source = make_abide(subjects=("OHSU_0050142", "SDSU_0050182", "fsaverage"))
    (source / "SDSU_0050182" / "mri" / "aseg.mgz").unlink()
    (source / "stats_only").mkdir()
    with caplog.at_level(logging.WARNING):
        table = read_manifest(ingest("abide", source, out_dir))
    assert list(table.subject) == ["OHSU_0050142"]
    assert "SDSU_0050182" in caplog.text


def test_site_from_phenotypic_table_and_override(make_abide, out_dir, tmp_path):
    source = make_abide(subjects=("Caltech_0051456", "0050003"))
    (source / "phenotypic.csv").write_text(
        "SUB_ID,SITE_ID,FILE_ID\n51456,CALTECH_T,Caltech_0051456\n50003,PITT,no_filename\n")
    table = read_manifest(ingest("abide", source, out_dir))
    assert dict(zip(table.subject, table.site)) == {"0050003": "PITT", "Caltech_0051456": "CALTECH_T"}
    table = read_manifest(ingest("abide", source, tmp_path / "out2", site="ONE"))
    assert set(table.site) == {"ONE"}


def test_site_unknown_is_an_error(make_abide, out_dir):
    source = make_abide(subjects=("sub-01",))
    with pytest.raises(ValueError, match=r"sub-01.*--site"):
        ingest("abide", source, out_dir)


@pytest.mark.parametrize(("name", "site"), [
    ("Caltech_0051456", "CALTECH"), ("Leuven_1_0050682", "LEUVEN_1"), ("UM_2_0050380", "UM_2"),
    ("CMU_b_0050649", "CMU"), ("MaxMun_d_0051606", "MAX_MUN"), ("Stanford_0051160", "STANFORD"),
    ("sub-01", None), ("0051456", None),
])
def test_site_from_name(name, site):
    assert site_from_name(name) == site


def test_aseg_table_is_complete_and_valid():
    assert set(ASEG_TO_TISSUE.values()) == {0, 1, 2, 3}
    documented = {0, 2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 26, 28, 30, 31, 41, 42, 43,
                  44, 46, 47, 49, 50, 51, 52, 53, 54, 58, 60, 62, 63, 72, 77, 80, 85, 251, 252, 253, 254, 255}
    assert documented <= set(ASEG_TO_TISSUE)
    expected = {0: 0, 2: 3, 41: 3, 3: 2, 42: 2, 4: 1, 43: 1, 7: 3, 8: 2, 10: 2, 13: 2, 14: 1, 16: 3, 17: 2,
                24: 1, 28: 3, 30: 1, 31: 1, 72: 1, 77: 3, 80: 2, 85: 3, 251: 3, 255: 3}
    assert {k: ASEG_TO_TISSUE[k] for k in expected} == expected
    # left/right pairs agree
    pairs = [(2, 41), (3, 42), (4, 43), (5, 44), (7, 46), (8, 47), (10, 49), (11, 50), (12, 51), (13, 52),
             (17, 53), (18, 54), (26, 58), (28, 60), (30, 62), (31, 63)]
    assert all(ASEG_TO_TISSUE[a] == ASEG_TO_TISSUE[b] for a, b in pairs)
    assert all(APARC_ASEG_TO_TISSUE[v] == 2 for v in (*range(1000, 1036), *range(2000, 2036)))
    assert 1001 not in ASEG_TO_TISSUE
