"""The ablation table: each training variant against the study's settings, on validation patches.

One row per experiment × variant (:mod:`dnorm.training.ablation`): the final validation Dice
(mean and CSF) as mean ± sd over the training seeds, the values per seed, and the paired
difference to the default variant trained with the same seed (the seed's share of the spread
cancels in it). Only validation data: test subjects never decide a design choice.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dnorm.io import atomic_path
from dnorm.training.ablation import DEFAULT_VARIANT

#: per-cell columns summarized over seeds: (column of a cell's row, label in the table)
MEASURES = (("val_dice_mean", "val mean DSC"), ("val_dice_csf", "val CSF DSC"))


def read_cells(paths: Sequence[str]) -> pd.DataFrame:
    """The one-row CSVs of the cells, in one frame."""
    return pd.concat([pd.read_csv(path) for path in paths], ignore_index=True)


def _paired_difference(cells: pd.DataFrame, column: str) -> pd.Series:
    """Each cell's ``column`` minus the default variant's for the same experiment and seed (NaN
    where that default cell is missing)."""
    default = cells[cells.variant == DEFAULT_VARIANT].set_index(["experiment", "seed"])[column]
    return cells[column] - cells.join(default.rename("reference"), on=["experiment", "seed"])["reference"]


def ablation_table(cells: pd.DataFrame, variant_order: Sequence[str] = ()) -> pd.DataFrame:
    """One row per experiment × variant, in ``variant_order`` (then by name) within each
    experiment in order of appearance."""
    cells = cells.copy()
    for column, _ in MEASURES:
        cells[f"{column}_delta"] = _paired_difference(cells, column)
    order = {name: index for index, name in enumerate(variant_order)}
    rows = []
    for (experiment, variant), group in cells.groupby(["experiment", "variant"], sort=False):
        group = group.sort_values("seed")
        row = {"experiment": experiment, "variant": variant, "overrides": group["overrides"].iloc[0],
               "seeds": len(group), "seed list": " ".join(str(s) for s in group.seed)}
        for column, label in MEASURES:
            row[label] = group[column].mean()
            row[f"{label} sd"] = group[column].std(ddof=1) if len(group) > 1 else float("nan")
            row[f"{label} per seed"] = " / ".join(f"{v:.3f}" for v in group[column])
            row[f"{label} − default"] = group[f"{column}_delta"].mean()
        ratio = group.get("train_grad_ratio")
        row["gradient ratio"] = ratio.mean() if ratio is not None else float("nan")
        row["warm-up epochs"] = group["warmup_epochs"].mean()
        row["minutes"] = group["minutes"].mean()
        rows.append(row)
    table = pd.DataFrame(rows)
    experiments = {name: index for index, name in enumerate(dict.fromkeys(cells.experiment))}
    table["_e"] = table.experiment.map(experiments)
    table["_v"] = table.variant.map(lambda v: -1 if v == DEFAULT_VARIANT else order.get(v, len(order)))
    return table.sort_values(["_e", "_v", "variant"]).drop(columns=["_e", "_v"]).reset_index(drop=True)


def write_ablation_table(cell_paths: Sequence[str], variant_order: Sequence[str], path: str) -> pd.DataFrame:
    table = ablation_table(read_cells(cell_paths), variant_order)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, float_format="%.4f")
    return table
