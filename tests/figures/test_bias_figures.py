"""Bias-field figures (Fig. 4 and Fig. 8): PNG written, grid drawn, argument checks."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dnorm.figures.bias import plot_bias_examples, plot_bias_profiles


def ratio(path):
    width, height = Image.open(path).size
    return width / height


def example(dataset, alpha, shape=(20, 16)):
    image = np.full(shape, 0.6)
    field = 1 - alpha * np.linspace(0, 1, shape[0])[:, None] * np.ones((1, shape[1]))
    return {"dataset": dataset, "input": image, "field": field, "degraded": image * field, "normalized": image}


def profiles(alphas=(0.5, 0.9), datasets=("MRBrainS", "iSEG")):
    y = np.arange(30)
    frames = []
    for dataset in datasets:
        for alpha in alphas:
            original = np.where((y > 3) & (y < 26), 0.5, np.nan)
            frames.append(pd.DataFrame({"dataset": dataset, "alpha": alpha, "y": y, "original": original,
                                        "degraded": original * (1 - alpha * y / 29), "normalized": original * 0.95}))
    return pd.concat(frames, ignore_index=True)


def test_bias_examples_grid(tmp_path):
    path = tmp_path / "fig4.png"
    drawn = plot_bias_examples([example("iSEG", 0.5), example("MRBrainS", 0.5)], 0.5, path)
    assert path.stat().st_size > 0
    assert drawn["panels"] == 2 * 4  # the colour bar is not counted
    width, height = drawn["figsize"]
    assert ratio(path) == pytest.approx(width / height, rel=0.25)


@pytest.mark.parametrize("alpha", [0.0, 1.0, -0.2, "strong", None])
def test_bias_examples_reject_alpha(tmp_path, alpha):
    with pytest.raises(ValueError, match="alpha"):
        plot_bias_examples([example("iSEG", 0.5)], alpha, tmp_path / "x.png")


def test_bias_examples_checks(tmp_path):
    with pytest.raises(ValueError, match=r"\[0.7, 1\], got \[0.5, 1\]"):
        plot_bias_examples([example("iSEG", 0.5)], 0.3, tmp_path / "x.png")  # field stronger than alpha
    bad = example("iSEG", 0.5) | {"degraded": np.zeros((20, 15))}
    with pytest.raises(ValueError, match=r"got \(20, 15\)"):
        plot_bias_examples([bad], 0.5, tmp_path / "x.png")
    with pytest.raises(ValueError, match="examples must not be empty"):
        plot_bias_examples([], 0.5, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_bias_profiles_grid(tmp_path):
    path = tmp_path / "fig8.png"
    drawn = plot_bias_profiles(profiles(alphas=(0.3, 0.5, 0.9)), path)
    assert path.stat().st_size > 0
    assert drawn["panels"] == 2 * 2
    assert drawn["datasets"] == ["MRBrainS", "iSEG"] and drawn["alphas"] == [0.5, 0.9]
    width, height = drawn["figsize"]
    assert ratio(path) == pytest.approx(width / height, rel=0.25)
    assert plot_bias_profiles(profiles(), tmp_path / "one.png", alphas=(0.9,))["panels"] == 2


def test_bias_profiles_checks(tmp_path):
    with pytest.raises(ValueError, match=r"alpha 0.7 is not in profiles.*\[0.5, 0.9\]"):
        plot_bias_profiles(profiles(), tmp_path / "x.png", alphas=(0.5, 0.7))
    with pytest.raises(ValueError, match=r"lacks columns \['normalized'\]"):
        plot_bias_profiles(profiles().drop(columns="normalized"), tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-empty DataFrame"):
        plot_bias_profiles(profiles().iloc[:0], tmp_path / "x.png")
    table = profiles()
    with pytest.raises(ValueError, match=r"repeated \(dataset, alpha, y\)"):
        plot_bias_profiles(pd.concat([table, table.iloc[:1]]), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
