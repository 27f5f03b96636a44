"""The ablation plan (which cells, which warm-up, which settings) and one cell's training."""

import pandas as pd
import pytest
import yaml

from dnorm.config import load_config
from dnorm.manifest import read_manifest
from dnorm.training.ablation import (AblationCell, ablation_cells, ablation_row, apply_overrides, shares_warmup,
                                     variant_applies)
from dnorm.training.experiment import Experiment
from dnorm.training.patches import write_patch_table
from dnorm.training.run import train_ablation_cell
from training_fixtures import tiny_training, write_study

PRE = Experiment("pre", "preprocessor", ("a", "b"))
OURS = Experiment("ours", "ours", ("a", "b"), adversarial_weight=1.5)
UNET = Experiment("unet", "unet", ("a", "b"))
STANDARDIZATION = Experiment("std", "standardization", ("a", "b"))


def test_overrides_reach_nested_settings_and_leave_the_original_alone():
    training = {"epochs": 3, "optimizer": {"lr": 1e-3, "gamma": 0.1}}
    changed = apply_overrides(training, {"epochs": 6, "optimizer.lr": 1e-4})
    assert changed == {"epochs": 6, "optimizer": {"lr": 1e-4, "gamma": 0.1}}
    assert training == {"epochs": 3, "optimizer": {"lr": 1e-3, "gamma": 0.1}}


@pytest.mark.parametrize("key", ["epoch", "optimizer.lrr", "epochs.lr"])
def test_an_unknown_setting_is_named(key):
    with pytest.raises(ValueError, match=rf"ablation\.variants\.x\.{key}: no such training setting"):
        apply_overrides({"epochs": 3, "optimizer": {"lr": 1e-3}}, {key: 1}, "ablation.variants.x")


@pytest.mark.parametrize("experiment, overrides, applies", [
    (OURS, {"generator_loss": "non_saturating"}, True),
    (PRE, {"generator_loss": "non_saturating"}, False),       # no D: the G term does not exist
    (PRE, {"optimizer.lr_discriminator": 1e-3}, False),
    (PRE, {"zero_background": False}, True),
    (UNET, {"zero_background": False}, False),                 # no G
    (STANDARDIZATION, {"generator.width": 4}, False),
    (STANDARDIZATION, {"dice_reduction": "pooled"}, True),
    (UNET, {"zero_background": False, "dice_reduction": "pooled"}, True),
    (UNET, {}, True),                                         # the default is every experiment's reference
    (OURS, {"discriminator_sees_augmentation": True}, False),  # no bias augmentation to see
    (Experiment("b", "ours", ("a",), adversarial_weight=1.5, bias_augmentation=True),
     {"discriminator_sees_augmentation": True}, True),
])
def test_a_variant_applies_to_the_experiments_that_read_its_settings(experiment, overrides, applies):
    assert variant_applies(experiment, overrides) is applies


@pytest.mark.parametrize("overrides, shared", [
    ({}, True),
    ({"adversarial_rampup": 0, "generator_loss": "non_saturating"}, True),
    ({"optimizer.lr_discriminator": 1e-3, "discriminator.dropout": 0.5}, True),
    ({"dice_reduction": "pooled"}, False),        # S trains during the warm-up with it
    ({"zero_background": False}, False),
    ({"warmup_segmenter": False}, False),
    ({"warmup_discriminator": True}, False),
    ({"optimizer.lr": 1e-4}, False),
    ({"adversarial_rampup": 0, "generator.width": 4}, False),
])
def test_only_joint_training_variants_share_the_studys_warm_up(overrides, shared):
    assert shares_warmup(overrides) is shared


def layered(tmp_path, ablation: dict, **top) -> dict:
    (tmp_path / "layer.yaml").write_text(yaml.safe_dump({"ablation": ablation, **top}))
    return load_config("config/config.yaml", tmp_path / "layer.yaml")


def test_the_shipped_ablation_layer_skips_variants_that_change_nothing():
    """D's settings are skipped for the Pre-processor, D's view of the bias augmentation for the
    experiments without it; ``only`` restricts Ours with bias augmentation to that one choice."""
    cells = ablation_cells(load_config("config/config.yaml", "config/ablation.yaml"))
    by_experiment = {}
    for cell in cells:
        by_experiment.setdefault(cell.experiment, set()).add(cell.variant)
    assert by_experiment["ours_dual"] == {"default", "pooled_dice", "minimax_g_term", "non_saturating", "rampup_off",
                                          "background_unmasked", "segmenter_cold_start"}
    assert by_experiment["preprocessor_dual"] == {"default", "pooled_dice", "background_unmasked",
                                                  "segmenter_cold_start"}
    assert by_experiment["ours_dual_bias"] == {"default", "d_sees_augmentation"}
    assert len(cells) == 2 * 13 and {c.seed for c in cells} == {20220331, 1}


def test_seeds_default_to_the_training_seeds(tmp_path):
    config = layered(tmp_path, {"experiments": ["ours_dual"], "variants": {"a": {"epochs": 2}}}, training_seeds=[5, 6])
    assert ablation_cells(config) == [AblationCell("ours_dual", v, s) for v in ("default", "a") for s in (5, 6)]


@pytest.mark.parametrize("ablation, message", [
    ({"experiments": ["nope"], "variants": {}}, r"ablation\.experiments \['nope'\] are not experiments"),
    ({"experiments": ["ours_dual"], "variants": {"x": {"dice_reductio": "pooled"}}},
     r"ablation\.variants\.x\.dice_reductio: no such training setting"),
    ({"experiments": ["ours_dual"], "variants": {"x": {"dice_reduction": "mean"}}},
     r"ablation\.variants\.x: invalid configuration at training\.dice_reduction"),
    ({"experiments": ["ours_dual"], "variants": {"default": {"epochs": 2}}}, r"variants\.default is the study's"),
    ({"experiments": ["ours_dual"], "variant": {}}, r"unknown key 'ablation\.variant'"),
    ({"experiments": ["ours_dual"], "variants": {"x": {}}, "only": {"ours_multi": ["x"]}},
     r"ablation\.only\.ours_multi is not one of ablation\.experiments"),
    ({"experiments": ["ours_dual"], "variants": {"x": {}}, "only": {"ours_dual": ["y"]}},
     r"ablation\.only\.ours_dual: \['y'\] are not variants"),
])
def test_a_bad_ablation_section_is_a_clear_config_error(tmp_path, ablation, message):
    with pytest.raises(ValueError, match=message):
        layered(tmp_path, ablation)


def history(*rows) -> pd.DataFrame:
    return pd.DataFrame([dict(zip(("phase", "seconds", "val_dice_mean", "val_dice_csf", "train_grad_ratio"), r))
                         for r in rows])


def test_a_cell_is_the_last_joint_epoch_of_its_history():
    row = ablation_row(AblationCell("ours", "x", 1), {"adversarial_rampup": 0, "optimizer.lr": 1e-4}, history(
        ("warmup", 60, float("nan"), float("nan"), float("nan")),
        ("train", 30, 0.5, 0.4, 2.0), ("train", 30, 0.8, 0.7, 3.0)))
    assert row["val_dice_mean"] == 0.8 and row["val_dice_csf"] == 0.7 and row["train_grad_ratio"] == 3.0
    assert (row["warmup_epochs"], row["joint_epochs"], row["minutes"]) == (1, 2, 2.0)
    assert row["overrides"] == "adversarial_rampup=0, optimizer.lr=0.0001"
    with pytest.raises(ValueError, match="ours x seed 1: the history has no joint-training epoch"):
        ablation_row(AblationCell("ours", "x", 1), {}, history(("warmup", 60, 0, 0, 0)))


@pytest.fixture
def study(tmp_path):
    manifest = write_study(tmp_path)
    tables = []
    for dataset in ("bright", "flat"):
        tables.append(str(tmp_path / f"patches_{dataset}.csv"))
        write_patch_table(read_manifest(manifest), dataset, {"train": 16, "val": 8}, 3, tables[-1])
    return tmp_path, str(manifest), tables


def train_cell(study, variant, overrides):
    folder, manifest, tables = study
    experiment = Experiment("ours", "ours", ("bright", "flat"), adversarial_weight=1.5)
    row_path = folder / f"{variant}.csv"
    row = train_ablation_cell(AblationCell("ours", variant, 3), experiment, tiny_training(epochs=2), overrides,
                              manifest, tables, str(row_path), str(folder / "last.pt"), gpus=0)
    assert pd.read_csv(row_path).iloc[0]["val_dice_mean"] == pytest.approx(row["val_dice_mean"], abs=1e-5)
    assert not (folder / "last.pt").exists()
    return row


def test_a_cell_trains_with_its_variants_settings(study):
    """The overrides reach the trainer: one more joint epoch shows in the row, and a variant
    with another G term trains to other weights than the default."""
    default = train_cell(study, "default", {})
    longer = train_cell(study, "longer", {"epochs": 3})
    assert (default["joint_epochs"], longer["joint_epochs"]) == (2, 3)
    assert default["val_d_loss"] > 0  # D trained and was validated
    other_term = train_cell(study, "non_saturating", {"generator_loss": "non_saturating", "adversarial_rampup": 0})
    assert other_term["val_dice_mean"] != default["val_dice_mean"]
