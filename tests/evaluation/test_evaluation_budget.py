"""The budget curve: which experiments form one, and its table of validation and test Dice."""

import pandas as pd
import pytest

from dnorm.evaluation import paper
from dnorm.evaluation.budget import budget_curve_table, budget_curves, budget_experiments, write_budget_curve_table
from dnorm.training.experiment import experiment_from_config
from evaluation_builders import DUAL, experiment_segmentation, paper_config, without

BUDGET_EXTRA = {
    "standardization_dual_x2": {"method": "standardization", "datasets": DUAL, "budget": 2},
    "ours_dual_x2": {"method": "ours", "datasets": DUAL, "lambda": 1.5, "budget": 2},
    "ours_dual_x4": {"method": "ours", "datasets": DUAL, "lambda": 1.5, "budget": 4},
}


def budget_config():
    config = paper_config(without(extra=BUDGET_EXTRA))
    config["training"]["epochs"] = 4  # not the shipped default's, which may change
    return config


def history(val_mean, val_csf, warmup_mean=0.1):
    """A warm-up epoch (its validation Dice must not count) and two joint epochs."""
    return pd.DataFrame({"phase": ["warmup", "train", "train"], "epoch": [1, 1, 2],
                         "val_dice_mean": [warmup_mean, 0.5, val_mean], "val_dice_csf": [warmup_mean, 0.4, val_csf]})


def test_experiments_differing_only_in_budget_form_a_curve_sorted_by_budget():
    curves = budget_curves(budget_config())
    assert {name: [e.name for e in members] for name, members in curves.items()} == {
        "standardization_dual": ["standardization_dual", "standardization_dual_x2"],
        "ours_dual": ["ours_dual", "ours_dual_x2", "ours_dual_x4"],
    }
    # Another lambda or modality is another curve: λ 0.1 and T1 + T2 stay out.
    assert "ours_dual_lambda0.1" not in budget_experiments(budget_config())
    assert budget_curves(paper_config()) == {}


def test_two_experiments_with_one_budget_on_one_curve_are_an_error_naming_both():
    config = paper_config(without(extra={**BUDGET_EXTRA, "ours_dual_copy": {"method": "ours", "datasets": DUAL,
                                                                          "lambda": 1.5, "budget": 4}}))
    with pytest.raises(ValueError, match="ours_dual_copy and ours_dual_x4|ours_dual_x4 and ours_dual_copy"):
        budget_curves(config)


def test_budget_scales_the_joint_epochs_and_must_give_whole_epochs():
    config = budget_config()
    assert experiment_from_config("ours_dual_x4", config).joint_epochs(config["training"]) == 16
    assert experiment_from_config("ours_dual", config).joint_epochs({"epochs": 3}) == 3
    config["experiments"]["ours_dual_x4"]["budget"] = 0.3
    with pytest.raises(ValueError, match=r"experiments\.ours_dual_x4\.budget 0\.3 × 4 epochs = 1\.2"):
        experiment_from_config("ours_dual_x4", config)


def test_other_budgets_stay_out_of_the_paper_tables():
    rows = paper.table3_rows(budget_config())
    assert [r.experiment for r in rows if r.setting == "dual"] == ["standardization_dual", "preprocessor_dual",
                                                                    "ours_dual"]
    assert [r.experiment for r in paper.table7_rows(budget_config())] == [
        "ours_dual_lambda0.1", "ours_dual", "ours_dual_lambda5.0"]


def _inputs(seeds=(1, 2)):
    dice = {"standardization_dual": 0.80, "standardization_dual_x2": 0.82, "ours_dual": 0.70, "ours_dual_x2": 0.78,
            "ours_dual_x4": 0.84}
    segmentation = pd.DataFrame([row for name, value in dice.items()
                                 for row in experiment_segmentation(name, DUAL, lambda seed, _: (value + seed / 100,
                                                                                                 0.5, 0.5),
                                                                    seeds=seeds)])
    histories = {(name, seed): history(value + 0.01 * seed, value - 0.1) for name, value in dice.items() for seed in seeds}
    return histories, segmentation


def test_the_table_has_one_row_per_model_with_last_joint_validation_and_test_dice():
    histories, segmentation = _inputs()
    table = budget_curve_table(histories, segmentation, budget_config())
    assert len(table) == 10
    row = table[(table.experiment == "ours_dual_x4") & (table.seed == 2)].iloc[0]
    assert (row.curve, row.setting, row.budget, row["joint epochs"]) == ("Ours (λ 1.5)", "dual", 4.0, 16)
    assert row["val mean DSC"] == pytest.approx(0.86) and row["val CSF DSC"] == pytest.approx(0.74)
    assert row["test CSF DSC"] == pytest.approx(0.86)
    assert row["test mean DSC"] == pytest.approx((0.86 + 0.5 + 0.5) / 3, abs=1e-4)


def test_a_model_without_test_scores_or_history_is_named():
    histories, segmentation = _inputs()
    with pytest.raises(ValueError, match="ours_dual_x4"):
        budget_curve_table(histories, segmentation[segmentation.experiment != "ours_dual_x4"], budget_config())
    del histories[("ours_dual_x2", 1)], histories[("ours_dual_x2", 2)]
    with pytest.raises(ValueError, match="no training history for experiment ours_dual_x2"):
        budget_curve_table(histories, segmentation, budget_config())


def test_write_budget_curve_table_pairs_models_with_their_files(tmp_path):
    histories, segmentation = _inputs(seeds=(1,))
    models, history_paths = [], []
    for (name, seed), frame in histories.items():
        history_paths.append(tmp_path / f"{name}_{seed}.csv")
        frame.to_csv(history_paths[-1], index=False)
        models.append((name, seed))
    segmentation.to_csv(tmp_path / "segmentation.csv", index=False)
    out = tmp_path / "budget_curve.csv"
    write_budget_curve_table(models, history_paths, [tmp_path / "segmentation.csv"], budget_config(), out)
    table = pd.read_csv(out)
    assert table.set_index("experiment")["val mean DSC"].to_dict() == pytest.approx(
        {"standardization_dual": 0.81, "standardization_dual_x2": 0.83, "ours_dual": 0.71, "ours_dual_x2": 0.79,
         "ours_dual_x4": 0.85})
