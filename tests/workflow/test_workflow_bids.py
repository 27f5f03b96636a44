"""The workflow on a BIDS-sourced dataset (``source: bids``): imported, preprocessed and split
like any other dataset; subjects without labels stay out of the study."""

from __future__ import annotations

import sys

import pytest
import yaml

from dnorm.manifest import read_manifest
from workflow_helpers import REPO, link_workflow, snakemake

sys.path.insert(0, str(REPO / "tests" / "ingest"))
from bids_layouts import build_bids  # noqa: E402

pytestmark = pytest.mark.workflow


def test_a_bids_dataset_is_imported_and_preprocessed(tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    link_workflow(root)
    source = build_bids(tmp_path / "ds")
    override = {"run_name": "bids", "datasets": {"abide": {"source": "bids", "path": str(source),
                                                           "split": [0.34, 0.33, 0.33]}}}
    (root / "bids.yaml").write_text(yaml.safe_dump(override))
    result = snakemake(root, "--configfile", "config/tiny.yaml", "bids.yaml", "--cores", "2",
                       "results/bids/preprocessed/manifest.csv")
    assert result.returncode == 0, result.stderr[-4000:]
    table = read_manifest(root / "results" / "bids" / "preprocessed" / "manifest.csv")
    bids = table[table.dataset == "abide"]
    assert sorted(bids.subject) == ["sub-01", "sub-02_ses-1", "sub-02_ses-2"]  # sub-03 has no labels
    assert sorted(bids.site) == ["A", "B", "B"]
    assert sorted(bids.split) == ["test", "train", "val"]
    assert (root / "results" / "bids" / "raw" / "abide" / "ingested" / "unlabelled.csv").is_file()
