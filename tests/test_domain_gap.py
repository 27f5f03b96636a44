import numpy as np
import pandas as pd
import pytest

from study_helpers import tiny_dataset_config
from dnorm.domain_gap import class_statistics, dataset_summary, gm_wm_separation, site_divergence, subject_table
from dnorm.manifest import write_manifest
from dnorm.preprocess.pipeline import harmonize_datasets, preprocess_dataset
from dnorm.synth.benchmark import synthesize_dataset


def test_separation_hand_case():
    image = np.array([1.0, 3.0, 5.0, 7.0])  # GM {1, 3}: mean 2, std 1; WM {5, 7}: mean 6, std 1
    labels = np.array([2, 2, 3, 3])
    stats = class_statistics(image, labels)
    assert stats["mean_GM"] == 2 and stats["std_WM"] == 1 and np.isnan(stats["mean_CSF"])
    assert gm_wm_separation(stats) == pytest.approx(4.0)


def test_site_divergence_is_zero_for_one_site_and_ln2_for_disjoint_sites():
    first, second = np.array([5, 0]), np.array([0, 3])
    subjects = pd.DataFrame({"dataset": ["a", "a", "b", "b"], "site": ["x", "y", "z", "z"],
                             "histogram": [first, second, first, second]})
    divergence = site_divergence(subjects)
    assert divergence["a"] == pytest.approx(np.log(2)) and divergence["b"] == 0.0


@pytest.mark.slow
def test_default_benchmark_has_the_papers_domain_gap(default_config, tmp_path):
    """On the default config's sites and grids (fewer subjects): isointense iSEG-like T1
    (GM/WM separation < 1), well-separated MRBrainS-like T1 (> 2), ABIDE-like sites that differ."""
    cropped = []
    for name, subjects in (("iseg", 2), ("mrbrains", 2), ("abide", 4)):
        dataset = tiny_dataset_config(default_config, name, subjects)
        raw = synthesize_dataset(name, dataset, default_config["synth"], default_config["seed"], tmp_path / "raw" / name)
        cropped.append(preprocess_dataset(raw, default_config["preprocess"]["spacing"], tmp_path / "cropped" / name))
    splits = {name: d["split"] for name, d in default_config["datasets"].items()}
    manifest = harmonize_datasets(cropped, splits, 1, default_config["preprocess"]["clip_percentile"], 32, tmp_path / "final")
    summary = dataset_summary(subject_table(str(manifest))).set_index("dataset")
    print("\n" + summary.to_string(float_format=lambda v: f"{v:.3f}"))
    assert summary.loc["iseg", "gm_wm_separation_max"] < 1.0
    assert summary.loc["mrbrains", "gm_wm_separation_min"] > 2.0
    assert summary.loc["abide", "sites"] == 4 and summary.loc["abide", "site_jsd"] > 0.02
    assert summary.loc["abide", "site_GM_mean_sd"] > 0.02
