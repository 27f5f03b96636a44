import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnorm.datasets import import_dataset
from dnorm.manifest import read_manifest, write_manifest

sys.path.insert(0, str(Path(__file__).resolve().parent / "ingest"))
from real_layouts import build_iseg  # noqa: E402


def own_manifest(folder: Path) -> Path:
    rows = []
    for dataset, subject in (("clinic", "p1"), ("clinic", "p2"), ("other", "q1")):
        paths = {}
        for column in ("t1", "label"):
            paths[column] = str(folder / f"{subject}_{column}.nii.gz")
            nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)), paths[column])
        rows.append(dict(dataset=dataset, subject=subject, site="scanner-a", split="", t2="",
                         spacing="1.000x1.000x1.000", **paths))
    write_manifest(pd.DataFrame(rows), folder / "own.csv")
    return folder / "own.csv"


def test_own_manifest_rows_of_the_dataset_are_imported(tmp_path):
    manifest = import_dataset("clinic", {"source": "manifest", "path": str(own_manifest(tmp_path))}, tmp_path / "raw")
    table = read_manifest(manifest)
    assert table.subject.tolist() == ["p1", "p2"] and set(table.dataset) == {"clinic"}
    assert table.t1[0] == str(tmp_path / "p1_t1.nii.gz")


def test_a_manifest_without_the_dataset_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="own.csv: no rows with dataset 'absent'"):
        import_dataset("absent", {"source": "manifest", "path": str(own_manifest(tmp_path))}, tmp_path / "raw")
    assert not (tmp_path / "raw" / "manifest.csv").exists()


def test_ingested_real_data_takes_the_config_name(tmp_path):
    source = build_iseg(tmp_path / "iSEG", labelled=(1, 2))
    table = read_manifest(import_dataset("infants", {"source": "iseg", "path": str(source)}, tmp_path / "raw"))
    assert set(table.dataset) == {"infants"} and table.subject.tolist() == ["subject-1", "subject-2"]
