"""Example-slice figures (Fig. 1, 5, 6): PNG written, panels drawn, slice Dice, argument checks."""

import numpy as np
import pytest
from PIL import Image

from dnorm.figures.examples import plot_input_vs_normalized, plot_patches, plot_segmentations, slice_dice


def ratio(path):
    width, height = Image.open(path).size
    return width / height


def disc_labels(shape=(24, 20)):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    radius = np.hypot(yy - shape[0] / 2, xx - shape[1] / 2)
    return np.digitize(-radius, [-9, -6, -3]).astype(np.int64)  # 0 outside, 1 CSF, 2 GM, 3 WM inside


def test_input_vs_normalized_grid(tmp_path):
    image = disc_labels() / 3.0
    examples = [{"dataset": d, "subject": "s1", "input": image, "outputs": {"Pre-processor": image, "Ours": 1 - image}}
                for d in ("iSEG", "MRBrainS", "ABIDE")]
    path = tmp_path / "fig1.png"
    drawn = plot_input_vs_normalized(examples, path)
    assert path.stat().st_size > 0
    assert drawn["panels"] == 3 * 3
    width, height = drawn["figsize"]
    assert ratio(path) == pytest.approx(width / height, rel=0.25)


def test_input_vs_normalized_checks(tmp_path):
    image = np.zeros((8, 8))
    with pytest.raises(ValueError, match=r"examples must not be empty"):
        plot_input_vs_normalized([], tmp_path / "x.png")
    bad_shape = [{"dataset": "a", "subject": "s", "input": image, "outputs": {"Ours": np.zeros((8, 9))}}]
    with pytest.raises(ValueError, match=r"\(8, 9\)"):
        plot_input_vs_normalized(bad_shape, tmp_path / "x.png")
    uneven = [{"dataset": "a", "subject": "s", "input": image, "outputs": {"Ours": image}},
              {"dataset": "b", "subject": "s", "input": image, "outputs": {"Other": image}}]
    with pytest.raises(ValueError, match=r"Other"):
        plot_input_vs_normalized(uneven, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"lacks keys \['subject'\]"):
        plot_input_vs_normalized([{"dataset": "a", "input": image, "outputs": {"Ours": image}}], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_segmentations_dice_in_result(tmp_path):
    reference = disc_labels()
    empty = np.zeros_like(reference)
    rows = [{"dataset": d, "subject": "s1", "image": reference / 3.0, "reference": reference,
             "predictions": {"Pre-processor": empty, "Ours": reference}} for d in ("iSEG", "MRBrainS")]
    path = tmp_path / "fig5.png"
    drawn = plot_segmentations(rows, path)
    assert path.stat().st_size > 0
    assert drawn["panels"] == 2 * 4
    assert drawn["dice"][("iSEG", "s1", "Ours")] == pytest.approx(1.0)
    assert drawn["dice"][("MRBrainS", "s1", "Pre-processor")] == pytest.approx(0.0)
    width, height = drawn["figsize"]
    assert ratio(path) == pytest.approx(width / height, rel=0.25)


def test_slice_dice_skips_absent_classes():
    reference = np.array([[0, 1], [1, 3]])
    prediction = np.array([[0, 1], [3, 3]])  # CSF 2·1/3, GM absent from both, WM 2·1/3
    assert slice_dice(prediction, reference) == pytest.approx(np.mean([2 / 3, 2 / 3]))
    assert np.isnan(slice_dice(np.zeros((2, 2), int), np.zeros((2, 2), int)))


def test_segmentations_checks(tmp_path):
    reference = disc_labels()
    row = {"dataset": "a", "subject": "s", "image": reference / 3.0, "reference": reference,
           "predictions": {"Ours": reference}}
    with pytest.raises(ValueError, match=r"labels must be in 0..3.*got 4"):
        plot_segmentations([row | {"predictions": {"Ours": reference + 4}}], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"integer labels.*float64"):
        plot_segmentations([row | {"reference": reference.astype(float)}], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"must have shape \(24, 20\), got \(20, 24\)"):
        plot_segmentations([row | {"reference": reference.T.copy()}], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"rows must not be empty"):
        plot_segmentations([], tmp_path / "x.png")


def test_patches_two_rows(tmp_path):
    rng = np.random.default_rng(0)
    inputs = [rng.random((16, 16)) for _ in range(4)]
    path = tmp_path / "fig6.png"
    drawn = plot_patches(inputs, [p ** 2 for p in inputs], ["iSEG", "MRBrainS"] * 2, path)
    assert drawn["panels"] == 2 * 4
    assert ratio(path) > 1.5  # four square patches side by side on two rows: a wide figure
    width, height = drawn["figsize"]
    assert ratio(path) == pytest.approx(width / height, rel=0.25)


def test_patches_checks(tmp_path):
    patch = np.zeros((4, 4))
    with pytest.raises(ValueError, match=r"equal lengths, got 2, 1 and 2"):
        plot_patches([patch, patch], [patch], ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"inputs must not be empty"):
        plot_patches([], [], [], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"NaN"):
        plot_patches([patch], [patch + np.nan], ["a"], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"2D array, got shape \(4,\)"):
        plot_patches([np.zeros(4)], [patch], ["a"], tmp_path / "x.png")
