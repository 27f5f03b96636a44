"""The invariance probe (beyond the paper, dnorm.evaluation.probe): a fresh classifier that names
a patch's dataset, its table and claim P1."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from training_fixtures import write_study  # noqa: E402

from dnorm.evaluation import claims as claims_module  # noqa: E402
from dnorm.evaluation import probe  # noqa: E402
from dnorm.manifest import read_manifest  # noqa: E402
from dnorm.training.experiment import Experiment  # noqa: E402
from dnorm.training.networks import build_networks  # noqa: E402
from dnorm.training.patches import write_patch_table  # noqa: E402
from evaluation_builders import evaluated_on, paper_config, study, without  # noqa: E402

FAST = {"steps": 60, "batch_size": 16}  # enough for the toy cases below, a few seconds on one core


def patches(n: int, seed: int, mean: float, size: int = 16) -> torch.Tensor:
    """``n`` noisy 1×size³ patches around ``mean`` (a textured 'brain' over a 0 background)."""
    g = torch.Generator().manual_seed(seed)
    images = mean + 0.1 * torch.randn(n, 1, size, size, size, generator=g)
    images[..., : size // 4] = 0.0
    return images


def labelled(*groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.cat(groups), torch.cat([torch.full((len(g),), i, dtype=torch.int64) for i, g in enumerate(groups)])


# The classifier -----------------------------------------------------------------------------------

def test_probe_names_the_dataset_of_trivially_separable_inputs():
    train = labelled(patches(48, 0, 0.3), patches(48, 1, 0.7))
    test = labelled(patches(48, 2, 0.3), patches(48, 3, 0.7))
    accuracy = probe.probe_accuracies(train, test, classes=2, seed=0, **FAST)
    assert accuracy["train"] >= 0.95 and accuracy["test"] >= 0.95, accuracy


def test_probe_separates_three_datasets_of_different_intensities():
    train = labelled(*(patches(32, i, m) for i, m in enumerate((0.2, 0.5, 0.8))))
    test = labelled(*(patches(32, 10 + i, m) for i, m in enumerate((0.2, 0.5, 0.8))))
    assert probe.probe_accuracies(train, test, classes=3, seed=0, **FAST)["test"] >= 0.95


def test_probe_is_at_chance_on_identically_distributed_datasets():
    # Same distribution for both "datasets": nothing but noise to learn, so held-out accuracy is
    # chance up to sampling (200 test patches: sd 3.5 points).
    train = labelled(patches(64, 0, 0.5), patches(64, 1, 0.5))
    test = labelled(patches(100, 2, 0.5), patches(100, 3, 0.5))
    accuracy = probe.probe_accuracies(train, test, classes=2, seed=0, **FAST)
    assert abs(accuracy["test"] - 0.5) <= 0.12, accuracy


def test_probe_is_exactly_at_chance_on_identical_patches():
    same = patches(40, 0, 0.5)
    data = labelled(same, same.clone())
    accuracy = probe.probe_accuracies(data, data, classes=2, seed=0, **FAST)
    assert accuracy == {"train": 0.5, "test": 0.5}


def test_probe_is_reproducible_and_leaves_the_global_random_state_alone():
    train = labelled(patches(24, 0, 0.45), patches(24, 1, 0.55))
    test = labelled(patches(24, 2, 0.45), patches(24, 3, 0.55))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = probe.probe_accuracies(train, test, classes=2, seed=5, steps=20, batch_size=8)
    assert torch.equal(torch.get_rng_state(), before)
    assert probe.probe_accuracies(train, test, classes=2, seed=5, steps=20, batch_size=8) == first


def test_probe_rejects_bad_sets():
    data = labelled(patches(4, 0, 0.3), patches(4, 1, 0.7))
    with pytest.raises(ValueError, match=r"domain indices must lie in \[0, 1\)"):
        probe.probe_accuracies(data, data, classes=1, seed=0, steps=1)
    with pytest.raises(ValueError, match="N×C×p×p×p"):
        probe.probe_accuracies((data[0][:, 0], data[1]), data, classes=2, seed=0, steps=1)
    with pytest.raises(ValueError, match="steps"):
        probe.probe_accuracies(data, data, classes=2, seed=0, steps=0)
    with pytest.raises(ValueError, match="classes=1"):
        probe.ProbeNet(1, 1)


# From model files and the study's volumes ---------------------------------------------------------

TRAINING = {"patch_size": 16, "generator": {"width": 2, "depth": 2, "max_width": 8},
            "segmenter": {"width": 2, "depth": 2, "max_width": 8},
            "discriminator": {"channels": [4, 8], "dropout": 0.25}}
DATASETS = ("bright", "flat")


def write_model(path: Path, method: str, datasets=DATASETS) -> Path:
    torch.manual_seed(0)
    experiment = Experiment(name=method, method=method, datasets=datasets,
                            adversarial_weight=1.5 if method == "ours" else 0.0)
    torch.save({"card": {"experiment": experiment.to_dict(), "training": TRAINING, "seed": 0},
                "networks": build_networks(experiment, TRAINING).state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe")
    manifest_path = write_study(folder)
    manifest = read_manifest(manifest_path)
    tables = []
    for dataset in DATASETS:
        tables.append(folder / f"patches_{dataset}.csv")
        write_patch_table(manifest, dataset, {"train": 24}, 1, str(tables[-1]))
    models = {"Pre-processor": write_model(folder / "preprocessor.pt", "preprocessor"),
              "Ours": write_model(folder / "ours.pt", "ours")}
    return folder, manifest_path, tables, models


def test_probe_of_a_setting_writes_every_kind_and_split(files, tmp_path):
    folder, manifest, tables, models = files
    out = tmp_path / "probe" / "dual.csv"
    table = probe.probe_dataset_invariance(models, manifest, tables, count=16, seed=1, setting="dual", model_seed=7,
                                           out_csv=out, gpus=0, batch_size=8, steps=40)
    assert list(table.columns) == probe.COLUMNS
    assert [(k, s) for k, s in zip(table.kind, table.split)] == [(k, s) for k in probe.KINDS for s in probe.SPLITS]
    assert (table.patches == 32).all() and (table.chance == 0.5).all() and (table.seed == 7).all()
    assert table.accuracy.between(0, 1).all()
    # The two hand-made datasets differ in contrast: the raw inputs give their dataset away.
    raw = table[table.kind == "input"].set_index("split").accuracy
    assert raw["train"] >= 0.95 and raw["test"] >= 0.9, raw
    pd.testing.assert_frame_equal(pd.read_csv(out), table)


def test_probe_needs_two_generator_models_of_one_setting(files, tmp_path):
    folder, manifest, tables, models = files
    unet = write_model(tmp_path / "unet.pt", "unet")
    other = write_model(tmp_path / "other.pt", "ours", datasets=("flat", "bright"))
    arguments = dict(count=4, seed=1, setting="dual", model_seed=0, out_csv=tmp_path / "p.csv", gpus=0, steps=1)
    with pytest.raises(ValueError, match="missing \\['Ours'\\]"):
        probe.probe_dataset_invariance({"Pre-processor": models["Pre-processor"]}, manifest, tables, **arguments)
    with pytest.raises(ValueError, match="unet.pt.*has no generator"):
        probe.probe_dataset_invariance({**models, "Ours": unet}, manifest, tables, **arguments)
    with pytest.raises(ValueError, match="other.pt.*differ"):
        probe.probe_dataset_invariance({**models, "Ours": other}, manifest, tables, **arguments)
    assert not (tmp_path / "p.csv").exists()


# Table and claim P1 ---------------------------------------------------------------------------------

def probe_rows(setting: str, accuracies: dict[str, float], seed: int = 0, chance: float = 0.5) -> list[dict]:
    """Test accuracies per kind (train accuracy 1.0), in the probe's CSV columns."""
    return [{"setting": setting, "seed": seed, "kind": kind, "split": split,
             "accuracy": 1.0 if split == "train" else value, "chance": chance, "patches": 256}
            for kind, value in accuracies.items() for split in probe.SPLITS]


def probe_frame(*row_lists) -> pd.DataFrame:
    return pd.DataFrame([r for rows in row_lists for r in rows], columns=probe.COLUMNS)


DUAL_OK = {"input": 0.95, "z-scored": 0.9, "Pre-processor": 0.6, "Ours": 0.55}
MULTI_OK = {"input": 0.9, "z-scored": 0.8, "Pre-processor": 0.5, "Ours": 0.4}


def probe_verdict(frame: pd.DataFrame, config=None) -> dict:
    return claims_module.claim_probe(frame, config or paper_config())


def test_probe_settings_are_the_table3_settings_with_both_generators():
    assert probe.probe_settings(paper_config()) == {
        "dual": {"Pre-processor": "preprocessor_dual", "Ours": "ours_dual"},
        "multi": {"Pre-processor": "preprocessor_multi", "Ours": "ours_multi"}}
    assert set(probe.probe_settings(paper_config(without("ours_multi")))) == {"dual"}


def test_probe_table_shows_each_kind_with_chance():
    table = probe.probe_table(probe_frame(probe_rows("dual", DUAL_OK), probe_rows("multi", MULTI_OK, chance=1 / 3),
                                          probe_rows("dual", {**DUAL_OK, "Ours": 0.65}, seed=1)), paper_config())
    assert list(zip(table.setting, table.input)) == [(s, k) for s in ("dual", "multi") for k in probe.KINDS]
    dual = table[table.setting == "dual"].set_index("input")
    assert dual.loc["Ours", "probe accuracy, test subjects %"] == "60.0 ± 7.1"
    assert dual.loc["input", "probe accuracy, training subjects %"] == "100.0 ± 0.0"
    assert dual.loc["Ours", "experiment"] == "ours_dual" and dual.loc["input", "experiment"] == ""
    assert list(table.seeds) == [2] * 4 + [1] * 4
    assert list(table["chance %"]) == [50.0] * 4 + [33.3] * 4


def test_probe_table_without_rows_or_settings():
    table = probe.probe_table(probe_frame(), paper_config())
    assert (table["probe accuracy, test subjects %"] == "n/a").all() and (table.seeds == 0).all()
    empty = probe.probe_table(probe_frame(), paper_config(without("ours_dual", "ours_multi")))
    assert list(empty.columns) == ["note"]


def test_write_probe_table_reads_the_metric_csvs(tmp_path):
    paths = []
    for setting, accuracies in (("dual", DUAL_OK), ("multi", MULTI_OK)):
        paths.append(tmp_path / f"{setting}.csv")
        probe_frame(probe_rows(setting, accuracies)).to_csv(paths[-1], index=False)
    table = probe.write_probe_table(paths, paper_config(), tmp_path / "table_probe.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "table_probe.csv", dtype=str, keep_default_na=False),
                                  table.astype(str))
    pd.DataFrame({"setting": ["dual"]}).to_csv(tmp_path / "old.csv", index=False)
    with pytest.raises(ValueError, match="old.csv: lacks column"):
        probe.write_probe_table([tmp_path / "old.csv"], paper_config(), tmp_path / "t.csv")


def test_claim_p1_held_when_both_generators_bring_the_probe_closer_to_chance():
    row = probe_verdict(probe_frame(probe_rows("dual", DUAL_OK), probe_rows("multi", MULTI_OK, chance=1 / 3)))
    assert (row["claim"], row["verdict"], row["seeds"], row["seeds agreeing"]) == ("P1", "held", 1, "1/1")
    assert "dual: input 95.0 %, z-scored 90.0 %, Pre-processor 60.0 %, Ours 55.0 % (chance 50 %)" in row["measured"]
    assert "(chance 33 %)" in row["measured"]


@pytest.mark.parametrize("dual, verdict", [
    ({**DUAL_OK, "Ours": 0.95}, "NOT held"),  # as revealing as the inputs: a tie is not held
    ({**DUAL_OK, "Ours": 0.05}, "NOT held"),  # far below chance: farther from chance than the inputs
    ({**DUAL_OK, "Pre-processor": 0.05, "input": 0.95}, "NOT held"),  # equal distance on either side: tie
    ({**DUAL_OK, "Pre-processor": 0.95, "input": 0.05}, "NOT held"),  # same tie; 0.95 − 0.5 < 0.5 − 0.05 in floats
    ({**DUAL_OK, "Pre-processor": 0.45}, "held"),  # below chance but closer to it
    ({**DUAL_OK, "z-scored": 0.99}, "held"),  # z-scored inputs are shown, not judged
    ({**DUAL_OK, "Ours": float("nan")}, "not evaluated"),
    ({k: v for k, v in DUAL_OK.items() if k != "Pre-processor"}, "not evaluated"),  # missing rows
])
def test_claim_p1_ties_far_below_chance_and_missing_values(dual, verdict):
    row = probe_verdict(probe_frame(probe_rows("dual", dual), probe_rows("multi", MULTI_OK, chance=1 / 3)))
    assert row["verdict"] == verdict, row


def test_claim_p1_uses_chance_from_the_settings_datasets():
    # Multi (K = 3): 0.35 and 0.3 lie closer to 1/3 than the inputs' 0.6, but farther from 0.5;
    # chance comes from the setting's datasets (fixed before the run), not from the table.
    multi = {"input": 0.6, "z-scored": 0.5, "Pre-processor": 0.35, "Ours": 0.3}
    frame = probe_frame(probe_rows("dual", DUAL_OK), probe_rows("multi", multi, chance=0.5))
    assert probe_verdict(frame)["verdict"] == "held"
    frame = probe_frame(probe_rows("dual", multi), probe_rows("multi", MULTI_OK, chance=1 / 3))
    assert probe_verdict(frame)["verdict"] == "NOT held"


def test_claim_p1_not_evaluated_without_probe_rows_or_settings():
    assert probe_verdict(probe_frame())["verdict"] == "not evaluated"
    config = paper_config(without("ours_dual", "ours_multi"))
    assert probe_verdict(probe_frame(probe_rows("dual", DUAL_OK)), config)["verdict"] == "not evaluated"


def test_claim_p1_judges_seed_means_and_counts_agreeing_seeds():
    # Seed 1 alone: Ours (0.96) is farther from chance than the inputs (0.95); the mean (0.755) is closer.
    frame = probe_frame(probe_rows("dual", DUAL_OK, seed=0), probe_rows("dual", {**DUAL_OK, "Ours": 0.96}, seed=1),
                        probe_rows("multi", MULTI_OK, seed=0, chance=1 / 3),
                        probe_rows("multi", MULTI_OK, seed=1, chance=1 / 3))
    row = probe_verdict(frame)
    assert (row["verdict"], row["seeds"], row["seeds agreeing"]) == ("held", 2, "1/2")


def test_claims_table_gains_row_p1_only_with_the_probe_table():
    config = paper_config()
    without_probe = claims_module.claims(*study(), config, evaluated_on(config))
    assert list(without_probe.claim) == [f"C{i}" for i in range(1, 7)]
    with_probe = claims_module.claims(*study(), config, evaluated_on(config),
                                      probe=probe_frame(probe_rows("dual", DUAL_OK),
                                                        probe_rows("multi", MULTI_OK, chance=1 / 3)))
    assert list(with_probe.claim) == [*without_probe.claim, "P1"]
    assert with_probe.iloc[-1].verdict == "held" and with_probe.iloc[-1].paper == "not measured in the paper"
    pd.testing.assert_frame_equal(with_probe.iloc[:6], without_probe)
