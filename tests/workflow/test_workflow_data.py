"""The data part of the Snakemake workflow, end to end on the tiny config, in a scratch copy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnorm.manifest import read_manifest

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([*SNAKEMAKE, *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A scratch copy of the workflow (links to the repo's files), so results stay out of the repo."""
    root = tmp_path_factory.mktemp("workflow")
    for name in ("Snakefile", "rules", "workflow_scripts", "config", "envs", "profiles"):
        (root / name).symlink_to(REPO / name)
    return root


@pytest.fixture(scope="module")
def tiny_run(workdir) -> Path:
    result = snakemake(workdir, "--configfile", "config/tiny.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir / "results" / "tiny"


def test_manifest_splits_and_common_shape(tiny_run):
    table = read_manifest(tiny_run / "preprocessed" / "manifest.csv")
    assert sorted(table.dataset.unique()) == ["abide", "iseg", "mrbrains"]
    assert (table.groupby("dataset").split.apply(sorted) == pd.Series([["test", "train", "val"]] * 3,
            index=["abide", "iseg", "mrbrains"])).all()
    shapes = {nib.load(path).shape for path in table.t1}
    assert len(shapes) == 1 and min(shapes.pop()) >= 32
    assert set(table.spacing) == {"4.000x4.000x4.000"}
    assert table[table.dataset != "abide"].t2.map(bool).all() and not table[table.dataset == "abide"].t2.map(bool).any()


def test_images_are_scaled_skull_stripped_and_share_the_label_grid(tiny_run):
    for _, row in read_manifest(tiny_run / "preprocessed" / "manifest.csv").iterrows():
        image, labels = nib.load(row.t1), nib.load(row.label)
        np.testing.assert_allclose(image.affine, labels.affine)
        data, label_data = np.asarray(image.dataobj), np.asarray(labels.dataobj)
        assert 0.0 <= data.min() and data.max() <= 1.0
        assert (data[label_data == 0] == 0).all()
        assert set(np.unique(label_data)) == {0, 1, 2, 3}


def test_figure_and_tables_are_written(tiny_run):
    for name in ("fig2_intensity_distributions.png", "fig2b_site_distributions.png"):
        assert (tiny_run / "figures" / name).stat().st_size > 20_000
    gap = pd.read_csv(tiny_run / "tables" / "domain_gap.csv")
    assert sorted(gap.dataset) == ["abide", "iseg", "mrbrains"]
    assert (gap.gm_wm_separation > 0).all()


def test_a_bad_label_fails_its_rule_names_the_file_and_leaves_no_output(tiny_run, workdir):
    raw = read_manifest(tiny_run / "raw" / "iseg" / "manifest.csv")
    label = nib.load(raw.label[0])
    broken = np.asarray(label.dataobj).copy()
    broken[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(broken, label.affine), raw.label[0])
    target = "results/tiny/cropped/iseg/manifest.csv"
    result = snakemake(workdir, "--configfile", "config/tiny.yaml", "--cores", "2", "--force", target)
    assert result.returncode != 0
    log = (tiny_run / "logs" / "preprocess_dataset" / "iseg.log").read_text()
    assert f"{raw.label[0]}: unexpected label value(s) [7]" in log
    assert not (tiny_run / "cropped" / "iseg" / "manifest.csv").exists()


def test_lint_is_clean(workdir):
    result = snakemake(workdir, "--lint")
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr
