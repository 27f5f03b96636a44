"""Tables 2-7 beside the paper's values, discriminator accuracy and paired tests (dnorm.evaluation.tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dnorm.evaluation import tables
from evaluation_builders import (BIAS_COLUMNS, DISCRIMINATOR_COLUMNS, DIVERGENCE_COLUMNS, bias_rows, confusion,
                                 discriminator_rows, divergence_rows, evaluated_on, experiment_segmentation, frame,
                                 paper_config, segmentation_rows, study, without)


def is_note(table: pd.DataFrame) -> bool:
    return list(table.columns) == ["note"] and len(table) == 1


# Table 2 ---------------------------------------------------------------------------------------

def table2_scores(seeds=(0,)) -> pd.DataFrame:
    return frame(segmentation_rows("unet_iseg", "iseg", (0.9, 0.8, 0.7), seeds=seeds),
                 segmentation_rows("unet_iseg", "mrbrains", 0.4, seeds=seeds),
                 segmentation_rows("unet_mrbrains", "mrbrains", 0.85, seeds=seeds),
                 segmentation_rows("unet_mrbrains", "iseg", lambda seed, s: 0.3 + 0.1 * seed, seeds=seeds))


def test_table2_scores_each_row_on_its_test_dataset_beside_the_paper():
    config = paper_config()
    table = tables.table2(table2_scores(), config, evaluated_on(config)).set_index("train → test")
    assert list(table.index) == ["iSEG → iSEG", "iSEG → MRBrainS", "MRBrainS → MRBrainS", "MRBrainS → iSEG"]
    row = table.loc["iSEG → iSEG"]
    assert (row["CSF DSC"], row["GM DSC"], row["WM DSC"], row["mean DSC"]) == ("0.900", "0.800", "0.700", "0.800")
    assert table.loc["iSEG → MRBrainS", "mean DSC"] == "0.400"
    assert table.loc["iSEG → MRBrainS", "experiment"] == "unet_iseg"
    assert table.loc["MRBrainS → iSEG", "mean DSC"] == "0.300"
    assert table.loc["iSEG → iSEG", "CSF DSC (paper)"] == 0.920
    assert table.loc["iSEG → MRBrainS", "mean DSC (paper)"] == 0.425
    assert table.loc["MRBrainS → iSEG", "GM DSC (paper)"] == 0.082
    assert table.loc["MRBrainS → MRBrainS", "WM DSC (paper)"] == 0.839
    assert "CSF MHD (mm)" not in table.columns


def test_table2_with_several_seeds_shows_mean_and_sd():
    config = paper_config()
    table = tables.table2(table2_scores(seeds=(0, 1)), config, evaluated_on(config)).set_index("train → test")
    assert table.loc["MRBrainS → iSEG", "mean DSC"] == "0.350 ± 0.071"
    assert table.loc["iSEG → iSEG", "mean DSC"] == "0.800 ± 0.000"


def test_table2_user_unet_and_test_datasets_entry():
    config = paper_config(without("unet_mrbrains", extra={
        "unet_abide": {"method": "unet", "datasets": ["abide"], "test_datasets": ["abide", "mrbrains"]}}))
    scores = frame(segmentation_rows("unet_iseg", "iseg", 0.9), segmentation_rows("unet_iseg", "mrbrains", 0.4),
                   segmentation_rows("unet_abide", "abide", 0.7), segmentation_rows("unet_abide", "mrbrains", 0.2))
    table = tables.table2(scores, config, evaluated_on(config)).set_index("train → test")
    assert list(table.index) == ["ABIDE → ABIDE", "ABIDE → MRBrainS", "iSEG → iSEG", "iSEG → MRBrainS"]
    assert table.loc["ABIDE → MRBrainS", "mean DSC"] == "0.200"
    assert pd.isna(table.loc["ABIDE → MRBrainS", "mean DSC (paper)"])
    assert pd.isna(table.loc["ABIDE → ABIDE", "CSF DSC (paper)"])
    assert table.loc["iSEG → MRBrainS", "mean DSC (paper)"] == 0.425


def test_table2_without_single_dataset_unets_is_a_note():
    config = paper_config(without("unet_iseg", "unet_mrbrains"))
    assert is_note(tables.table2(frame([]), config, evaluated_on(config)))


# Tables 3 and 5 --------------------------------------------------------------------------------

def test_table3_cells_and_paper_values():
    config = paper_config()
    segmentation = study(seeds=(0,))[0]
    table = tables.table3(segmentation, config)
    assert list(zip(table.setting, table.method)) == [
        ("dual", "Standardization"), ("dual", "Pre-processor"), ("dual", "Ours"),
        ("multi", "Standardization"), ("multi", "Pre-processor"), ("multi", "Ours")]
    row = table.set_index(["setting", "method"]).loc[("dual", "Pre-processor")]
    assert row["experiment"] == "preprocessor_dual"
    assert row["seeds"] == 1
    assert row["mean DSC"] == "0.870" and row["CSF MHD (mm)"] == "2.000"
    assert row["CSF DSC (paper)"] == 0.919 and row["CSF MHD (mm) (paper)"] == 0.227
    assert row["mean DSC (paper)"] == 0.870 and row["mean MHD (mm) (paper)"] == 0.482
    multi = table.set_index(["setting", "method"]).loc[("multi", "Standardization")]
    assert multi["GM DSC (paper)"] == 0.881 and multi["WM MHD (mm) (paper)"] == 0.812


def test_table3_one_seed_no_sd_two_seeds_sd():
    config = paper_config()
    dice = lambda seed, subject: 0.8 + 0.1 * seed  # noqa: E731
    one = frame(experiment_segmentation("ours_dual", ["iseg", "mrbrains"], dice, seeds=(0,)))
    two = frame(experiment_segmentation("ours_dual", ["iseg", "mrbrains"], dice, seeds=(0, 1)))
    config = paper_config({"ours_dual": config["experiments"]["ours_dual"]})
    assert tables.table3(one, config).loc[0, "mean DSC"] == "0.800"
    row = tables.table3(two, config).loc[0]
    assert row["mean DSC"] == "0.850 ± 0.071" and row["seeds"] == 2
    assert "±" in row["CSF MHD (mm)"]


def test_table3_without_models_is_a_note():
    config = paper_config({"unet_iseg": {"method": "unet", "datasets": ["iseg"]}})
    assert is_note(tables.table3(frame([]), config))


def test_table5_t1_against_t1_t2():
    config = paper_config()
    table = tables.table5(study()[0], config).set_index("modalities")
    assert list(table.index) == ["T1", "T1 + T2"]
    assert table.loc["T1", "experiment"] == "ours_dual" and table.loc["T1", "mean DSC"] == "0.865"
    assert table.loc["T1 + T2", "mean DSC"] == "0.880"
    assert table.loc["T1 + T2", "mean DSC (paper)"] == 0.887
    assert table.loc["T1 + T2", "CSF MHD (mm) (paper)"] == 0.165
    assert table.loc["T1", "GM MHD (mm) (paper)"] == 0.492


# Table 4 ---------------------------------------------------------------------------------------

def test_table4_ratio_is_normalized_over_input_per_seed():
    config = paper_config()
    divergence = frame(divergence_rows("preprocessor_dual", [2.0, 4.0], [0.5, 2.0], seeds=(0, 1)),
                       divergence_rows("ours_dual", 2.0, 0.2),
                       divergence_rows("ours_multi", 10.0, 0.5, datasets="iseg+mrbrains+abide"))
    table = tables.table4(divergence, config).set_index(["setting", "method"])
    assert list(table.index) == [("dual", "Pre-processor"), ("dual", "Ours"), ("multi", "Pre-processor"),
                                 ("multi", "Ours")]
    pre = table.loc[("dual", "Pre-processor")]
    assert pre["input JSD"] == "3.0000 ± 1.4142"  # brain rows only: other regions have 100x input JSD
    assert pre["normalized JSD"] == "1.2500 ± 1.0607"
    assert pre["ratio normalized / input"] == "0.375 ± 0.177"  # ratios 0.25 and 0.5, not 1.25 / 3
    ours = table.loc[("dual", "Ours")]
    assert (ours["input JSD"], ours["normalized JSD"], ours["ratio normalized / input"]) == ("2.0000", "0.2000",
                                                                                             "0.100")
    assert table.loc[("multi", "Ours"), "ratio normalized / input"] == "0.050"
    assert table.loc[("multi", "Pre-processor"), "ratio normalized / input"] == "n/a"  # not measured
    assert pre["input JSD (paper)"] == 2.0839 and pre["normalized JSD (paper)"] == 0.2793
    assert pre["ratio (paper)"] == round(0.2793 / 2.0839, 3) == 0.134
    assert table.loc[("multi", "Ours"), "ratio (paper)"] == round(0.4180 / 12.2212, 3)


def test_table4_without_divergence_is_a_note():
    assert is_note(tables.table4(frame([], columns=DIVERGENCE_COLUMNS), paper_config()))
    config = paper_config(without("preprocessor_dual", "ours_dual", "preprocessor_multi", "ours_multi"))
    assert is_note(tables.table4(frame(divergence_rows("ours_dual_t1t2", 2.0, 0.2)), config))


# Table 6 ---------------------------------------------------------------------------------------

def test_table6_averages_subjects_then_seeds_with_paper_values():
    rows = []
    for seed, shift in ((0, 0.0), (1, 0.1)):
        for dataset in ("iseg", "mrbrains"):
            rows += bias_rows("ours_dual_bias", dataset, 0.0, [0.01 + shift, 0.03 + shift], 0.02, seed=seed,
                              subjects=("s1", "s2"))
            rows += bias_rows("ours_dual_bias", dataset, 0.3, [0.2 + shift, 0.4 + shift], [0.1, 0.3], seed=seed,
                              subjects=("s1", "s2"))
    table = tables.table6(frame(rows, columns=BIAS_COLUMNS), paper_config()).set_index("α")
    assert list(table.index) == ["original", "0.3"]
    assert table.loc["0.3", "experiment"] == "ours_dual_bias"
    assert table.loc["0.3", "iSEG ρ degraded"] == "0.3500 ± 0.0707"  # seeds 0.3 and 0.4
    assert table.loc["0.3", "iSEG ρ normalized"] == "0.2000 ± 0.0000"
    assert table.loc["0.3", "MRBrainS slice ρ normalized"] == "0.3000 ± 0.0000"
    assert table.loc["original", "MRBrainS ρ degraded"] == "0.0700 ± 0.0707"
    assert table.loc["0.3", "MRBrainS ρ degraded (paper)"] == 0.0982
    assert table.loc["0.3", "MRBrainS ρ normalized (paper)"] == 0.0534
    assert table.loc["0.3", "iSEG ρ degraded (paper)"] == 0.2560
    assert table.loc["0.3", "iSEG ρ normalized (paper)"] == 0.1192
    assert table.loc["original", "MRBrainS ρ degraded (paper)"] == -0.0199
    assert table.loc["original", "iSEG ρ degraded (paper)"] == 0.0271
    assert pd.isna(table.loc["original", "iSEG ρ normalized (paper)"])


def test_table6_one_seed_has_no_sd_and_other_alphas_no_paper_value():
    rows = bias_rows("ours_dual_bias", "iseg", 0.9, 0.7316, 0.5, seed=3) + \
        bias_rows("ours_dual_bias", "iseg", 0.4, 0.3, 0.2, seed=3)
    table = tables.table6(frame(rows), paper_config()).set_index("α")
    assert table.loc["0.9", "iSEG ρ degraded"] == "0.7316"
    assert table.loc["0.9", "iSEG ρ normalized (paper)"] == 0.5928
    assert pd.isna(table.loc["0.4", "iSEG ρ degraded (paper)"])


def test_table6_without_bias_rows_is_a_note():
    assert is_note(tables.table6(frame([], columns=BIAS_COLUMNS), paper_config()))


# Discriminator and Table 7 ---------------------------------------------------------------------

HAND_COUNTS = {
    ("iseg", "real", "iseg"): 8, ("iseg", "real", "mrbrains"): 1, ("iseg", "real", "generated"): 1,
    ("mrbrains", "real", "mrbrains"): 6, ("mrbrains", "real", "iseg"): 2, ("mrbrains", "real", "generated"): 2,
    ("iseg", "generated", "generated"): 3, ("iseg", "generated", "iseg"): 7,
    ("mrbrains", "generated", "generated"): 5, ("mrbrains", "generated", "mrbrains"): 4,
    ("mrbrains", "generated", "iseg"): 1,
}


def test_discriminator_accuracies_from_counts_by_hand():
    rows = discriminator_rows("ours_dual", 0, "train", HAND_COUNTS) + \
        discriminator_rows("ours_dual", 0, "test", confusion(5, 10)) + \
        discriminator_rows("ours_dual", 0, "test", confusion(10, 0), mode="train")
    accuracy = tables.discriminator_accuracies(frame(rows)).set_index(["experiment", "seed", "split", "mode"])
    train = accuracy.loc[("ours_dual", 0, "train", "eval")]
    assert train.accuracy == pytest.approx(100 * (8 + 6 + 3 + 5) / 40)  # 55 %
    assert train.accuracy_real == pytest.approx(100 * (8 + 6) / 20)  # 70 %
    assert train.accuracy_generated == pytest.approx(100 * (3 + 5) / 20)  # 40 %
    # P(generated) 0.8 on patches called generated, else 0.1: real 3 of 20, generated 8 of 20.
    assert train.p_generated_real == pytest.approx((3 * 0.8 + 17 * 0.1) / 20)
    assert train.p_generated_generated == pytest.approx((8 * 0.8 + 12 * 0.1) / 20)
    test = accuracy.loc[("ours_dual", 0, "test", "eval")]
    assert (test.accuracy, test.accuracy_real, test.accuracy_generated) == (pytest.approx(75), pytest.approx(50),
                                                                             pytest.approx(100))
    # Batch statistics, same patches: every real right, every generated called real: 50 %.
    batch = accuracy.loc[("ours_dual", 0, "test", "train")]
    assert (batch.accuracy, batch.accuracy_real, batch.accuracy_generated) == (pytest.approx(50), pytest.approx(100),
                                                                                pytest.approx(0))
    assert len(accuracy) == 3


def test_discriminator_accuracies_reject_tables_without_modes():
    old = frame(discriminator_rows("ours_dual", 0, "train", HAND_COUNTS)).drop(columns=["mode", "p_generated_sum"])
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['mode', 'p_generated_sum'\]"):
        tables.discriminator_accuracies(old)
    unknown = frame(discriminator_rows("ours_dual", 0, "train", HAND_COUNTS, mode="batch"))
    with pytest.raises(ValueError, match=r"unknown mode value\(s\) \['batch'\]"):
        tables.discriminator_accuracies(unknown)


def test_table7_dice_and_discriminator_accuracy_per_lambda():
    config = paper_config()
    segmentation = study()[0]
    rows = []
    for seed, correct in ((0, 4), (1, 6)):
        rows += discriminator_rows("ours_dual_lambda0.1", seed, "train", HAND_COUNTS)
        rows += discriminator_rows("ours_dual_lambda0.1", seed, "test", confusion(correct, correct))
    rows += discriminator_rows("ours_dual", 0, "train", confusion(9, 1))
    rows += discriminator_rows("ours_dual", 0, "train", confusion(10, 10), mode="train")
    table = tables.table7(segmentation, frame(rows, columns=DISCRIMINATOR_COLUMNS), config).set_index("λ")
    assert list(table.index) == ["λ = 0.1", "λ = 1.5", "λ = 5"]
    small = table.loc["λ = 0.1"]
    assert small["experiment"] == "ours_dual_lambda0.1"
    assert small["mean DSC"] == "0.875" and small["mean DSC (paper)"] == 0.875
    assert small["D accuracy train %"] == "55.0 ± 0.0"
    assert small["D accuracy on generated, train %"] == "40.0 ± 0.0"
    assert small["D accuracy test %"] == "50.0 ± 14.1"  # 40 % and 60 %
    assert small["D accuracy train % (paper)"] == 98.95 and small["D accuracy test % (paper)"] == 34.49
    assert small["D dataset accuracy on real, train %"] == "70.0 ± 0.0"
    assert small["mean P(generated) on real, train"] == "0.205 ± 0.000"  # 3 of 20 called generated
    assert small["mean P(generated) on generated, train"] == "0.380 ± 0.000"
    assert small["D accuracy train %, batch statistics"] == "n/a" and small["seeds"] == 1
    middle = table.loc["λ = 1.5"]
    assert middle["D accuracy train %"] == "50.0" and middle["D accuracy on generated, train %"] == "10.0"
    assert middle["D accuracy train %, batch statistics"] == "100.0"
    assert middle["D dataset accuracy on real, train %"] == "90.0"
    assert middle["D accuracy test %"] == "n/a"
    assert middle["D accuracy train % (paper)"] == 44.10
    large = table.loc["λ = 5"]
    assert large["D accuracy train %"] == "n/a" and large["mean DSC"] == "0.850"
    assert large["mean DSC (paper)"] == 0.851 and large["D accuracy test % (paper)"] == 28.58


def test_table7_without_discriminator_rows_and_without_models():
    config = paper_config()
    table = tables.table7(study()[0], frame([]), config)
    assert set(table["D accuracy train %"]) == {"n/a"}
    assert is_note(tables.table7(frame([]), frame([]), paper_config(without("ours_dual", "ours_dual_lambda0.1",
                                                                            "ours_dual_lambda5.0"))))


# Paired tests ----------------------------------------------------------------------------------

def test_paired_tests_compare_methods_per_setting_and_modalities():
    config = paper_config()
    subjects = ("s1", "s2", "s3", "s4", "s5", "s6")
    gains = dict(zip(subjects, (0.01, 0.03, -0.02, 0.05, 0.04, 0.06)))
    scores = {"standardization_dual": lambda seed, s: 0.8, "preprocessor_dual": lambda seed, s: 0.8 + gains[s],
              "ours_dual": lambda seed, s: 0.85, "standardization_multi": lambda seed, s: 0.8,
              "preprocessor_multi": lambda seed, s: 0.8, "ours_multi": lambda seed, s: 0.8,
              "ours_dual_t1t2": lambda seed, s: 0.85 + gains[s] + 0.001 * seed}
    segmentation = frame(*[experiment_segmentation(name, ["iseg"], dice, seeds=(0, 1), subjects=subjects)
                           for name, dice in scores.items()])
    table = tables.paired_tests(segmentation, config)
    assert list(zip(table.table, table.setting, table.comparison)) == [
        ("Table 3", "dual", "Pre-processor − Standardization"), ("Table 3", "dual", "Ours − Standardization"),
        ("Table 3", "dual", "Ours − Pre-processor"),
        ("Table 3", "multi", "Pre-processor − Standardization"), ("Table 3", "multi", "Ours − Standardization"),
        ("Table 3", "multi", "Ours − Pre-processor"), ("Table 5", "dual", "T1 + T2 − T1")]
    row = table.iloc[0]
    assert row["test subjects"] == 6
    assert row["mean Dice difference"] == pytest.approx(round(np.mean(list(gains.values())), 4))
    assert row["Wilcoxon p"] == pytest.approx(stats.wilcoxon(list(gains.values())).pvalue)
    t1t2 = table.iloc[-1]
    assert t1t2["Wilcoxon p"] == pytest.approx(stats.wilcoxon([g + 0.0005 for g in gains.values()]).pvalue)
    assert np.isnan(table.iloc[3]["Wilcoxon p"])  # multi: identical scores
    assert table.iloc[1]["Wilcoxon p"] == pytest.approx(stats.wilcoxon([0.05] * 6).pvalue)


def test_paired_tests_without_two_methods_is_a_note():
    config = paper_config({"ours_dual": {"method": "ours", "datasets": ["iseg", "mrbrains"]}})
    assert is_note(tables.paired_tests(frame(experiment_segmentation("ours_dual", ["iseg"], 0.8)), config))
