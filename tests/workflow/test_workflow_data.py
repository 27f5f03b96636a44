"""The data part of the Snakemake workflow, end to end on the tiny config, in a scratch copy."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from dnorm.manifest import read_manifest

from workflow_helpers import link_workflow, snakemake

pytestmark = pytest.mark.workflow


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


def test_a_bad_label_fails_its_rule_names_the_file_and_leaves_no_output(tmp_path):
    workdir = tmp_path
    link_workflow(workdir)
    run = workdir / "results" / "tiny"
    assert snakemake(workdir, "--configfile", "config/tiny.yaml", "--cores", "1",
                     "results/tiny/raw/iseg/manifest.csv").returncode == 0
    raw = read_manifest(run / "raw" / "iseg" / "manifest.csv")
    label = nib.load(raw.label[0])
    broken = np.asarray(label.dataobj).copy()
    broken[0, 0, 0] = 7
    nib.save(nib.Nifti1Image(broken, label.affine), raw.label[0])
    result = snakemake(workdir, "--configfile", "config/tiny.yaml", "--cores", "1",
                       "results/tiny/cropped/iseg/manifest.csv")
    assert result.returncode != 0
    log = (run / "logs" / "preprocess_dataset" / "iseg.log").read_text()
    assert f"{raw.label[0]}: unexpected label value(s) [7]" in log
    assert not (run / "cropped" / "iseg" / "manifest.csv").exists()


def test_lint_is_clean(workdir):
    result = snakemake(workdir, "--lint")
    assert result.returncode == 0 and "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr
