"""The NIfTI-level evaluation steps on a hand-made two-dataset study: predicting test subjects,
scoring them, intensity divergence, the bias-field experiment, the discriminator's confusion, and
the figures drawn from their outputs. Tiny random-weight networks (width 2, patch 16)."""

from __future__ import annotations

import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
from training_fixtures import write_study  # noqa: E402

from dnorm.evaluation import bias as bias_module  # noqa: E402
from dnorm.evaluation.bias import measure_bias_robustness  # noqa: E402
from dnorm.evaluation.discriminator import COLUMNS as DISCRIMINATOR_COLUMNS  # noqa: E402
from dnorm.evaluation.discriminator import evaluate_discriminator, with_batch_statistics  # noqa: E402
from dnorm.evaluation.divergence import measure_divergence  # noqa: E402
from dnorm.evaluation.figures import (plot_bias, plot_discriminator, plot_histograms,  # noqa: E402
                                      plot_normalization_examples, plot_segmentation_examples)
from dnorm.evaluation.scores import score_experiment, score_subject  # noqa: E402
from dnorm.evaluation.segment import segment_test_subject  # noqa: E402
from dnorm.inference.predict import load_model  # noqa: E402
from dnorm.manifest import read_manifest  # noqa: E402
from dnorm.training.experiment import Experiment  # noqa: E402
from dnorm.training.networks import build_networks  # noqa: E402
from dnorm.training.patches import write_patch_table  # noqa: E402

TRAINING = {"patch_size": 16, "generator": {"width": 2, "depth": 2, "max_width": 8},
            "segmenter": {"width": 2, "depth": 2, "max_width": 8}, "discriminator": {"channels": [4, 8], "dropout": 0.25}}
DATASETS = ("bright", "flat")
TEST_SUBJECTS = [("bright", "bright_3"), ("flat", "flat_3")]


def write_model(path: Path, method: str) -> Path:
    torch.manual_seed(0)
    experiment = Experiment(name=method, method=method, datasets=DATASETS, adversarial_weight=1.5 if method == "ours" else 0.0)
    networks = build_networks(experiment, TRAINING)
    torch.save({"card": {"experiment": experiment.to_dict(), "training": TRAINING, "seed": 0},
                "networks": networks.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("study")
    return write_study(folder)


@pytest.fixture(scope="module")
def predictions(study, tmp_path_factory) -> dict[str, dict[tuple[str, str], tuple[Path, Path]]]:
    """Labels and normalized images of every test subject, per method."""
    folder = tmp_path_factory.mktemp("predictions")
    out = {}
    for method in ("unet", "standardization", "ours"):
        model = write_model(folder / f"{method}.pt", method)
        out[method] = {}
        for dataset, subject in TEST_SUBJECTS:
            labels, normalized = folder / f"{method}_{subject}_labels.nii.gz", folder / f"{method}_{subject}_normalized.nii.gz"
            probabilities = folder / f"{method}_{subject}_probabilities.nii.gz"
            segment_test_subject(model, study, dataset, subject, labels, normalized, probabilities, stride=8, gpus=0)
            out[method][(dataset, subject)] = (labels, normalized, probabilities)
    return out


def test_predictions_keep_the_input_grid_and_hold_valid_labels(study, predictions):
    row = read_manifest(study).set_index("subject").loc["bright_3"]
    reference = nib.load(row.label)
    labels_path, normalized_path, probabilities_path = predictions["ours"][("bright", "bright_3")]
    labels, probabilities = nib.load(labels_path), nib.load(probabilities_path)
    assert labels.shape == reference.shape and np.allclose(labels.affine, reference.affine)
    assert labels.get_data_dtype() == np.uint8 and set(np.unique(np.asarray(labels.dataobj))) <= {0, 1, 2, 3}
    assert probabilities.shape == (*reference.shape, 4)
    p = np.asarray(probabilities.dataobj)
    brain = np.asarray(nib.load(row.t1).dataobj) > 0
    np.testing.assert_allclose(p[brain].sum(axis=-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(labels.dataobj), np.argmax(p, axis=-1))
    assert nib.load(normalized_path).shape == reference.shape


def test_baselines_write_the_image_their_segmenter_saw(study, predictions):
    row = read_manifest(study).set_index("subject").loc["flat_3"]
    image = np.asarray(nib.load(row.t1).dataobj)
    unet = np.asarray(nib.load(predictions["unet"][("flat", "flat_3")][1]).dataobj)
    np.testing.assert_array_equal(unet, image)
    standardized = np.asarray(nib.load(predictions["standardization"][("flat", "flat_3")][1]).dataobj)
    brain = image > 0
    assert abs(standardized[brain].mean()) < 1e-4 and abs(standardized[brain].std() - 1) < 1e-3
    assert (standardized[~brain] == 0).all()


def test_a_perfect_prediction_scores_dice_1_and_distance_0(study):
    row = read_manifest(study).set_index("subject").loc["bright_3"]
    scores = score_subject(row.label, row.label).set_index("class")
    assert list(scores.index) == ["CSF", "GM", "WM"]
    assert (scores.dice == 1).all() and (scores.mhd == 0).all() and (scores.hd95 == 0).all()


def test_a_missing_class_is_flagged_with_nan_distances(study, tmp_path):
    row = read_manifest(study).set_index("subject").loc["bright_3"]
    reference = nib.load(row.label)
    data = np.asarray(reference.dataobj).copy()
    data[data == 1] = 2  # no CSF predicted
    path = tmp_path / "no_csf.nii.gz"
    nib.save(nib.Nifti1Image(data, reference.affine), path)
    scores = score_subject(path, row.label).set_index("class")
    assert scores.loc["CSF", "dice"] == 0 and np.isnan(scores.loc["CSF", "mhd"]) and scores.loc["CSF", "pred_empty"] == 1
    assert scores.loc["WM", "dice"] == 1 and 0 < scores.loc["GM", "dice"] < 1


def test_scores_of_a_prediction_on_another_grid_name_the_files(study, tmp_path):
    row = read_manifest(study).set_index("subject").loc["bright_3"]
    path = tmp_path / "shifted.nii.gz"
    reference = nib.load(row.label)
    affine = reference.affine.copy()
    affine[0, 3] += 5
    nib.save(nib.Nifti1Image(np.asarray(reference.dataobj), affine), path)
    with pytest.raises(ValueError, match="shifted.nii.gz"):
        score_subject(path, row.label)


def test_experiment_scores_have_one_row_per_subject_and_class(study, predictions, tmp_path):
    files = {key: labels for key, (labels, _, _) in predictions["ours"].items()}
    table = score_experiment(study, files, "ours", 5, tmp_path / "scores.csv")
    assert len(table) == 2 * 3 and set(table.seed) == {5}
    assert pd.read_csv(tmp_path / "scores.csv").shape == table.shape


def test_divergence_is_zero_per_class_when_outputs_agree_across_datasets(study, tmp_path):
    """Outputs that map each class to one intensity in every dataset have per-class JSD 0,
    while the two datasets' inputs (different contrast) do not."""
    manifest = read_manifest(study)
    paths = []
    for dataset, subject in TEST_SUBJECTS:
        row = manifest.set_index("subject").loc[subject]
        labels = nib.load(row.label)
        path = tmp_path / f"{subject}_normalized.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(labels.dataobj) / 3.0, labels.affine), path)
        paths.append(path)
    table = measure_divergence(study, TEST_SUBJECTS, paths, "ours", 0, 50, tmp_path / "jsd.csv").set_index(["image", "region"])
    for region in ("CSF", "GM", "WM"):
        assert table.loc[("normalized", region), "jsd"] == 0.0
        assert table.loc[("input", region), "jsd"] > 0.1
    assert set(table.datasets) == {"bright+flat"}


class _Identity(nn.Module):
    def forward(self, x):
        return x


def test_bias_robustness_of_an_identity_generator(study, tmp_path, monkeypatch):
    """G = identity: the normalized volume is the degraded one, so their ρ agree; ρ grows with α."""
    networks, card = load_model(write_model(tmp_path / "ours.pt", "ours"))
    networks["generator"] = _Identity()
    monkeypatch.setattr(bias_module, "load_model", lambda path: (networks, card))
    outputs = {"correlations_csv": tmp_path / "bias.csv", "profiles_csv": tmp_path / "profiles.csv",
               "examples_npz": tmp_path / "examples.npz"}
    table = measure_bias_robustness("ours.pt", study, TEST_SUBJECTS, [0.9, 0.5], "ours", 0, gpus=0, **outputs)
    assert sorted(table.alpha.unique()) == [0.0, 0.5, 0.9]
    np.testing.assert_allclose(table.rho_normalized, table.rho_degraded, atol=1e-5)
    for _, rows in table.groupby("dataset"):
        assert rows.sort_values("alpha").rho_degraded.is_monotonic_increasing
    profiles = pd.read_csv(outputs["profiles_csv"])
    assert len(profiles) == 2 * 3 * 36
    with np.load(outputs["examples_npz"]) as stored:
        assert float(stored["alpha"]) == pytest.approx(0.9)
        field = stored["bright/field"]
        assert field[field > 0].min() >= 0.1 - 1e-6 and field.max() <= 1.0
    plot_bias(outputs["profiles_csv"], outputs["examples_npz"], tmp_path / "fig4.png", tmp_path / "fig8.png")
    assert (tmp_path / "fig4.png").stat().st_size > 10_000 and (tmp_path / "fig8.png").stat().st_size > 10_000


def test_discriminator_confusion_counts_every_real_and_generated_patch(study, tmp_path):
    manifest = read_manifest(study)
    tables = []
    for dataset in DATASETS:
        path = tmp_path / f"patches_{dataset}.csv"
        write_patch_table(manifest, dataset, {"train": 10, "val": 4}, 1, str(path))
        tables.append(path)
    model = write_model(tmp_path / "ours.pt", "ours")
    table = evaluate_discriminator(model, study, tables, count=6, seed=1, experiment_name="ours", model_seed=0,
                                   out_csv=tmp_path / "d.csv", gpus=0, batch_size=4)
    assert list(table.columns) == DISCRIMINATOR_COLUMNS
    totals = table.groupby(["mode", "split", "dataset", "kind"])["count"].sum()
    assert (totals == 6).all() and len(totals) == 2 * 2 * 2 * 2
    assert set(table.predicted) == {"bright", "flat", "generated"}
    assert ((table.p_generated_sum >= 0) & (table.p_generated_sum <= table["count"])).all()
    # Running statistics do not depend on how patches are batched; batch statistics may.
    other = evaluate_discriminator(model, study, tables, count=6, seed=1, experiment_name="ours", model_seed=0,
                                   out_csv=tmp_path / "d3.csv", gpus=0, batch_size=3)
    running = [t[t["mode"] == "eval"].reset_index(drop=True) for t in (table, other)]
    pd.testing.assert_frame_equal(running[0].drop(columns="p_generated_sum"), running[1].drop(columns="p_generated_sum"))
    np.testing.assert_allclose(running[0].p_generated_sum, running[1].p_generated_sum, atol=1e-4)
    plot_discriminator({"λ = 1.5": tmp_path / "d.csv"}, tmp_path / "fig9.png")
    assert (tmp_path / "fig9.png").stat().st_size > 10_000
    with pytest.raises(ValueError, match="batch size.*got 1"):
        evaluate_discriminator(model, study, tables, count=6, seed=1, experiment_name="ours", model_seed=0,
                               out_csv=tmp_path / "d1.csv", gpus=0, batch_size=1)


def test_batch_statistics_copy_leaves_the_discriminator_untouched(tmp_path):
    networks, _ = load_model(write_model(tmp_path / "ours.pt", "ours"))
    discriminator = networks["discriminator"]
    before = {k: v.clone() for k, v in discriminator.state_dict().items()}
    batch_mode = with_batch_statistics(discriminator)
    norms = [m for m in batch_mode.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    dropouts = [m for m in batch_mode.modules() if isinstance(m, nn.Dropout3d)]
    assert norms and all(m.training for m in norms) and dropouts and not any(m.training for m in dropouts)
    with torch.no_grad():
        patches = torch.rand(4, 1, 16, 16, 16)
        batch_mode(patches)
        # Batch statistics: a patch's logits depend on its batch mates; running statistics: not.
        assert not torch.allclose(batch_mode(patches)[:2], batch_mode(patches[:2]))
        torch.testing.assert_close(discriminator(patches)[:2], discriminator(patches[:2]))
    assert not discriminator.training
    for key, value in discriminator.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_example_figures_from_predictions(study, predictions, tmp_path):
    labels = {m: {k: v[0] for k, v in files.items()} for m, files in predictions.items()}
    normalized = {"Ours": {k: v[1] for k, v in predictions["ours"].items()}}
    plot_segmentation_examples(study, TEST_SUBJECTS, labels, tmp_path / "fig5.png")
    plot_normalization_examples(study, TEST_SUBJECTS, normalized, tmp_path / "fig1.png", tmp_path / "fig6.png")
    plot_histograms(study, TEST_SUBJECTS, normalized, tmp_path / "fig7.png", bins=20)
    for name in ("fig1", "fig5", "fig6", "fig7"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000


def test_normalized_images_of_two_modality_models_are_read_on_t1(tmp_path):
    from dnorm.evaluation.segment import load_normalized_t1

    data = np.random.default_rng(0).uniform(size=(5, 6, 7, 2)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "two.nii.gz")
    np.testing.assert_array_equal(load_normalized_t1(tmp_path / "two.nii.gz"), data[..., 0])
    nib.save(nib.Nifti1Image(np.full((3, 3, 3), np.nan, np.float32), np.eye(4)), tmp_path / "nan.nii.gz")
    with pytest.raises(ValueError, match="nan.nii.gz"):
        load_normalized_t1(tmp_path / "nan.nii.gz")
