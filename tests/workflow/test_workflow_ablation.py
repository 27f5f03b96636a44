"""config/ablation.yaml end to end on tiny data: one job per cell, the study's own trainings
reused as the default cells of its seed, the shared warm-up reused where a variant keeps it,
and the ablation table in the report's outputs."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from workflow_helpers import link_workflow, snakemake

LAYER = {
    "run_name": "tiny_ablation",
    "experiments_enabled": ["preprocessor_dual", "ours_dual"],
    "ablation": {"experiments": ["preprocessor_dual", "ours_dual"], "seeds": [20220331, 1],
                 "variants": {"default": {}, "rampup_off": {"adversarial_rampup": 0},
                              "pooled_dice": {"dice_reduction": "pooled"}}},
}


@pytest.fixture(scope="module")
def ablation_workdir(tmp_path_factory):
    root = link_workflow(tmp_path_factory.mktemp("ablation"))
    (root / "layer.yaml").write_text(yaml.safe_dump(LAYER, sort_keys=False))
    return root


@pytest.fixture(scope="module")
def ablation_run(ablation_workdir):
    # Only the table and what it needs: the study's evaluation is covered by the tiny run's tests.
    result = snakemake(ablation_workdir, "--configfile", "config/tiny.yaml", "layer.yaml", "--cores", "2",
                       "results/tiny_ablation/tables/ablation.csv")
    assert result.returncode == 0, result.stderr[-4000:]
    return ablation_workdir / "results" / "tiny_ablation"


def test_the_default_target_includes_the_ablation_table(ablation_workdir):
    result = snakemake(ablation_workdir, "--configfile", "config/tiny.yaml", "layer.yaml", "--cores", "2",
                       "--dry-run", "--forceall", "--quiet", "rules")
    assert result.returncode == 0, result.stderr[-4000:]
    planned = result.stdout + result.stderr
    assert "tabulate_ablation" in planned and "train_ablation_cell" in planned and "score_segmentations" in planned


def test_every_cell_is_in_the_table_with_both_seeds(ablation_run):
    table = pd.read_csv(ablation_run / "tables" / "ablation.csv")
    assert list(zip(table.experiment, table.variant)) == [
        ("preprocessor_dual", "default"), ("preprocessor_dual", "pooled_dice"),
        ("ours_dual", "default"), ("ours_dual", "rampup_off"), ("ours_dual", "pooled_dice")]
    assert (table.seeds == 2).all() and table["val mean DSC"].between(0, 1).all()
    assert table.set_index("variant").loc["rampup_off", "overrides"] == "adversarial_rampup=0"


def test_the_studys_training_is_the_default_cell_of_its_seed(ablation_run):
    cell = pd.read_csv(ablation_run / "ablation" / "ours_dual" / "default" / "seed-20220331.csv").iloc[0]
    history = pd.read_csv(ablation_run / "models" / "ours_dual" / "seed-20220331" / "history.csv")
    assert cell["val_dice_mean"] == pytest.approx(history[history.phase == "train"].val_dice_mean.iloc[-1], abs=1e-5)
    # the other seed's default is trained for the ablation, as a model nowhere else
    assert (ablation_run / "ablation" / "ours_dual" / "default" / "seed-1.csv").is_file()
    assert not (ablation_run / "models" / "ours_dual" / "seed-1").exists()


def test_warm_ups_are_shared_only_by_variants_that_keep_them(ablation_run):
    # one shared warm-up per seed: default and rampup_off start from it; pooled_dice warms up itself
    warmups = sorted(p.parent.name for p in (ablation_run / "warmups").rglob("warmup.pt"))
    assert warmups == ["seed-1", "seed-20220331"]
    log = (ablation_run / "logs" / "train_ablation_cell" / "ours_dual" / "rampup_off" / "seed-1.log").read_text()
    assert "starts from the shared warm-up" in log
    log = (ablation_run / "logs" / "train_ablation_cell" / "ours_dual" / "pooled_dice" / "seed-1.log").read_text()
    assert "starts from the shared warm-up" not in log and "warmup 1" in log
