"""Load the evaluation outputs of a run and draw Figs. 1 and 4–9 (:mod:`dnorm.figures`).

Slices are axial (the X×Y plane at the z with the most brain voxels of the subject), transposed
so x runs left to right and y (posterior → anterior) bottom to top with ``origin="lower"``.
One test subject per dataset is shown: the first in manifest order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dnorm.evaluation.discriminator import confusion_matrices
from dnorm.evaluation.segment import load_normalized_t1, manifest_row
from dnorm.figures.bias import plot_bias_examples, plot_bias_profiles
from dnorm.figures.discriminator import plot_confusion_matrices
from dnorm.figures.examples import plot_input_vs_normalized, plot_patches, plot_segmentations
from dnorm.figures.histograms import plot_class_histograms
from dnorm.evaluation.scores import CLASSES
from dnorm.io import load_labels, load_volume
from dnorm.manifest import read_manifest
from dnorm.metrics.bias import densest_slice


def axial(volume: np.ndarray, z: int) -> np.ndarray:
    """The X×Y plane at ``z`` of an X×Y×Z volume (first channel of X×Y×Z×C), ready to display."""
    volume = volume[..., 0] if volume.ndim == 4 else volume
    return np.asarray(volume[:, :, z], dtype=np.float32).T


def first_per_dataset(subjects) -> list[tuple[str, str]]:
    seen, out = set(), []
    for dataset, subject in subjects:
        if dataset not in seen:
            seen.add(dataset)
            out.append((dataset, subject))
    return out


def _display(image: np.ndarray) -> np.ndarray:
    """Intensities for display on [0, 1] (z-scored inputs of Standardization are rescaled)."""
    return np.clip(image, 0.0, 1.0)


def _subject_slices(manifest, manifest_path, subjects):
    """Per dataset's first test subject: ``(dataset, subject, image, reference, z)``."""
    for dataset, subject in first_per_dataset(subjects):
        row = manifest_row(manifest, dataset, subject, str(manifest_path))
        reference, _ = load_labels(row.label)
        yield dataset, subject, load_volume(row.t1)[0], reference, densest_slice(reference > 0, slice_axis=2)


def plot_segmentation_examples(manifest_path, subjects, labels: dict[str, dict[tuple[str, str], str]],
                               path) -> None:
    """Fig. 5: every method's labels (``labels[method][(dataset, subject)]``) beside the reference."""
    manifest = read_manifest(manifest_path)
    rows = [{"dataset": dataset, "subject": subject, "image": axial(image, z),
             "reference": axial(reference, z).astype(np.int64),
             "predictions": {m: axial(load_labels(files[(dataset, subject)])[0], z).astype(np.int64)
                             for m, files in labels.items()}}
            for dataset, subject, image, reference, z in _subject_slices(manifest, manifest_path, subjects)]
    plot_segmentations(rows, path)


def plot_normalization_examples(manifest_path, subjects, normalized: dict[str, dict[tuple[str, str], str]],
                                fig1_path, fig6_path, patches_per_dataset: int = 2, seed: int = 0) -> None:
    """Fig. 1 (input and each generator's output) and Fig. 6 (random 32×32 axial patches of
    inputs and of the last method's outputs, ``patches_per_dataset`` per dataset)."""
    manifest = read_manifest(manifest_path)
    rng = np.random.default_rng(seed)
    examples, patches = [], {"inputs": [], "normalized": [], "datasets": []}
    for dataset, subject, image, reference, z in _subject_slices(manifest, manifest_path, subjects):
        outputs = {m: _display(axial(load_normalized_t1(files[(dataset, subject)]), z)) for m, files in normalized.items()}
        examples.append({"dataset": dataset, "subject": subject, "input": axial(image, z), "outputs": outputs})
        shown = list(outputs.values())[-1]
        for _ in range(patches_per_dataset):
            window = _patch_window(reference[:, :, z].T > 0, rng)
            patches["inputs"].append(axial(image, z)[window])
            patches["normalized"].append(shown[window])
            patches["datasets"].append(dataset)
    plot_input_vs_normalized(examples, fig1_path)
    plot_patches(patches["inputs"], patches["normalized"], patches["datasets"], fig6_path,
                 method=list(normalized)[-1])


def _patch_window(brain: np.ndarray, rng: np.random.Generator, size: int = 32) -> tuple[slice, slice]:
    """A ``size``² window of a 2D plane centred on a random brain pixel, kept inside the plane."""
    rows, cols = np.nonzero(brain)
    pick = rng.integers(len(rows))
    starts = [min(max(c - size // 2, 0), max(n - size, 0)) for c, n in zip((rows[pick], cols[pick]), brain.shape)]
    return tuple(slice(int(s), int(s) + size) for s in starts)


def plot_histograms(manifest_path, subjects, normalized: dict[str, dict[tuple[str, str], str]], path,
                    bins: int = 100) -> None:
    """Fig. 7: per-class intensity histograms per dataset, of the inputs and of each method's
    normalized images, over the test subjects' voxels (reference labels)."""
    manifest = read_manifest(manifest_path)
    pooled: dict[tuple[str, str, str], list[np.ndarray]] = {}
    for dataset, subject in subjects:
        row = manifest_row(manifest, dataset, subject, str(manifest_path))
        labels, _ = load_labels(row.label)
        images = {"input": load_volume(row.t1)[0]} | {m: load_normalized_t1(files[(dataset, subject)])
                                                       for m, files in normalized.items()}
        for kind, image in images.items():
            image = image[..., 0] if image.ndim == 4 else image
            for label, name in CLASSES.items():
                pooled.setdefault((kind, dataset, name), []).append(image[labels == label])
    plot_class_histograms({key: np.concatenate(parts) for key, parts in pooled.items()}, path, bins=bins)


def plot_bias(profiles_csv, examples_npz, fig4_path, fig8_path, alphas=(0.5, 0.9)) -> None:
    """Figs. 4 and 8 from the outputs of :func:`dnorm.evaluation.bias.measure_bias_robustness`."""
    with np.load(examples_npz) as stored:
        alpha = float(stored["alpha"])
        datasets = sorted({key.split("/")[0] for key in stored.files if "/" in key})
        examples = [{"dataset": d, **{name: stored[f"{d}/{name}"].T for name in ("input", "field", "degraded",
                                                                               "normalized")}}
                    for d in datasets]
    for example in examples:
        brain = example["input"] > 0
        example["field"] = np.where(brain, example["field"], 1.0)  # outside the brain: no field drawn
        example["normalized"] = _display(example["normalized"])
    plot_bias_examples(examples, alpha, fig4_path)
    profiles = pd.read_csv(profiles_csv, dtype={"subject": str})
    means = profiles.groupby(["dataset", "alpha", "y"], as_index=False)[["original", "degraded", "normalized"]].mean()
    plot_bias_profiles(means, fig8_path, alphas=tuple(a for a in alphas if np.isclose(means.alpha, a).any()))


def plot_discriminator(tables: dict[str, str], path) -> None:
    """Fig. 9: per setting label (e.g. ``λ = 0.1``), D's confusion matrices on training and test
    patches, normalized by the number of samples (the paper's), in the reported mode, from
    :func:`dnorm.evaluation.discriminator.evaluate_discriminator` CSVs (summed over seeds)."""
    matrices, row_names, column_names = {}, [], []
    for label, csv in tables.items():
        per_split, row_names, column_names = confusion_matrices(pd.read_csv(csv))
        matrices |= {(label, split): matrix for split, matrix in per_split.items()}
    plot_confusion_matrices(matrices, row_names, column_names, path)


def per_method_files(methods, subjects, paths) -> dict[str, dict[tuple[str, str], str]]:
    """Split a flat list of files (for each method in order, one per subject) into
    ``{method: {(dataset, subject): path}}``."""
    subjects = [tuple(s) for s in subjects]
    if len(paths) != len(methods) * len(subjects):
        raise ValueError(f"expected {len(methods)} × {len(subjects)} files, got {len(paths)}")
    paths = list(paths)
    return {method: dict(zip(subjects, paths[i * len(subjects):(i + 1) * len(subjects)]))
            for i, method in enumerate(methods)}
