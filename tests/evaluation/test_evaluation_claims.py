"""The paper's claims C1-C6: held, NOT held, or not evaluated (dnorm.evaluation.claims)."""

from __future__ import annotations

import pytest

from dnorm.evaluation import claims as claims_module
import numpy as np
import pandas as pd

from evaluation_builders import (BIAS_COLUMNS, DISCRIMINATOR_COLUMNS, DIVERGENCE_COLUMNS, bias_rows, confusion,
                                 discriminator_rows, divergence_rows, evaluated_on, frame, paper_config, study,
                                 without)

HELD, NOT_HELD, NOT_EVALUATED = "held", "NOT held", "not evaluated"


def verdicts(config=None, **overrides) -> dict[str, str]:
    config = config or paper_config()
    segmentation, divergence, bias, discriminator = study(config=config, **overrides)
    table = claims_module.claims(segmentation, divergence, bias, discriminator, config, evaluated_on(config))
    return dict(zip(table.claim, table.verdict))


def test_every_claim_holds_on_the_papers_pattern():
    assert verdicts() == {f"C{i}": HELD for i in range(1, 7)}


def test_claims_table_columns_and_rows():
    config = paper_config()
    table = claims_module.claims(*study(), config, evaluated_on(config))
    # The report's claims section opens with these columns: a reader sees the verdicts in one screen.
    assert list(table.columns[:7]) == ["claim", "verdict", "criterion", "measured", "paper", "seeds",
                                       "seeds agreeing"]
    assert list(table.claim) == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert all(table.criterion.str.len() > 0) and all(table.paper.str.len() > 0)
    assert list(table.seeds) == [1] * 6 and list(table["seeds agreeing"]) == ["1/1"] * 6


def test_claim1_held_and_not_held():
    config = paper_config()
    held = claims_module.claim1(study()[0], config, evaluated_on(config))
    assert held["verdict"] == HELD
    assert "0.400 vs 0.900" in held["measured"] and "0.425 vs 0.868" in held["paper"]
    # MRBrainS -> iSEG loses only 1 - 0.8 / 0.85 = 6 % (< 25 %).
    small_loss = study(dice={"unet_mrbrains": {"mrbrains": 0.85, "iseg": 0.80}})[0]
    assert claims_module.claim1(small_loss, config, evaluated_on(config))["verdict"] == NOT_HELD


def test_claim1_threshold_is_a_quarter_of_the_same_dataset_dice():
    config = paper_config()
    just = study(dice={"unet_iseg": {"iseg": 0.8, "mrbrains": 0.59},
                       "unet_mrbrains": {"mrbrains": 0.8, "iseg": 0.59}})[0]  # 26 % lost
    assert claims_module.claim1(just, config, evaluated_on(config))["verdict"] == HELD
    short = study(dice={"unet_iseg": {"iseg": 0.8, "mrbrains": 0.61},
                        "unet_mrbrains": {"mrbrains": 0.8, "iseg": 0.59}})[0]  # 24 % lost on one
    assert claims_module.claim1(short, config, evaluated_on(config))["verdict"] == NOT_HELD


def test_claim1_not_evaluated_without_cross_dataset_unets():
    config = paper_config(without("unet_iseg", "unet_mrbrains"))
    assert claims_module.claim1(study(config=config)[0], config, evaluated_on(config))["verdict"] == NOT_EVALUATED
    no_cross = paper_config(without("unet_iseg", "unet_mrbrains", extra={
        "unet_iseg": {"method": "unet", "datasets": ["iseg"]}}))  # tested on its own dataset only
    assert claims_module.claim1(study(config=no_cross)[0], no_cross,
                                evaluated_on(no_cross))["verdict"] == NOT_EVALUATED


def test_claim2_held_and_not_held():
    config = paper_config()
    held = claims_module.claim2(study()[0], config)
    assert held["verdict"] == HELD
    assert "dual: Standardization 0.800, Pre-processor 0.870, Ours 0.865" in held["measured"]
    assert "dual: Standardization 0.841, Pre-processor 0.870, Ours 0.867" in held["paper"]
    # Ours 0.02 below Pre-processor in the multi setting.
    behind = study(dice={"ours_multi": 0.87, "preprocessor_multi": 0.89})[0]
    assert claims_module.claim2(behind, config)["verdict"] == NOT_HELD
    # Standardization best in the dual setting.
    standardization_wins = study(dice={"standardization_dual": 0.9})[0]
    assert claims_module.claim2(standardization_wins, config)["verdict"] == NOT_HELD


def test_claim2_ignores_a_unet_baseline_of_the_setting():
    config = paper_config(without(extra={"unet_dual": {"method": "unet", "datasets": ["iseg", "mrbrains"]}}))
    segmentation = study(config=config, dice={"unet_dual": 0.95})[0]  # beats every method
    result = claims_module.claim2(segmentation, config)
    assert result["verdict"] == HELD and "U-Net" not in result["measured"]


def test_claim2_not_evaluated_without_all_three_methods():
    config = paper_config(without("ours_dual", "ours_multi"))
    assert claims_module.claim2(study(config=config)[0], config)["verdict"] == NOT_EVALUATED


def test_claim3_held_and_not_held():
    config = paper_config()
    divergence = study()[1]
    assert claims_module.claim3(divergence, config)["verdict"] == HELD
    far = divergence[divergence.experiment != "ours_multi"]
    near = frame(far.to_dict("records"), divergence_rows("ours_multi", 2.0, 1.2, datasets="iseg+mrbrains+abide"))
    result = claims_module.claim3(near, config)
    assert result["verdict"] == NOT_HELD and "multi Ours: ratio 0.600" in result["measured"]
    assert "dual Pre-processor: ratio 0.134" in result["paper"]


def test_claim3_not_evaluated_without_divergence_or_generators():
    config = paper_config()
    assert claims_module.claim3(frame([], columns=DIVERGENCE_COLUMNS), config)["verdict"] == NOT_EVALUATED
    assert claims_module.claim3(frame([]), config)["verdict"] == NOT_EVALUATED
    only_standardization = paper_config({"standardization_dual": {"method": "standardization",
                                                                  "datasets": ["iseg", "mrbrains"]}})
    assert claims_module.claim3(study()[1], only_standardization)["verdict"] == NOT_EVALUATED


def test_claim4_held_and_not_held():
    config = paper_config()
    held = claims_module.claim4(study()[0], config)
    assert held["verdict"] == HELD and held["measured"] == "T1 0.865, T1 + T2 0.880"
    assert held["paper"] == "T1 0.867, T1 + T2 0.887"
    worse = study(dice={"ours_dual_t1t2": 0.85})[0]
    assert claims_module.claim4(worse, config)["verdict"] == NOT_HELD


def test_claim4_not_evaluated_without_t1_t2():
    config = paper_config(without("ours_dual_t1t2"))
    assert claims_module.claim4(study(config=config)[0], config)["verdict"] == NOT_EVALUATED


def test_claim5_held_and_not_held():
    bias = study()[2]
    assert claims_module.claim5(bias)["verdict"] == HELD
    # The original images (alpha 0) do not count: normalized rho above degraded there is fine.
    assert (bias[bias.alpha == 0].rho_normalized > bias[bias.alpha == 0].rho_degraded).all()
    one_alpha_worse = frame(bias[~((bias.alpha == 0.7) & (bias.dataset == "iseg"))].to_dict("records"),
                            bias_rows("ours_dual_bias", "iseg", 0.7, 0.3, 0.31))
    result = claims_module.claim5(one_alpha_worse)
    assert result["verdict"] == NOT_HELD and "iSEG α 0.7: 0.300 → 0.310" in result["measured"]
    assert "MRBrainS α 0.3: 0.098 → 0.053" in result["paper"]


def test_claim5_compares_means_over_subjects_and_seeds():
    rows = bias_rows("ours_dual_bias", "iseg", 0.5, [0.4, 0.2], [0.5, 0.0], subjects=("s1", "s2"))  # 0.3 > 0.25
    assert claims_module.claim5(frame(rows))["verdict"] == HELD


def test_claim5_not_evaluated_without_degraded_images():
    assert claims_module.claim5(frame([], columns=BIAS_COLUMNS))["verdict"] == NOT_EVALUATED
    assert claims_module.claim5(frame([]))["verdict"] == NOT_EVALUATED
    original_only = frame(bias_rows("ours_dual_bias", "iseg", 0.0, 0.1, 0.0))
    assert claims_module.claim5(original_only)["verdict"] == NOT_EVALUATED


def test_claim6_held_and_not_held():
    config = paper_config()
    segmentation, _, _, discriminator = study()
    held = claims_module.claim6(segmentation, discriminator, config)
    assert held["verdict"] == HELD
    assert "Dice: 0.875 → 0.865 → 0.850" in held["measured"]
    # The paper's accuracy over real (8 of 10 right) and generated patches, in eval mode (the
    # builders' batch-statistics rows rise with λ and would make the claim fail).
    assert "D accuracy test: 85.0 → 60.0 → 50.0 %" in held["measured"]
    assert "D accuracy train 99.0 → 44.1 → 44.1 %" in held["paper"]
    dice_rises = study(dice={"ours_dual_lambda5.0": 0.87})[0]
    assert claims_module.claim6(dice_rises, discriminator, config)["verdict"] == NOT_HELD
    accuracy_rises = study(generated_correct={"ours_dual_lambda5.0": 6})[3]
    assert claims_module.claim6(segmentation, accuracy_rises, config)["verdict"] == NOT_HELD


def test_claim6_not_evaluated_with_one_lambda_or_no_discriminator_rows():
    config = paper_config(without("ours_dual_lambda0.1", "ours_dual_lambda5.0"))
    segmentation, _, _, discriminator = study(config=config)
    assert claims_module.claim6(segmentation, discriminator, config)["verdict"] == NOT_EVALUATED
    full = paper_config()
    assert claims_module.claim6(study()[0], frame([], columns=DISCRIMINATOR_COLUMNS),
                                full)["verdict"] == NOT_EVALUATED


@pytest.mark.parametrize("missing, claim", [
    (("unet_iseg", "unet_mrbrains"), "C1"), (("standardization_dual", "standardization_multi"), "C2"),
    (("ours_dual_t1t2",), "C4"), (("ours_dual_bias",), "C5"), (("ours_dual_lambda0.1", "ours_dual_lambda5.0"), "C6"),
])
def test_missing_experiments_leave_only_their_claim_not_evaluated(missing, claim):
    result = verdicts(config=paper_config(without(*missing)))
    assert result[claim] == NOT_EVALUATED
    assert all(v == HELD for k, v in result.items() if k != claim)


# Ties and degenerate values: never "held" ----------------------------------------------------


def _with_dice(segmentation: pd.DataFrame, experiment: str, dataset: str, value: float) -> pd.DataFrame:
    """``segmentation`` with every Dice of ``experiment`` on ``dataset`` set to ``value``."""
    out = segmentation.copy()
    out.loc[(out.experiment == experiment) & (out.dataset == dataset), "dice"] = value
    return out


def test_claim1_zero_or_nan_same_dataset_dice_is_not_evaluated():
    config = paper_config()
    segmentation = study()[0]
    for value in (0.0, np.nan):
        broken = _with_dice(segmentation, "unet_iseg", "iseg", value)
        result = claims_module.claim1(broken, config, evaluated_on(config))
        assert result["verdict"] == NOT_EVALUATED, value
        assert "n/a" in result["measured"]


def test_claim1_tie_and_missing_rows():
    config = paper_config()
    segmentation = study()[0]
    tie = _with_dice(segmentation, "unet_mrbrains", "iseg", 0.85)  # cross = same: no loss
    assert claims_module.claim1(tie, config, evaluated_on(config))["verdict"] == NOT_HELD
    missing = segmentation[~((segmentation.experiment == "unet_iseg") & (segmentation.dataset == "mrbrains"))]
    assert claims_module.claim1(missing, config, evaluated_on(config))["verdict"] == NOT_EVALUATED
    # A failing pair is NOT held even when another pair is undefined.
    both = _with_dice(tie, "unet_iseg", "iseg", 0.0)
    assert claims_module.claim1(both, config, evaluated_on(config))["verdict"] == NOT_HELD


def test_claim2_ties_nan_and_missing_rows():
    config = paper_config()
    tie = study(dice={"preprocessor_dual": 0.80})[0]  # Pre-processor = Standardization
    assert claims_module.claim2(tie, config)["verdict"] == NOT_HELD
    everything_equal = study(dice={k: 0.8 for k in ("standardization_dual", "preprocessor_dual", "ours_dual",
                                                     "standardization_multi", "preprocessor_multi", "ours_multi")})[0]
    assert claims_module.claim2(everything_equal, config)["verdict"] == NOT_HELD
    nan = study(dice={"ours_multi": np.nan})[0]
    assert claims_module.claim2(nan, config)["verdict"] == NOT_EVALUATED
    segmentation = study()[0]
    missing = segmentation[segmentation.experiment != "standardization_multi"]
    assert claims_module.claim2(missing, config)["verdict"] == NOT_EVALUATED


def test_claim3_zero_input_jsd_and_missing_model_are_not_evaluated():
    config = paper_config()
    divergence = study()[1]
    others = divergence[divergence.experiment != "ours_dual"].to_dict("records")
    zero_input = frame(others, divergence_rows("ours_dual", 0.0, 0.0))
    assert claims_module.claim3(zero_input, config)["verdict"] == NOT_EVALUATED
    assert claims_module.claim3(frame(others), config)["verdict"] == NOT_EVALUATED


def test_claim3_pairs_input_and_output_jsd_by_seed():
    config = paper_config({"ours_dual": {"method": "ours", "datasets": ["iseg", "mrbrains"], "lambda": 1.5}})
    rows = divergence_rows("ours_dual", [2.0, 1.0], [0.8, 0.6], seeds=(0, 1))  # ratios 0.4 and 0.6
    result = claims_module.claim3(frame(rows[::-1]), config)  # row order must not matter
    assert result["verdict"] == HELD and "ratio 0.500 ± 0.141" in result["measured"]
    assert result["seeds agreeing"] == "1/2"


def test_claim4_tie_is_not_held_and_nan_not_evaluated():
    config = paper_config()
    assert claims_module.claim4(study(dice={"ours_dual_t1t2": 0.865})[0], config)["verdict"] == NOT_HELD
    assert claims_module.claim4(study(dice={"ours_dual_t1t2": np.nan})[0], config)["verdict"] == NOT_EVALUATED


def test_claim5_tie_is_not_held_and_nan_not_evaluated():
    tie = frame(bias_rows("ours_dual_bias", "iseg", 0.5, 0.3, 0.3))
    assert claims_module.claim5(tie)["verdict"] == NOT_HELD
    nan = frame(bias_rows("ours_dual_bias", "iseg", 0.5, 0.3, 0.1), bias_rows("ours_dual_bias", "iseg", 0.7, 0.4, np.nan))
    assert claims_module.claim5(nan)["verdict"] == NOT_EVALUATED


def _lambda_rows(correct: dict[str, tuple[int, int]], seed: int = 0) -> list[dict]:
    """Discriminator rows per λ experiment: ``(real_correct, generated_correct)`` of 10 per row."""
    return [row for name, (real, generated) in correct.items() for split in ("train", "test")
            for row in discriminator_rows(name, seed, split, confusion(real, generated))]


def test_claim6_flat_series_are_not_held():
    config = paper_config()
    segmentation, _, _, discriminator = study()
    flat_dice = study(dice={"ours_dual_lambda0.1": 0.86, "ours_dual": 0.86, "ours_dual_lambda5.0": 0.86})[0]
    assert claims_module.claim6(flat_dice, discriminator, config)["verdict"] == NOT_HELD
    flat_accuracy = frame(_lambda_rows({e: (8, 5) for e in ("ours_dual_lambda0.1", "ours_dual", "ours_dual_lambda5.0")}))
    assert claims_module.claim6(segmentation, flat_accuracy, config)["verdict"] == NOT_HELD
    # One equal step is allowed when the series still ends lower (the paper's 44.10 → 44.07).
    step = frame(_lambda_rows({"ours_dual_lambda0.1": (9, 9), "ours_dual": (8, 5), "ours_dual_lambda5.0": (8, 5)}))
    assert claims_module.claim6(segmentation, step, config)["verdict"] == HELD


def test_claim6_uses_accuracy_over_real_and_generated_patches():
    config = paper_config()
    segmentation = study()[0]
    # D on generated patches falls with λ (9 → 5 → 2 of 10) but on real patches rises (1 → 5 → 8):
    # the paper's accuracy over all patches is flat (50 %), so the claim is NOT held.
    compensated = frame(_lambda_rows({"ours_dual_lambda0.1": (1, 9), "ours_dual": (5, 5), "ours_dual_lambda5.0": (8, 2)}))
    result = claims_module.claim6(segmentation, compensated, config)
    assert result["verdict"] == NOT_HELD and "D accuracy test: 50.0 → 50.0 → 50.0 %" in result["measured"]


def test_claim6_missing_lambda_rows_and_nan_dice_are_not_evaluated():
    config = paper_config()
    segmentation, _, _, discriminator = study()
    no_middle = discriminator[discriminator.experiment != "ours_dual"]
    assert claims_module.claim6(segmentation, no_middle, config)["verdict"] == NOT_EVALUATED
    nan = study(dice={"ours_dual": np.nan})[0]
    assert claims_module.claim6(nan, discriminator, config)["verdict"] == NOT_EVALUATED


def test_claims_judge_seed_means_and_count_agreeing_seeds():
    config = paper_config()
    # T1 + T2 minus T1 per seed: +0.03, +0.03, -0.01: held on the mean, 2 of 3 seeds agree.
    t1t2 = {0: 0.895, 1: 0.895, 2: 0.855}
    segmentation = study(seeds=(0, 1, 2), dice={"ours_dual_t1t2": lambda seed, subject: t1t2[seed]})[0]
    result = claims_module.claim4(segmentation, config)
    assert result["verdict"] == HELD and result["seeds"] == 3 and result["seeds agreeing"] == "2/3"
    assert result["measured"] == "T1 0.865 ± 0.000, T1 + T2 0.882 ± 0.023"
    # The mean decides even when most seeds disagree: -0.05, +0.01, +0.01 on average -0.01.
    t1t2 = {0: 0.815, 1: 0.875, 2: 0.875}
    segmentation = study(seeds=(0, 1, 2), dice={"ours_dual_t1t2": lambda seed, subject: t1t2[seed]})[0]
    result = claims_module.claim4(segmentation, config)
    assert result["verdict"] == NOT_HELD and result["seeds agreeing"] == "1/3"


def test_a_seed_missing_a_value_does_not_agree():
    config = paper_config()
    segmentation = study(seeds=(0, 1))[0]
    segmentation = segmentation[~((segmentation.experiment == "ours_dual_t1t2") & (segmentation.seed == 1))]
    result = claims_module.claim4(segmentation, config)
    assert result["verdict"] == HELD and result["seeds agreeing"] == "1/2"
