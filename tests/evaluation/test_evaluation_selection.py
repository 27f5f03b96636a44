"""Which experiments a run trains (dnorm.evaluation.selection) and the seed-study config."""

from __future__ import annotations

import pytest

from dnorm.config import load_config
from dnorm.evaluation.plan import training_seeds
from dnorm.evaluation.selection import select_experiments
from evaluation_builders import REPO, paper_config

SEED_STUDY = ["unet_dual", "standardization_dual", "preprocessor_dual", "ours_dual", "ours_dual_lambda0.1",
              "ours_dual_lambda5.0"]


def test_every_experiment_without_a_selection():
    config = paper_config()
    assert select_experiments(config) == config["experiments"]


def test_selection_keeps_the_named_entries_in_its_order():
    config = paper_config(experiments_enabled=["ours_dual", "unet_iseg"])
    selected = select_experiments(config)
    assert list(selected) == ["ours_dual", "unet_iseg"]
    assert selected["ours_dual"] == config["experiments"]["ours_dual"]


def test_unknown_selected_experiment_is_named():
    config = paper_config(experiments_enabled=["ours_dual", "ours_duel"])
    with pytest.raises(ValueError, match=r"seeds.yaml: experiments_enabled names \['ours_duel'\]"):
        select_experiments(config, "seeds.yaml")


def test_seed_config_runs_the_dual_setting_with_three_seeds():
    config = load_config(REPO / "config" / "config.yaml", REPO / "config" / "seeds.yaml")
    assert config["run_name"] == "seeds"
    assert len(set(training_seeds(config))) == 3
    selected = select_experiments(config)
    assert sorted(selected) == sorted(SEED_STUDY)
    assert all(sorted(entry["datasets"]) == ["iseg", "mrbrains"] for entry in selected.values())
    assert selected["unet_dual"]["method"] == "unet"
    assert {selected[name].get("lambda") for name in SEED_STUDY if name.startswith("ours")} == {0.1, 1.5, 5.0}
