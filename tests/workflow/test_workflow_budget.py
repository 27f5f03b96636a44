"""config/budget.yaml end to end on tiny data: the extra budgets train, the paper's tables ignore
them, and the budget curve table and figure come out."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

import png_checks
from workflow_helpers import link_workflow, snakemake

ENABLED = ["standardization_dual", "ours_dual", "standardization_dual_x2", "ours_dual_x2"]


@pytest.fixture(scope="module")
def budget_run(tmp_path_factory):
    root = link_workflow(tmp_path_factory.mktemp("budget"))
    (root / "layer.yaml").write_text(yaml.safe_dump({"run_name": "tiny_budget", "experiments_enabled": ENABLED}))
    result = snakemake(root, "--configfile", "config/tiny.yaml", "config/budget.yaml", "layer.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return root / "results" / "tiny_budget"


def test_the_budget_curve_has_every_model_at_its_budget(budget_run):
    table = pd.read_csv(budget_run / "tables" / "budget_curve.csv")
    assert sorted(table.experiment) == sorted(ENABLED)
    assert table.set_index("experiment")["joint epochs"].to_dict() == {
        "standardization_dual": 2, "ours_dual": 2, "standardization_dual_x2": 4, "ours_dual_x2": 4}
    history = pd.read_csv(budget_run / "models" / "ours_dual_x2" / "seed-20220331" / "history.csv")
    assert (history.phase == "train").sum() == 4
    assert table[["val mean DSC", "test mean DSC"]].notna().all().all()
    rgb = png_checks.pixels(budget_run / "figures" / "budget_curve.png")
    assert png_checks.ink(rgb) > 0.05 and png_checks.saturated(rgb) > 0.002, "no curve drawn"


def test_the_paper_tables_and_evaluations_ignore_other_budgets(budget_run):
    table3 = pd.read_csv(budget_run / "tables" / "table3_methods.csv")
    assert "ours_dual_x2" not in set(table3.experiment) and "ours_dual" in set(table3.experiment)
    assert not (budget_run / "metrics" / "ours_dual_x2" / "seed-20220331" / "discriminator.csv").exists()
    # The 2× Ours starts from the warm-up the 1× one used: one warm-up for the setting.
    assert len(list((budget_run / "warmups").iterdir())) == 1
