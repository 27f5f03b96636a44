"""The paper's numbers (checked against the paper's text where it holds them) and which
experiment reproduces which row (dnorm.evaluation.paper)."""

from __future__ import annotations

import pytest

from dnorm.evaluation import paper
from evaluation_builders import paper_config, evaluated_on, without
from paper_text import table_block, table_rows

DATASETS = {"iSEG": "iseg", "MRBrainS": "mrbrains"}


def pairs(numbers) -> tuple[tuple[float, float], ...]:
    """``(DSC, MHD)`` pairs of a Table 3/5 row (CSF, GM, WM, mean)."""
    return tuple(zip(numbers[::2], numbers[1::2]))


def test_table2_matches_the_paper():
    rows = table_rows(2, r"(?:iSEG|MRBrainS) (?:iSEG|MRBrainS)", 4)
    parsed = {tuple(DATASETS[name] for name in label.split()): numbers for label, numbers in rows}
    assert len(rows) == 4 and paper.TABLE2 == parsed


def test_table3_matches_the_paper():
    rows = table_rows(3, r"Standardization|Pre-processor|Ours", 8)
    block = table_block(3)
    assert len(rows) == 6 and block.index("Dual-site") < block.index("Multi-site")  # dual rows first
    parsed = {(setting, label): pairs(numbers)
              for (label, numbers), setting in zip(rows, ["dual"] * 3 + ["multi"] * 3)}
    assert paper.TABLE3 == parsed


def test_table4_matches_the_paper():
    rows = dict(table_rows(4, r"iSEG \+ MRBrainS(?: \+ ABIDE)?", 3))
    columns = ("input", "Pre-processor", "Ours")
    assert paper.TABLE4 == {"dual": dict(zip(columns, rows["iSEG + MRBrainS"])),
                            "multi": dict(zip(columns, rows["iSEG + MRBrainS + ABIDE"]))}


def test_table5_matches_the_paper():
    rows = dict(table_rows(5, r"T1 only|T1 \+ T2", 8))
    assert paper.TABLE5 == {"T1": pairs(rows["T1 only"]), "T1 + T2": pairs(rows["T1 + T2"])}
    assert paper.TABLE5["T1"] == paper.TABLE3[("dual", "Ours")]  # T1 only is the Table 3 model


def test_table6_matches_the_spec():
    assert paper.TABLE6[0.0]["mrbrains"][0] == -0.0199
    assert paper.TABLE6[0.0]["iseg"][0] == 0.0271
    assert paper.TABLE6[0.3] == {"mrbrains": (0.0982, 0.0534), "iseg": (0.2560, 0.1192)}
    assert paper.TABLE6[0.5] == {"mrbrains": (0.1963, 0.1422), "iseg": (0.4264, 0.2430)}
    assert paper.TABLE6[0.7] == {"mrbrains": (0.3103, 0.2393), "iseg": (0.5914, 0.4599)}
    assert paper.TABLE6[0.9] == {"mrbrains": (0.4368, 0.3649), "iseg": (0.7316, 0.5928)}
    assert sorted(paper.TABLE6) == [0.0, 0.3, 0.5, 0.7, 0.9]


def test_table7_matches_the_paper():
    rows = table_rows(7, r"\d+\.\d+", 3)
    assert len(rows) == 3 and paper.TABLE7 == {float(label): numbers for label, numbers in rows}


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
    assert [r.paper for r in rows] == [paper.TABLE2[k] for k in
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
    assert [r.paper for r in rows] == [paper.TABLE3[(r.setting, r.label)] for r in rows]


def test_table3_rows_of_a_user_setting_come_last_without_paper_values():
    config = paper_config(without(extra={"ours_pair": {"method": "ours", "datasets": ["mrbrains", "abide"]}}))
    last = paper.table3_rows(config)[-1]
    assert (last.setting, last.label, last.experiment, last.paper) == ("abide+mrbrains", "Ours", "ours_pair", None)


def test_a_unet_over_several_datasets_opens_its_table3_setting_without_paper_values():
    config = paper_config(without(extra={"unet_dual": {"method": "unet", "datasets": ["iseg", "mrbrains"]}}))
    dual = [r for r in paper.table3_rows(config) if r.setting == "dual"]
    assert [(r.label, r.experiment) for r in dual][:2] == [("U-Net", "unet_dual"),
                                                          ("Standardization", "standardization_dual")]
    assert dual[0].paper is None and len(dual) == 4


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
    assert table2[("unet_iseg", "mrbrains")] == paper.TABLE2[("iseg", "mrbrains")]
    assert table2[("unet_iseg_t1t2", "iseg")] is None and table2[("unet_iseg_t1t2", "mrbrains")] is None
    assert table2[("unet_iseg_bias", "iseg")] is None
    table5 = {r.experiment: (r.label, r.paper) for r in paper.table5_rows(config)}
    assert table5["ours_dual_t2"] == ("T2", None)
    assert table5["ours_dual_t1t2"] == ("T1 + T2", paper.TABLE5["T1 + T2"])


def test_the_shipped_config_reproduces_every_paper_row(default_config):
    rows = (paper.table2_rows(default_config, evaluated_on(default_config)) + paper.table3_rows(default_config)
            + paper.table5_rows(default_config) + paper.table7_rows(default_config))
    controls = [r for r in rows if r.label == "U-Net"]  # S alone over several datasets: not in the paper
    assert all(r.paper is None for r in controls)
    papers = [r for r in rows if r.label != "U-Net"]
    assert len(papers) == 4 + 6 + 2 + 3
    assert all(r.paper is not None for r in papers)
    assert paper.table6_experiments(default_config) == ["ours_dual_bias"]
