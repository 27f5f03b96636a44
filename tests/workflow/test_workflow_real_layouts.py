"""The workflow on real-data layouts: iSEG (Analyze), MRBrainS (NIfTI) and ABIDE (FreeSurfer MGH)
fixtures are imported, preprocessed and trained on exactly like the synthetic benchmark."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from dnorm.manifest import read_manifest
from workflow_helpers import REPO, link_workflow, snakemake

sys.path.insert(0, str(REPO / "tests" / "ingest"))
from real_layouts import build_abide, build_iseg, build_mrbrains  # noqa: E402

pytestmark = pytest.mark.workflow
SHAPE = (12, 14, 10)


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    link_workflow(root)
    sources = {
        "iseg": build_iseg(root / "src" / "iSEG", labelled=(1, 2, 3)),
        "mrbrains": build_mrbrains(root / "src" / "MRBrainS13", labelled=(1, 2, 3)),
        "abide": build_abide(root / "src" / "ABIDE", subjects=("Caltech_0051456", "CMU_a_0050642", "NYU_0050952")),
    }
    override = {"run_name": "real",
                "datasets": {name: {"source": name, "path": str(path), "split": [0.34, 0.33, 0.33]}
                             for name, path in sources.items()}}
    (root / "real.yaml").write_text(yaml.safe_dump(override))
    targets = ["results/real/preprocessed/manifest.csv", "results/real/models/ours_multi/seed-20220331/model.pt"]
    result = snakemake(root, "--configfile", "config/tiny.yaml", "real.yaml", "--cores", "2", *targets)
    assert result.returncode == 0, result.stderr[-4000:]
    return root / "results" / "real"


def test_imported_subjects_keep_their_ids_and_sites(real_run):
    table = read_manifest(real_run / "preprocessed" / "manifest.csv")
    assert sorted(table[table.dataset == "iseg"].subject) == ["subject-1", "subject-2", "subject-3"]
    assert sorted(table[table.dataset == "mrbrains"].subject) == ["1", "2", "3"]
    assert sorted(table[table.dataset == "abide"].site) == ["CALTECH", "CMU", "NYU"]
    assert (table[table.dataset != "abide"].t2 != "").all()
    for dataset, group in table.groupby("dataset"):
        assert sorted(group.split) == ["test", "train", "val"], dataset


def test_preprocessed_volumes_share_one_grid(real_run):
    import nibabel as nib

    table = read_manifest(real_run / "preprocessed" / "manifest.csv")
    shapes = {nib.load(p).shape for p in table.label}
    assert shapes == {(32, 32, 32)}
    assert set(table.spacing) == {"4.000x4.000x4.000"}
    labels = np.asarray(nib.load(table.label.iloc[0]).dataobj)
    assert set(np.unique(labels)) <= {0, 1, 2, 3}


def test_a_model_trains_on_the_imported_datasets(real_run):
    assert (real_run / "models" / "ours_multi" / "seed-20220331" / "model_card.json").stat().st_size > 0
