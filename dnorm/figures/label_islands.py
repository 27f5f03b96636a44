"""Reference-label islands: label voxels far from the brain, and where they lie.

The synthetic ABIDE-like references once carried tissue islands in the air, tens of mm from the
brain (label noise without a spatial bound, fixed in :func:`dnorm.synth.benchmark.tissue_labels`).
A single such voxel sets the directed Hausdorff distance from the reference to any prediction,
so these helpers measure them and draw them.

Volumes are X×Y×Z arrays in RAS voxel order (as :func:`dnorm.io.load_labels` returns them), label
maps hold 0 BG, 1 CSF, 2 GM, 3 WM. Views: axial = an X×Y plane, coronal = an X×Z plane, drawn
with X horizontal and ``origin="lower"`` (no radiological flip).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from dnorm.figures import _panels as panels
from dnorm.figures.intensity import save_figure

CLASS_NAMES = {1: "CSF", 2: "GM", 3: "WM"}
#: Colour of the far voxels: none of the class colours, visible on grey and on the labels.
FAR_COLOUR = "#FFD92F"


def main_component(mask: np.ndarray) -> np.ndarray:
    """The largest 26-connected component of boolean ``mask`` (all False if ``mask`` is empty)."""
    components, count = ndi.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(components.ravel())[1:]
    return components == (int(np.argmax(sizes)) + 1)


def island_distances(labels: np.ndarray, spacing) -> dict:
    """Distances (mm) of reference voxels from the brain's main component and, per class, from
    that class's main component.

    Returns ``brain_distance`` (X×Y×Z float, mm from the main component of ``labels > 0``),
    ``brain_components`` (int), and ``classes``: {name: {``components``, ``max_from_class_mm``,
    ``max_from_brain_mm``, ``voxels``}} for CSF, GM and WM (NaN distances for an absent class).
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels must be a 3D volume, got shape {labels.shape}")
    spacing = np.asarray(spacing, dtype=float)
    brain = labels > 0
    structure = np.ones((3, 3, 3), dtype=bool)
    main = main_component(brain)
    if main.any():
        brain_distance = ndi.distance_transform_edt(~main, sampling=spacing)
    else:
        brain_distance = np.full(labels.shape, np.nan)
    classes = {}
    for label, name in CLASS_NAMES.items():
        mask = labels == label
        count = int(ndi.label(mask, structure=structure)[1])
        if count == 0:
            classes[name] = dict(components=0, voxels=0, max_from_class_mm=float("nan"), max_from_brain_mm=float("nan"))
            continue
        own = ndi.distance_transform_edt(~main_component(mask), sampling=spacing)
        classes[name] = dict(components=count, voxels=int(mask.sum()), max_from_class_mm=float(own[mask].max()),
                             max_from_brain_mm=float(brain_distance[mask].max()))
    return dict(brain_distance=brain_distance, brain_components=int(ndi.label(brain, structure=structure)[1]),
                classes=classes)


def far_voxels(labels: np.ndarray, spacing, threshold_mm: float) -> np.ndarray:
    """Boolean X×Y×Z mask of label voxels (> 0) farther than ``threshold_mm`` from the brain's
    main component."""
    if threshold_mm < 0:
        raise ValueError(f"threshold_mm must be >= 0, got {threshold_mm}")
    distance = island_distances(labels, spacing)["brain_distance"]
    return (np.asarray(labels) > 0) & (distance > threshold_mm)


def _views(image: np.ndarray, labels: np.ndarray, far: np.ndarray) -> dict:
    """Axial and coronal slices through the brain's centre of mass, plus the far voxels
    projected through the whole volume along the viewing axis."""
    centre = np.rint(ndi.center_of_mass(labels > 0)).astype(int)
    return {
        "axial": (image[:, :, centre[2]].T, labels[:, :, centre[2]].T, far.any(axis=2).T),
        "coronal": (image[:, centre[1], :].T, labels[:, centre[1], :].T, far.any(axis=1).T),
    }


def plot_label_islands(rows: list[dict], threshold_mm: float, path: str) -> dict:
    """One row per reference, columns axial and coronal: the image slice through the brain's
    centre with the labels in class colours, and every label voxel farther than ``threshold_mm``
    from the brain's main component projected through the volume, ringed in yellow.

    Each row: ``title`` (str), ``image`` (X×Y×Z, intensities in [0, 1]), ``labels`` (X×Y×Z
    integer labels 0-3 on the image grid), ``spacing`` (3 mm). Writes one PNG and returns
    ``panels``, ``figsize`` and ``far`` (per row: number of far voxels and their largest
    distance in mm, 0 when none).
    """
    panels.require_items(rows, "rows")
    prepared = []
    for index, row in enumerate(rows):
        panels.require_keys(row, ("title", "image", "labels", "spacing"), f"rows[{index}]")
        image = np.asarray(row["image"], dtype=np.float64)
        labels = np.asarray(row["labels"])
        if image.shape != labels.shape or image.ndim != 3:
            raise ValueError(f"rows[{index}]: image {image.shape} and labels {labels.shape} must be one 3D grid")
        distances = island_distances(labels, row["spacing"])["brain_distance"]
        far = (labels > 0) & (distances > threshold_mm)
        worst = float(distances[far].max()) if far.any() else 0.0
        prepared.append((row["title"], _views(image, labels, far), far, worst))
    shapes = [view[0].shape for _, views, _, _ in prepared for view in views.values()]
    fig, axes = panels.image_grid(len(prepared), 2, shapes)
    summary = []
    for r, (title, views, far, worst) in enumerate(prepared):
        for c, (name, (image, labels, projected)) in enumerate(views.items()):
            axis = axes[r, c]
            panels.show_labels(axis, np.clip(image, 0.0, 1.0), labels.astype(np.int64),
                               f"{name}: {int(far.sum())} voxels > {threshold_mm:g} mm")
            ys, xs = np.nonzero(projected)
            axis.scatter(xs, ys, s=14, facecolors="none", edgecolors=FAR_COLOUR, linewidths=0.9)
            axis.set_xlim(-0.5, image.shape[1] - 0.5)
            axis.set_ylim(-0.5, image.shape[0] - 0.5)
        axes[r, 0].set_ylabel(f"{title}\nmax {worst:.0f} mm", fontsize=9)
        summary.append({"title": title, "far_voxels": int(far.sum()), "max_mm": worst})
    fig.suptitle(f"yellow rings: label voxels > {threshold_mm:g} mm from the brain,\nprojected through the volume",
                 fontsize=9)
    panels.class_legend(fig)
    result = panels.png_result(fig, far=summary)
    save_figure(fig, path)
    return result
