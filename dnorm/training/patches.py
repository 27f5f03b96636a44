"""Training patches: centres drawn once per dataset and split, then read lazily.

Centres are drawn uniformly among foreground voxels (label > 0) of all the split's subjects of a
dataset, from a generator seeded only by (study seed, dataset, split): every experiment that
trains on a dataset sees the same subjects and the same patches. Volumes are memory-mapped
(uncompressed NIfTI), so paper-scale data does not have to fit in RAM.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd

from dnorm.io import atomic_path

PATCH_COLUMNS = ("dataset", "subject", "split", "x", "y", "z")


def centre_rng(seed: int, dataset: str, split: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(dataset.encode()), zlib.crc32(split.encode())])


def mapped(path: str) -> np.ndarray:
    """Array view of a NIfTI file: memory-mapped when uncompressed, read otherwise."""
    return np.asarray(nib.load(path, mmap="r").dataobj)


def sample_centres(manifest: pd.DataFrame, dataset: str, split: str, count: int, seed: int) -> pd.DataFrame:
    """``count`` patch centres (columns :data:`PATCH_COLUMNS`) uniformly among the foreground
    voxels of ``dataset``'s ``split`` subjects. Raises ``ValueError`` if there are none."""
    rows = manifest[(manifest.dataset == dataset) & (manifest.split == split)].sort_values("subject")
    if rows.empty:
        raise ValueError(f"dataset {dataset!r} has no {split!r} subjects in the manifest")
    # Two passes, so that memory stays at one volume plus the picks (holding every subject's
    # foreground indices costs 8 bytes per brain voxel of the split: ~7 GB for ABIDE).
    sizes = np.array([np.count_nonzero(mapped(path) > 0) for path in rows.label], dtype=np.int64)
    if sizes.sum() == 0:
        raise ValueError(f"dataset {dataset!r} {split!r} subjects have no foreground voxels")
    rng = centre_rng(seed, dataset, split)
    picks = np.sort(rng.integers(0, sizes.sum(), size=count))
    owner = np.searchsorted(np.cumsum(sizes), picks, side="right")
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    shape = mapped(rows.label.iloc[0]).shape
    flat = np.empty(count, dtype=np.int64)
    for o in np.unique(owner):  # picks are sorted: each subject's are contiguous
        mine = owner == o
        flat[mine] = np.flatnonzero(mapped(rows.label.iloc[o]) > 0)[picks[mine] - starts[o]]
    x, y, z = np.unravel_index(flat, shape) if count else (flat, flat, flat)
    table = pd.DataFrame({"dataset": dataset, "subject": rows.subject.to_numpy()[owner], "split": split,
                          "x": x, "y": y, "z": z})
    return table.sample(frac=1.0, random_state=np.random.RandomState(rng.integers(2**31))).reset_index(drop=True)


def write_patch_table(manifest: pd.DataFrame, dataset: str, counts: dict[str, int], seed: int, path: str) -> None:
    """Centres for every split in ``counts`` (e.g. ``{"train": 768, "val": 128}``) in one CSV."""
    table = pd.concat([sample_centres(manifest, dataset, split, n, seed) for split, n in counts.items()],
                      ignore_index=True)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def patch_corner(centre, shape, patch_size: int) -> tuple[int, int, int]:
    """Corner of the ``patch_size``³ window centred at ``centre``, shifted to lie inside ``shape``."""
    return tuple(int(min(max(c - patch_size // 2, 0), s - patch_size)) for c, s in zip(centre, shape))  # type: ignore[return-value]


@dataclass
class Volume:
    """One subject's memory-mapped images (list of X×Y×Z) and labels (X×Y×Z)."""

    images: list[np.ndarray]
    labels: np.ndarray
    offsets: np.ndarray  # per-modality value subtracted (z-scoring) or 0
    scales: np.ndarray  # per-modality divisor or 1

    @classmethod
    def open(cls, row: pd.Series, modalities, standardize: bool) -> "Volume":
        images = [mapped(row[m]) for m in modalities]
        offsets, scales = np.zeros(len(images), np.float32), np.ones(len(images), np.float32)
        if standardize:
            for index, image in enumerate(images):
                offsets[index], scales[index] = brain_statistics(image)
        return cls(images=images, labels=mapped(row.label), offsets=offsets, scales=scales)

    def patch(self, corner, patch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(C×p×p×p float32 image, p×p×p int64 labels)`` at ``corner``."""
        window = tuple(slice(c, c + patch_size) for c in corner)
        image = np.stack([np.asarray(i[window], dtype=np.float32) for i in self.images])
        brain = image[0] > 0
        image = np.where(brain, (image - self.offsets[:, None, None, None]) / self.scales[:, None, None, None], 0.0)
        return image.astype(np.float32), np.asarray(self.labels[window], dtype=np.int64)


def brain_statistics(image: np.ndarray) -> tuple[float, float]:
    """Mean and standard deviation over brain voxels (image > 0: volumes are skull-stripped, so
    this needs no label and works identically at test time)."""
    values = np.asarray(image)[np.asarray(image) > 0]
    if values.size < 2:
        raise ValueError("cannot standardize a volume with fewer than two brain voxels")
    return float(values.mean()), float(max(values.std(), 1e-6))
