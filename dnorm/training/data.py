"""Batches of training and validation patches for one experiment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from dnorm.training.augment import apply_bias
from dnorm.training.patches import Volume, patch_corner
from dnorm.training.sampling import iteration_indices


@dataclass
class Batch:
    """``image`` N×C×p×p×p float32 (augmented when augmentation is on), ``labels`` N×p×p×p int64,
    ``domain`` N int64 (dataset index), ``clean`` the image before augmentation (the same tensor
    without augmentation), ``index`` N int64 (rows of the patch table)."""

    image: torch.Tensor
    labels: torch.Tensor
    domain: torch.Tensor
    clean: torch.Tensor | None = None
    index: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.clean is None:
            self.clean = self.image


@dataclass
class Draw:
    """The batches of one iteration of Algorithm 1: ``task`` for S and G, one per D update."""

    task: Batch
    discriminator: tuple[Batch, ...]


class PatchSet:
    """The patches of one split for an experiment's datasets (domain index = position in
    ``datasets``), read from memory-mapped volumes on demand.

    ``standardize`` z-scores each volume over its brain voxels (the Standardization baseline);
    ``bias_probability`` > 0 applies the Eq. (6) bias field to that share of patches.
    """

    def __init__(self, manifest: pd.DataFrame, patches: pd.DataFrame, datasets, modalities, patch_size: int,
                 standardize: bool = False, bias_probability: float = 0.0):
        self.datasets = list(datasets)
        self.patch_size = patch_size
        self.bias_probability = bias_probability
        self.patches = patches[patches.dataset.isin(self.datasets)].reset_index(drop=True)
        if self.patches.empty:
            raise ValueError(f"no patches for datasets {self.datasets}")
        rows = manifest.set_index(["dataset", "subject"])
        keys = list(self.patches.groupby(["dataset", "subject"]).groups)
        self.volumes = {key: Volume.open(rows.loc[key], modalities, standardize) for key in keys}
        #: the image and label files the patches are read from
        self.files = sorted({str(rows.loc[key][column]) for key in keys for column in [*modalities, "label"]})
        self.domain = self.patches.dataset.map({d: i for i, d in enumerate(self.datasets)}).to_numpy()

    def __len__(self) -> int:
        return len(self.patches)

    def batches(self, batch_size: int, rng: np.random.Generator | None = None) -> Iterator[Batch]:
        """Batches in a random order drawn from ``rng`` (training) or in table order (``None``).
        Augmentation draws also come from ``rng``, so an epoch is reproducible from its seed."""
        order = rng.permutation(len(self)) if rng is not None else np.arange(len(self))
        for start in range(0, len(order), batch_size):
            yield self.batch(order[start : start + batch_size], rng)

    def draws(self, batch_size: int, discriminator_steps: int, rng: np.random.Generator) -> Iterator[Draw]:
        """One epoch of Algorithm 1's iterations (:func:`dnorm.training.sampling.iteration_indices`):
        a fresh batch for each D update and another for the S/G update, all drawn from ``rng``."""
        for indices in iteration_indices(len(self), batch_size, discriminator_steps, rng):
            yield Draw(task=self.batch(indices.task, rng),
                       discriminator=tuple(self.batch(i, rng) for i in indices.discriminator))

    def batch(self, indices, rng: np.random.Generator | None = None) -> Batch:
        """The patches at rows ``indices``; with ``rng``, the bias field of Eq. (6) is applied to a
        ``bias_probability`` share of them (``clean`` keeps them as they were)."""
        images, clean, labels = [], [], []
        for index in indices:
            row = self.patches.iloc[index]
            volume = self.volumes[(row.dataset, row.subject)]
            corner = patch_corner((row.x, row.y, row.z), volume.labels.shape, self.patch_size)
            image, label = volume.patch(corner, self.patch_size)
            clean.append(image)
            if rng is not None and self.bias_probability > 0 and rng.random() < self.bias_probability:
                image = apply_bias(image, corner[1], volume.labels.shape[1], float(rng.uniform(0.0, 1.0)))
            images.append(image)
            labels.append(label)
        image = torch.from_numpy(np.stack(images))
        return Batch(image=image, labels=torch.from_numpy(np.stack(labels)),
                     domain=torch.from_numpy(self.domain[indices].astype(np.int64)),
                     clean=torch.from_numpy(np.stack(clean)) if self.bias_probability > 0 else image,
                     index=torch.from_numpy(np.asarray(indices, dtype=np.int64)))
