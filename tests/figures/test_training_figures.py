import sys
from pathlib import Path

import pandas as pd

from dnorm.figures.training import PANELS, load_histories, plot_training_curves

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
from png_checks import fraction_near, ink, pixels  # noqa: E402


def write_history(path: Path, with_d: bool) -> str:
    rows = [{"phase": "warmup", "epoch": 1, "train_reconstruction_rmse": 0.12},
            {"phase": "warmup", "epoch": 2, "train_reconstruction_rmse": 0.04}]
    for epoch in (1, 2, 3):
        row = {"phase": "train", "epoch": epoch, "train_seg_loss": 0.5 / epoch, "val_dice_mean": 0.5 + 0.1 * epoch,
               "val_dice_csf": 0.3 + 0.1 * epoch}
        if with_d:
            row |= {"train_grad_ratio": 0.1 * epoch, "val_d_accuracy": 0.9 - 0.1 * epoch,
                    "val_d_p_generated_generated": 0.8 - 0.2 * epoch}
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_each_metric_comes_from_its_phase(tmp_path):
    long = load_histories({"ours": write_history(tmp_path / "a.csv", True)})
    rmse = long[long.metric == "train_reconstruction_rmse"]
    assert rmse.value.tolist() == [0.12, 0.04] and rmse.epoch.tolist() == [1, 2]
    dice = long[long.metric == "val_dice_mean"]
    assert dice.epoch.tolist() == [1, 2, 3] and dice.value.tolist() == [0.6, 0.7, 0.8]


def test_histories_without_a_phase_column_are_joint_training(tmp_path):
    path = tmp_path / "old.csv"
    pd.DataFrame({"epoch": [1, 2], "val_dice_mean": [0.4, 0.6]}).to_csv(path, index=False)
    assert load_histories({"old": str(path)}).value.tolist() == [0.4, 0.6]


def test_figure_draws_every_experiment_in_its_colour(tmp_path):
    import seaborn as sns

    histories = {"ours": write_history(tmp_path / "a.csv", True), "unet": write_history(tmp_path / "b.csv", False)}
    out = tmp_path / "curves.png"
    plot_training_curves(histories, str(out))
    rgb = pixels(out)
    assert ink(rgb) > 0.05
    colours = dict(zip(sorted(histories), sns.color_palette("tab20", 2)))
    for colour in colours.values():
        assert fraction_near(rgb, colour, 0.03) > 1e-4
    assert len(PANELS) == 7
