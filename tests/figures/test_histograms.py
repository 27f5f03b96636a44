"""Per-class histogram figure (Fig. 7): PNG written, grid and JSD per panel, argument checks."""

import math

import numpy as np
import pytest
from PIL import Image

from dnorm.figures.histograms import plot_class_histograms


def samples():
    rng = np.random.default_rng(0)
    out = {}
    for kind, spread in (("input", 0.3), ("Pre-processor", 0.0), ("Ours", 0.0)):
        for index, dataset in enumerate(("iSEG", "MRBrainS")):
            for centre, name in zip((0.2, 0.5, 0.8), ("CSF", "GM", "WM")):
                out[kind, dataset, name] = np.clip(rng.normal(centre + spread * index, 0.02, 2000), 0, 1)
    return out


def test_histogram_grid_and_jsd(tmp_path):
    path = tmp_path / "fig7.png"
    drawn = plot_class_histograms(samples(), path, bins=50)
    assert path.stat().st_size > 0
    assert drawn["panels"] == 3 * 3
    assert list(drawn["jsd"])[:3] == [("input", "CSF"), ("input", "GM"), ("input", "WM")]
    assert drawn["jsd"]["input", "CSF"] == pytest.approx(math.log(2), rel=1e-3)  # disjoint supports
    assert drawn["jsd"]["Ours", "GM"] < 0.05  # same distribution, sampling noise only
    width, height = drawn["figsize"]
    assert Image.open(path).size[0] / Image.open(path).size[1] == pytest.approx(width / height, rel=0.25)


def test_histogram_identical_datasets_give_zero(tmp_path):
    values = np.linspace(0, 1, 100)
    drawn = plot_class_histograms({("input", "a", "WM"): values, ("input", "b", "WM"): values}, tmp_path / "x.png")
    assert drawn["panels"] == 1
    assert drawn["jsd"] == {("input", "WM"): pytest.approx(0.0, abs=1e-12)}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({}, "samples must not be empty"),
        ({("input", "a", "BG"): np.ones(3)}, "class_name must be one of.*'BG'"),
        ({("input", "a"): np.ones(3)}, r"\('input', 'a'\)"),
        ({("input", "a", "GM"): np.ones((2, 2))}, r"1D array, got shape \(2, 2\)"),
        ({("input", "a", "GM"): np.array([])}, r"non-empty 1D array"),
        ({("input", "a", "GM"): np.array([0.1, np.nan])}, "NaN"),
    ],
)
def test_histogram_checks(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        plot_class_histograms(bad, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_histogram_rejects_bins(tmp_path):
    with pytest.raises(ValueError, match="bins must be a positive integer, got 0"):
        plot_class_histograms({("input", "a", "GM"): np.ones(3)}, tmp_path / "x.png", bins=0)
