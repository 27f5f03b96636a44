"""Example slices: inputs vs normalized images (Fig. 1), segmentations (Fig. 5), patches (Fig. 6).

Every image is a 2D array already oriented for display (drawn with ``origin="lower"``, no
rotation), intensities in [0, 1]; label maps hold 0 BG, 1 CSF, 2 GM, 3 WM. Each function writes
one PNG and returns a dict: ``panels`` (number of image axes), ``figsize`` (inches) and, where the
figure carries numbers, those numbers.
"""

from __future__ import annotations

import numpy as np

from dnorm.figures import _panels as panels
from dnorm.figures.intensity import save_figure
from dnorm.metrics import dice


def plot_input_vs_normalized(examples: list[dict], path: str) -> dict:
    """Fig. 1: one column per example, rows "input" then each method's normalized slice.

    Each example: ``dataset`` (str), ``subject`` (str), ``input`` (H×W), ``outputs``
    ({method: H×W}); every example must list the same methods (row order: the first example's).
    """
    panels.require_items(examples, "examples")
    for index, example in enumerate(examples):
        panels.require_keys(example, ("dataset", "subject", "input", "outputs"), f"examples[{index}]")
    methods = panels.same_keys([example["outputs"] for example in examples], "outputs of examples")
    columns = []
    for index, example in enumerate(examples):
        image = panels.as_image(example["input"], f"examples[{index}]['input']")
        columns.append([image] + [panels.as_image(example["outputs"][m], f"examples[{index}] output {m!r}",
                                                  image.shape) for m in methods])
    fig, axes = panels.image_grid(len(methods) + 1, len(examples), [column[0].shape for column in columns])
    for col, (example, images) in enumerate(zip(examples, columns)):
        for row, image in enumerate(images):
            panels.show_image(axes[row, col], image, f"{example['dataset']}/{example['subject']}" if row == 0 else None)
    panels.label_rows(axes, ["input"] + methods)
    result = panels.png_result(fig)
    save_figure(fig, path)
    return result


def slice_dice(prediction: np.ndarray, reference: np.ndarray) -> float:
    """Mean Dice over CSF/GM/WM on one 2D slice, classes absent from both maps skipped (nan if all)."""
    scores = [value for value in dice(prediction, reference).values() if not np.isnan(value)]
    return float(np.mean(scores)) if scores else float("nan")


def plot_segmentations(rows: list[dict], path: str) -> dict:
    """Fig. 5: one row per dataset; columns image, ground truth, then each method's labels.

    Each row: ``dataset``, ``subject``, ``image`` (H×W), ``reference`` (H×W int labels),
    ``predictions`` ({method: H×W int labels}). Titles carry each method's slice Dice (mean over
    CSF/GM/WM), also returned as ``dice`` {(dataset, subject, method): float}.
    """
    panels.require_items(rows, "rows")
    for index, row in enumerate(rows):
        panels.require_keys(row, ("dataset", "subject", "image", "reference", "predictions"), f"rows[{index}]")
    methods = panels.same_keys([row["predictions"] for row in rows], "predictions of rows")
    checked = [_checked_row(row, index, methods) for index, row in enumerate(rows)]
    fig, axes = panels.image_grid(len(rows), len(methods) + 2, [maps[0].shape for maps in checked])
    scores = {}
    for row, (image, reference, *predictions), line in zip(rows, checked, axes):
        panels.show_image(line[0], image, "image")
        panels.show_labels(line[1], image, reference, "ground truth")
        for axis, method, labels in zip(line[2:], methods, predictions):
            key = (row["dataset"], row["subject"], method)
            scores[key] = slice_dice(labels, reference)
            panels.show_labels(axis, image, labels, f"{method}\nDice {scores[key]:.3f}")
    panels.label_rows(axes, [f"{row['dataset']}/{row['subject']}" for row in rows])
    panels.class_legend(fig)
    result = panels.png_result(fig, dice=scores)
    save_figure(fig, path)
    return result


def _checked_row(row: dict, index: int, methods: list[str]) -> list[np.ndarray]:
    """[image, reference, prediction of each method] of one row of Fig. 5, checked."""
    image = panels.as_image(row["image"], f"rows[{index}]['image']")
    return [image, panels.as_label_map(row["reference"], f"rows[{index}]['reference']", image.shape)] + [
        panels.as_label_map(row["predictions"][m], f"rows[{index}] prediction {m!r}", image.shape) for m in methods]


def plot_patches(inputs: list, normalized: list, datasets: list[str], path: str, method: str = "Ours") -> dict:
    """Fig. 6: row "input" and row ``method``, one column per patch (H×W each), titled by dataset."""
    panels.require_items(inputs, "inputs")
    if not len(inputs) == len(normalized) == len(datasets):
        raise ValueError(f"inputs, normalized and datasets must have equal lengths, got "
                         f"{len(inputs)}, {len(normalized)} and {len(datasets)}")
    pairs = []
    for index, (source, output) in enumerate(zip(inputs, normalized)):
        image = panels.as_image(source, f"inputs[{index}]")
        pairs.append((image, panels.as_image(output, f"normalized[{index}]", image.shape)))
    fig, axes = panels.image_grid(2, len(pairs), [pair[0].shape for pair in pairs])
    for col, (pair, dataset) in enumerate(zip(pairs, datasets)):
        panels.show_image(axes[0, col], pair[0], str(dataset))
        panels.show_image(axes[1, col], pair[1])
    panels.label_rows(axes, ["input", method])
    result = panels.png_result(fig)
    save_figure(fig, path)
    return result
