"""Train/validation/test splits drawn once from the study seed."""

from __future__ import annotations

import zlib

import numpy as np


def split_counts(n_subjects: int, fractions) -> tuple[int, int, int]:
    """Subjects per split by largest remainder, with at least one validation and one test
    subject whenever there are three or more subjects (the paper's 8/1/1 and 3/1/1)."""
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or abs(fractions.sum() - 1) > 1e-6:
        raise ValueError(f"split fractions {fractions.tolist()} must be three non-negative numbers summing to 1")
    exact = fractions * n_subjects
    counts = np.floor(exact).astype(int)
    for index in np.argsort(-(exact - counts), kind="stable")[: n_subjects - counts.sum()]:
        counts[index] += 1
    if n_subjects >= 3:
        for index in (1, 2):
            if counts[index] == 0 and fractions[index] > 0:
                counts[index] += 1
                counts[int(np.argmax(counts))] -= 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def assign_splits(subjects, fractions, seed: int, dataset: str) -> dict[str, str]:
    """Map each subject to ``train``/``val``/``test``. The permutation depends only on the seed,
    the dataset name and the sorted subject list, so every experiment sees the same split."""
    ordered = sorted(subjects)
    rng = np.random.default_rng([seed, zlib.crc32(dataset.encode()), 7])
    permuted = [ordered[i] for i in rng.permutation(len(ordered))]
    n_train, n_val, _ = split_counts(len(ordered), fractions)
    names = ["train"] * n_train + ["val"] * n_val + ["test"] * (len(ordered) - n_train - n_val)
    return dict(zip(permuted, names))
