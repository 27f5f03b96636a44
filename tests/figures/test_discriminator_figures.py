"""Discriminator confusion-matrix figure (Fig. 9): PNG written, grid drawn, argument checks."""

import numpy as np
import pytest
from PIL import Image

from dnorm.figures.discriminator import plot_confusion_matrices

ROWS = ["real iSEG", "real MRBrainS", "generated iSEG", "generated MRBrainS"]
COLUMNS = ["iSEG", "MRBrainS", "generated"]


def matrices(settings=("λ = 0.1", "λ = 1.5", "λ = 5.0"), splits=("train", "test")):
    rng = np.random.default_rng(0)
    return {(s, split): rng.dirichlet(np.ones(3), size=4) for s in settings for split in splits}


def test_confusion_grid(tmp_path):
    table = matrices()
    table["λ = 5.0", "test"][3] = np.nan  # no generated MRBrainS test sample
    path = tmp_path / "fig9.png"
    drawn = plot_confusion_matrices(table, ROWS, COLUMNS, path)
    assert path.stat().st_size > 0
    assert drawn["panels"] == 3 * 2  # the colour bar is not counted
    assert drawn["settings"] == ["λ = 0.1", "λ = 1.5", "λ = 5.0"] and drawn["splits"] == ["train", "test"]
    width, height = drawn["figsize"]
    assert Image.open(path).size[0] / Image.open(path).size[1] == pytest.approx(width / height, rel=0.25)


def test_confusion_missing_pair_leaves_panel(tmp_path):
    table = matrices(settings=("a", "b"))
    del table["b", "test"]
    assert plot_confusion_matrices(table, ROWS, COLUMNS, tmp_path / "x.png")["panels"] == 4


def test_confusion_checks(tmp_path):
    with pytest.raises(ValueError, match="matrices must not be empty"):
        plot_confusion_matrices({}, ROWS, COLUMNS, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"must have shape \(4, 3\).*got \(4, 4\)"):
        plot_confusion_matrices({("a", "train"): np.zeros((4, 4))}, ROWS, COLUMNS, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"2K row names.*3 rows"):
        plot_confusion_matrices(matrices(), ROWS[:3], COLUMNS, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"fractions in \[0, 1\] or NaN, got 1.5"):
        plot_confusion_matrices({("a", "train"): np.full((4, 3), 1.5)}, ROWS, COLUMNS, tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\(setting_label, split\), got 'a'"):
        plot_confusion_matrices({"a": np.zeros((4, 3))}, ROWS, COLUMNS, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_panel_accuracy_of_matrices_normalized_by_all_samples(tmp_path):
    # D calls every generated patch real and every real patch right: accuracy 50 %.
    fooled = np.array([[0.25, 0, 0], [0, 0.25, 0], [0.25, 0, 0], [0, 0.25, 0]])
    # Correct cells: real diagonal 0.2 + 0.1, generated -> "generated" 0.2 + 0.05: 0.55.
    mixed = np.array([[0.2, 0.05, 0], [0.1, 0.1, 0.05], [0.05, 0, 0.2], [0, 0.2, 0.05]])
    rows = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])  # row-normalized: no accuracy
    drawn = plot_confusion_matrices({("fooled", "test"): fooled, ("mixed", "test"): mixed,
                                     ("rows", "test"): rows}, ROWS, COLUMNS, tmp_path / "x.png")
    assert drawn["accuracy"] == {("fooled", "test"): pytest.approx(0.5), ("mixed", "test"): pytest.approx(0.55)}
