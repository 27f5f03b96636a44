"""The ablation table: mean ± sd over seeds and the paired difference to the default."""

import math

import pandas as pd
import pytest

from dnorm.evaluation.ablation import ablation_table, write_ablation_table


def cell(experiment, variant, seed, mean, csf, ratio=float("nan")):
    return {"experiment": experiment, "variant": variant, "seed": seed, "overrides": f"{variant}=1",
            "val_dice_mean": mean, "val_dice_csf": csf, "train_grad_ratio": ratio, "warmup_epochs": 3, "minutes": 5.0}


CELLS = pd.DataFrame([
    cell("ours", "rampup_off", 1, 0.80, 0.70, 6.0), cell("ours", "rampup_off", 2, 0.70, 0.60, 8.0),
    cell("ours", "default", 1, 0.85, 0.80, 3.0), cell("ours", "default", 2, 0.81, 0.70, 4.0),
    cell("pre", "default", 2, 0.87, 0.88), cell("pre", "default", 1, 0.86, 0.86),
    cell("pre", "pooled", 1, 0.84, 0.80),
])


def test_rows_summarize_seeds_and_pair_each_seed_with_its_default():
    table = ablation_table(CELLS).set_index(["experiment", "variant"])
    row = table.loc[("ours", "rampup_off")]
    assert row["seeds"] == 2 and row["seed list"] == "1 2"
    assert row["val mean DSC"] == pytest.approx(0.75) and row["val mean DSC sd"] == pytest.approx(0.0707, abs=1e-4)
    assert row["val mean DSC per seed"] == "0.800 / 0.700"
    # paired: (0.80 − 0.85 + 0.70 − 0.81) / 2, not the difference of means over unequal seed sets
    assert row["val mean DSC − default"] == pytest.approx(-0.08)
    assert row["val CSF DSC − default"] == pytest.approx(-0.10)
    assert row["gradient ratio"] == pytest.approx(7.0)
    assert table.loc[("ours", "default"), "val mean DSC − default"] == pytest.approx(0.0)
    # one seed: no sd; paired with seed 1's default only
    pooled = table.loc[("pre", "pooled")]
    assert math.isnan(pooled["val mean DSC sd"]) and pooled["val mean DSC − default"] == pytest.approx(-0.02)


def test_defaults_come_first_then_variants_in_the_configs_order():
    cells = pd.concat([CELLS, pd.DataFrame([cell("ours", "a_first_by_name", 1, 0.8, 0.8)])])
    table = ablation_table(cells, variant_order=["default", "rampup_off", "a_first_by_name"])
    assert list(zip(table.experiment, table.variant)) == [
        ("ours", "default"), ("ours", "rampup_off"), ("ours", "a_first_by_name"), ("pre", "default"), ("pre", "pooled")]


def test_a_variant_without_its_default_has_no_difference():
    table = ablation_table(CELLS[CELLS.variant != "default"])
    assert table[["val mean DSC − default"]].isna().all().all()


def test_the_table_is_written_from_the_cells_files(tmp_path):
    paths = []
    for index, row in CELLS.iterrows():
        paths.append(tmp_path / f"{index}.csv")
        pd.DataFrame([row]).to_csv(paths[-1], index=False)
    written = write_ablation_table(paths, ["default"], tmp_path / "ablation.csv")
    assert pd.read_csv(tmp_path / "ablation.csv").shape == written.shape == (4, written.shape[1])
