"""The paper's numbers (SPEC section 6) and which experiment reproduces which row (dnorm.evaluation.paper)."""

from __future__ import annotations

import pytest

from dnorm.evaluation import paper
from evaluation_builders import paper_config, evaluated_on, without

# SPEC section 6, transcribed cell by cell.
SPEC_TABLE2 = {  # Dice CSF/GM/WM/mean
    ("iseg", "iseg"): (0.920, 0.857, 0.828, 0.868),
    ("mrbrains", "mrbrains"): (0.861, 0.789, 0.839, 0.830),
    ("iseg", "mrbrains"): (0.401, 0.354, 0.519, 0.425),
    ("mrbrains", "iseg"): (0.293, 0.082, 0.563, 0.313),
}
SPEC_TABLE3 = {  # (DSC, MHD) for CSF, GM, WM, mean
    ("dual", "Standardization"): ((0.897, 0.792), (0.836, 0.498), (0.790, 0.734), (0.841, 0.675)),
    ("dual", "Pre-processor"): ((0.919, 0.227), (0.860, 0.517), (0.831, 0.702), (0.870, 0.482)),
    ("dual", "Ours"): ((0.912, 0.245), (0.853, 0.492), (0.836, 0.595), (0.867, 0.444)),
    ("multi", "Standardization"): ((0.860, 0.264), (0.881, 0.684), (0.856, 0.812), (0.866, 0.587)),
    ("multi", "Pre-processor"): ((0.922, 0.251), (0.895, 0.392), (0.870, 0.530), (0.896, 0.390)),
    ("multi", "Ours"): ((0.913, 0.293), (0.887, 0.422), (0.870, 0.598), (0.890, 0.438)),
}


def test_table2_matches_the_spec():
    assert paper.TABLE2 == SPEC_TABLE2


def test_table3_matches_the_spec():
    assert paper.TABLE3 == SPEC_TABLE3
    assert paper.TABLE3[("multi", "Pre-processor")][2] == (0.870, 0.530)  # the cell the SPEC wraps
    assert paper.TABLE3[("dual", "Standardization")][0] == (0.897, 0.792)


def test_table4_matches_the_spec():
    assert paper.TABLE4 == {"dual": {"input": 2.0839, "Pre-processor": 0.2793, "Ours": 0.2788},
                            "multi": {"input": 12.2212, "Pre-processor": 0.4185, "Ours": 0.4180}}


def test_table5_matches_the_spec():
    assert paper.TABLE5["T1"] == ((0.912, 0.245), (0.853, 0.492), (0.836, 0.595), (0.867, 0.444))
    assert paper.TABLE5["T1 + T2"] == ((0.910, 0.165), (0.889, 0.431), (0.862, 0.493), (0.887, 0.363))
    assert paper.TABLE5["T1"] == paper.TABLE3[("dual", "Ours")]  # T1 only is the Table 3 model


def test_table6_matches_the_spec():
    assert paper.TABLE6[0.0]["mrbrains"][0] == -0.0199
    assert paper.TABLE6[0.0]["iseg"][0] == 0.0271
    assert paper.TABLE6[0.3] == {"mrbrains": (0.0982, 0.0534), "iseg": (0.2560, 0.1192)}
    assert paper.TABLE6[0.5] == {"mrbrains": (0.1963, 0.1422), "iseg": (0.4264, 0.2430)}
    assert paper.TABLE6[0.7] == {"mrbrains": (0.3103, 0.2393), "iseg": (0.5914, 0.4599)}
    assert paper.TABLE6[0.9] == {"mrbrains": (0.4368, 0.3649), "iseg": (0.7316, 0.5928)}
    assert sorted(paper.TABLE6) == [0.0, 0.3, 0.5, 0.7, 0.9]


def test_table7_matches_the_spec():
    assert paper.TABLE7 == {0.1: (0.875, 98.95, 34.49), 1.5: (0.866, 44.10, 32.58), 5.0: (0.851, 44.07, 28.58)}


@pytest.mark.parametrize("datasets, setting", [
    (["iseg", "mrbrains"], "dual"), (("mrbrains", "iseg"), "dual"),
    (["abide", "mrbrains", "iseg"], "multi"), (["mrbrains", "abide"], "abide+mrbrains"), (["iseg"], "iseg"),
])
def test_setting_of(datasets, setting):
    assert paper.setting_of(datasets) == setting


def test_table2_rows_of_the_paper_config():
    config = paper_config()
    rows = paper.table2_rows(config, evaluated_on(config))
    assert [(r.label, r.experiment, r.test_dataset) for r in rows] == [
        ("iSEG → iSEG", "unet_iseg", "iseg"), ("iSEG → MRBrainS", "unet_iseg", "mrbrains"),
        ("MRBrainS → MRBrainS", "unet_mrbrains", "mrbrains"), ("MRBrainS → iSEG", "unet_mrbrains", "iseg")]
    assert [r.paper for r in rows] == [SPEC_TABLE2[k] for k in
                                       [("iseg", "iseg"), ("iseg", "mrbrains"), ("mrbrains", "mrbrains"),
                                        ("mrbrains", "iseg")]]


def test_table2_rows_of_a_user_experiment_have_no_paper_values():
    config = paper_config(without(extra={"unet_abide": {"method": "unet", "datasets": ["abide"],
                                                         "test_datasets": ["abide", "iseg"]},
                                         "unet_dual": {"method": "unet", "datasets": ["iseg", "mrbrains"]}}))
    rows = [r for r in paper.table2_rows(config, evaluated_on(config)) if r.experiment == "unet_abide"]
    assert [(r.label, r.test_dataset, r.paper) for r in rows] == [("ABIDE → ABIDE", "abide", None),
                                                                   ("ABIDE → iSEG", "iseg", None)]
    assert "unet_dual" not in {r.experiment for r in paper.table2_rows(config, evaluated_on(config))}


def test_table3_rows_are_the_main_models_in_setting_then_method_order():
    rows = paper.table3_rows(paper_config())
    assert [(r.setting, r.label, r.experiment) for r in rows] == [
        ("dual", "Standardization", "standardization_dual"), ("dual", "Pre-processor", "preprocessor_dual"),
        ("dual", "Ours", "ours_dual"), ("multi", "Standardization", "standardization_multi"),
        ("multi", "Pre-processor", "preprocessor_multi"), ("multi", "Ours", "ours_multi")]
    assert [r.paper for r in rows] == [SPEC_TABLE3[(r.setting, r.label)] for r in rows]


def test_table3_rows_of_a_user_setting_come_last_without_paper_values():
    config = paper_config(without(extra={"ours_pair": {"method": "ours", "datasets": ["mrbrains", "abide"]}}))
    last = paper.table3_rows(config)[-1]
    assert (last.setting, last.label, last.experiment, last.paper) == ("abide+mrbrains", "Ours", "ours_pair", None)


def test_table5_rows_are_t1_and_t1_t2():
    rows = paper.table5_rows(paper_config())
    assert [(r.label, r.experiment, r.paper) for r in rows] == [
        ("T1", "ours_dual", paper.TABLE5["T1"]), ("T1 + T2", "ours_dual_t1t2", paper.TABLE5["T1 + T2"])]


def test_table6_experiments_are_bias_augmented_generators():
    assert paper.table6_experiments(paper_config()) == ["ours_dual_bias"]
    config = paper_config(without(extra={
        "pre_bias": {"method": "preprocessor", "datasets": ["iseg", "mrbrains"], "bias_augmentation": True},
        "unet_bias": {"method": "unet", "datasets": ["iseg"], "bias_augmentation": True}}))
    assert paper.table6_experiments(config) == ["ours_dual_bias", "pre_bias"]


def test_table7_rows_sorted_by_lambda_with_paper_values():
    rows = paper.table7_rows(paper_config())
    assert [(r.label, r.experiment) for r in rows] == [
        ("λ = 0.1", "ours_dual_lambda0.1"), ("λ = 1.5", "ours_dual"), ("λ = 5", "ours_dual_lambda5.0")]
    assert [r.paper for r in rows] == [(0.875, 98.95, 34.49), (0.866, 44.10, 32.58), (0.851, 44.07, 28.58)]


def test_table7_user_lambda_has_no_paper_values_and_lambda_zero_no_row():
    config = paper_config(without(extra={"ours_dual_lambda3": {"method": "ours", "datasets": ["iseg", "mrbrains"],
                                                                "lambda": 3},
                                         "ours_dual_lambda0": {"method": "ours", "datasets": ["iseg", "mrbrains"],
                                                               "lambda": 0}}))
    rows = paper.table7_rows(config)
    assert [r.label for r in rows] == ["λ = 0.1", "λ = 1.5", "λ = 3", "λ = 5"]
    assert rows[2].paper is None


def test_figure_methods_prefer_the_setting_with_most_datasets():
    assert paper.figure_methods(paper_config()) == ("multi", {
        "Standardization": "standardization_multi", "Pre-processor": "preprocessor_multi", "Ours": "ours_multi"})
    dual_only = paper_config(without("standardization_multi", "preprocessor_multi", "ours_multi"))
    assert paper.figure_methods(dual_only) == ("dual", {
        "Standardization": "standardization_dual", "Pre-processor": "preprocessor_dual", "Ours": "ours_dual"})


def test_figure_methods_without_table3_models():
    config = paper_config({"unet_iseg": {"method": "unet", "datasets": ["iseg"]}})
    assert paper.figure_methods(config) == ("", {})


def test_settings_the_paper_did_not_run_have_no_paper_values():
    config = paper_config(without(extra={
        "unet_iseg_t1t2": {"method": "unet", "datasets": ["iseg"], "modalities": ["t1", "t2"],
                           "test_datasets": ["iseg", "mrbrains"]},
        "unet_iseg_bias": {"method": "unet", "datasets": ["iseg"], "bias_augmentation": True},
        "ours_dual_t2": {"method": "ours", "datasets": ["iseg", "mrbrains"], "modalities": ["t2"]}}))
    table2 = {(r.experiment, r.test_dataset): r.paper for r in paper.table2_rows(config, evaluated_on(config))}
    assert table2[("unet_iseg", "mrbrains")] == SPEC_TABLE2[("iseg", "mrbrains")]
    assert table2[("unet_iseg_t1t2", "iseg")] is None and table2[("unet_iseg_t1t2", "mrbrains")] is None
    assert table2[("unet_iseg_bias", "iseg")] is None
    table5 = {r.experiment: (r.label, r.paper) for r in paper.table5_rows(config)}
    assert table5["ours_dual_t2"] == ("T2", None)
    assert table5["ours_dual_t1t2"] == ("T1 + T2", paper.TABLE5["T1 + T2"])


def test_the_shipped_config_reproduces_every_paper_row(default_config):
    rows = (paper.table2_rows(default_config, evaluated_on(default_config)) + paper.table3_rows(default_config)
            + paper.table5_rows(default_config) + paper.table7_rows(default_config))
    assert len(rows) == 4 + 6 + 2 + 3
    assert all(r.paper is not None for r in rows)
    assert paper.table6_experiments(default_config) == ["ours_dual_bias"]
