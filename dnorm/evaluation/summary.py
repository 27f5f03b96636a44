"""Summaries of per-subject metrics over subjects, then over repeated training seeds.

A model's score is first averaged over its test subjects (one number per seed); tables show the
mean ± sample standard deviation of those numbers over seeds (``n`` seeds; no ± with one seed).
Paired tests compare two methods over the same test subjects (scores averaged over seeds), and
over the same (test subject, training seed) pairs: seed k of one method against seed k of the
other. Seeds are independent trainings, so that pairing adds no matching of its own; it counts
each training's score, which gives the test some power where a setting has two test subjects,
but the pairs of one subject are not independent, so read its p-value as indicative.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from dnorm.evaluation.paper import CLASS_NAMES

METRICS = ("dice", "mhd")


def read_tables(paths) -> pd.DataFrame:
    """Concatenate per-model metric CSVs (an empty frame for none); subjects stay strings."""
    frames = [pd.read_csv(p, dtype={"subject": str}) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def per_seed(segmentation: pd.DataFrame, experiment: str, datasets=None) -> pd.DataFrame:
    """Rows: seeds; columns ``(metric, class)`` for CSF, GM, WM and ``mean`` (of the three
    class means), each averaged over the experiment's test subjects (restricted to ``datasets``).
    Undefined distances (an empty class) are left out of their average."""
    rows = segmentation[segmentation.experiment == experiment]
    if datasets is not None:
        rows = rows[rows.dataset.isin(list(datasets))]
    if rows.empty:
        raise ValueError(f"no segmentation scores for experiment {experiment!r}"
                         + (f" on datasets {list(datasets)}" if datasets is not None else ""))
    by_class = rows.groupby(["seed", "class"])[list(METRICS)].mean().unstack("class")
    by_class = by_class.reindex(columns=pd.MultiIndex.from_product([METRICS, CLASS_NAMES]))
    for metric in METRICS:
        by_class[(metric, "mean")] = by_class[metric][list(CLASS_NAMES)].mean(axis=1)
    return by_class


def per_subject_mean_dice(segmentation: pd.DataFrame, experiment: str, by_seed: bool = False) -> pd.Series:
    """Mean Dice over CSF, GM, WM per test subject ``(dataset, subject)``, averaged over seeds;
    with ``by_seed``, per test subject and seed ``(dataset, subject, seed)``."""
    rows = segmentation[segmentation.experiment == experiment]
    per_seed_scores = rows.groupby(["dataset", "subject", "seed"])["dice"].mean()
    return per_seed_scores if by_seed else per_seed_scores.groupby(["dataset", "subject"]).mean()


def mean_sd(values) -> tuple[float, float, int]:
    """Mean, sample sd (NaN for one value) and count of the finite values."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan"), 0
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else float("nan"), int(values.size)


def formatted(values, digits: int = 3) -> str:
    """``"0.842 ± 0.010"`` over seeds, ``"0.842"`` for one seed, ``"n/a"`` when undefined."""
    mean, sd, n = mean_sd(values)
    if n == 0:
        return "n/a"
    return f"{mean:.{digits}f}" if n == 1 else f"{mean:.{digits}f} ± {sd:.{digits}f}"


def paired_test(a: pd.Series, b: pd.Series) -> dict:
    """Two-sided Wilcoxon signed-rank test of ``a − b`` over the subjects both have.

    Returns ``{"n", "mean_difference", "p_value"}``; ``p_value`` is NaN with fewer than two
    subjects or when every difference is 0 (the test is undefined)."""
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    difference = (joined.a - joined.b).to_numpy()
    p_value = float("nan")
    if difference.size >= 2 and np.any(difference != 0):
        p_value = float(stats.wilcoxon(difference, alternative="two-sided").pvalue)
    return {"n": int(difference.size), "mean_difference": float(difference.mean()) if difference.size else float("nan"),
            "p_value": p_value}
