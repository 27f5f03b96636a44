"""Checks on metric tables read back from disk (written by an earlier rule run)."""

from __future__ import annotations

import pandas as pd


def check_metric_table(frame: pd.DataFrame, columns, categories: dict, source: str, rule: str) -> pd.DataFrame:
    """``frame`` if it has every one of ``columns`` and, for each ``categories`` column, only the
    known values; otherwise a ``ValueError`` naming ``source`` and the rule that writes the table
    (a table from an older version is re-made by rerunning that rule)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: lacks column(s) {missing}; expected {list(columns)} (re-run {rule})")
    for column, known in categories.items():
        unknown = sorted(set(frame[column]) - set(known))
        if unknown:
            raise ValueError(f"{source}: unknown {column} value(s) {unknown}; expected {list(known)}")
    return frame
