"""The paper's claims C1-C6: held, NOT held, or not evaluated (dnorm.evaluation.claims)."""

from __future__ import annotations

import pytest

from dnorm.evaluation import claims as claims_module
from evaluation_builders import (BIAS_COLUMNS, DISCRIMINATOR_COLUMNS, DIVERGENCE_COLUMNS, bias_rows, divergence_rows,
                                 evaluated_on, frame, paper_config, study, without)

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
    assert list(table.columns) == ["claim", "statement", "criterion", "verdict", "measured", "paper"]
    assert list(table.claim) == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert all(table.criterion.str.len() > 0) and all(table.paper.str.len() > 0)


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
    assert "D acc. generated test: 90.0 % → 40.0 % → 20.0 %" in held["measured"]
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
