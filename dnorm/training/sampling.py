"""Which patches each step of Algorithm 1 uses.

Algorithm 1 samples a fresh batch from all domains for each of the ``n_steps`` discriminator
updates and another for the segmenter/generator update. Here the S/G batches walk one random
permutation of the patch set per epoch (each patch once per epoch, as an epoch is usually
defined), and each iteration's D batches are drawn without replacement from the patches not in
that iteration's S/G batch, so no patch serves two steps of one iteration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np


@dataclass(frozen=True)
class IterationIndices:
    """Patch indices of one iteration: ``task`` for the S/G update, one array per D update."""

    task: np.ndarray
    discriminator: tuple[np.ndarray, ...]


def iterations_per_epoch(n_patches: int, batch_size: int) -> int:
    return -(-n_patches // batch_size)


def iteration_indices(n_patches: int, batch_size: int, discriminator_steps: int,
                      rng: np.random.Generator) -> Iterator[IterationIndices]:
    """One epoch of iterations (``ceil(n_patches / batch_size)``), all draws from ``rng``.

    D batches have ``batch_size`` patches (fewer if the set is too small to keep them apart from
    the S/G batch: then they share patches with each other, never with the S/G batch, unless the
    set has no other patch). Raises ``ValueError`` for an empty set or a non-positive size.
    """
    if n_patches < 1 or batch_size < 1 or discriminator_steps < 0:
        raise ValueError(f"need n_patches >= 1, batch_size >= 1 and discriminator_steps >= 0, got "
                         f"{n_patches}, {batch_size}, {discriminator_steps}")
    order = rng.permutation(n_patches)
    for start in range(0, n_patches, batch_size):
        task = order[start : start + batch_size]
        yield IterationIndices(task, tuple(_discriminator_batches(n_patches, task, batch_size, discriminator_steps, rng)))


def _discriminator_batches(n_patches, task, batch_size, steps, rng) -> list[np.ndarray]:
    if steps == 0:
        return []
    others = np.setdiff1d(np.arange(n_patches), task, assume_unique=True) if len(task) < n_patches else task
    size = min(batch_size, len(others))
    if size * steps <= len(others):
        drawn = rng.choice(others, size=size * steps, replace=False)
        return list(drawn.reshape(steps, size))
    return [rng.choice(others, size=size, replace=False) for _ in range(steps)]
