"""The manifest: one CSV row per subject, the contract between every stage of the study.

Columns (all required, in this order):

``dataset``  dataset name (``iseg``, ``mrbrains``, ``abide`` or a user's own)
``subject``  subject identifier, unique within its dataset
``site``     acquisition site or scanner (the discriminator's domains are datasets, sites are
             kept for analysis)
``split``    ``train``, ``val``, ``test`` or empty (not yet assigned)
``t1``       path of the T1-weighted image
``t2``       path of the second modality (T2 or T2-FLAIR), empty when the dataset has none
``label``    path of the label volume (0 BG, 1 CSF, 2 GM, 3 WM)
``spacing``  voxel spacing in mm as ``XxYxZ`` (e.g. ``0.958x0.958x3.000``)

Relative paths are relative to the manifest's own folder, so a results folder can be moved.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from dnorm.io import atomic_path

COLUMNS = ("dataset", "subject", "site", "split", "t1", "t2", "label", "spacing")
SPLITS = ("train", "val", "test")
IMAGE_COLUMNS = ("t1", "t2", "label")


def format_spacing(spacing) -> str:
    """``(0.958, 0.958, 3.0)`` -> ``"0.958x0.958x3.000"``."""
    return "x".join(f"{float(s):.3f}" for s in spacing)


def parse_spacing(text: str, source: str = "manifest") -> tuple[float, float, float]:
    """Inverse of :func:`format_spacing`; raises ``ValueError`` naming ``source`` if malformed."""
    parts = str(text).lower().split("x")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or not all(v > 0 for v in values):
        raise ValueError(f"{source}: spacing {text!r} is not three positive numbers like '1.0x1.0x3.0'")
    return values  # type: ignore[return-value]


def read_manifest(path: str | os.PathLike, check_files: bool = True) -> pd.DataFrame:
    """Read and validate a manifest; image paths come back absolute.

    Raises ``ValueError`` naming the manifest (and row) for missing columns, duplicate
    subjects, unknown splits, malformed spacings and, with ``check_files``, missing files.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: manifest not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as error:  # pandas raises many types for corrupt CSVs
        raise ValueError(f"{path}: cannot be read as a CSV manifest ({error})") from error
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: manifest lacks column(s) {missing}; expected {list(COLUMNS)}")
    unknown = [c for c in table.columns if c not in COLUMNS]
    if unknown:
        raise ValueError(f"{path}: manifest has unknown column(s) {unknown}; expected {list(COLUMNS)}")
    table = table[list(COLUMNS)].copy()
    duplicated = table.duplicated(["dataset", "subject"])
    if duplicated.any():
        row = table[duplicated].iloc[0]
        raise ValueError(f"{path}: subject {row.subject!r} of dataset {row.dataset!r} appears twice")
    for index, row in table.iterrows():
        where = f"{path} row {index + 2} ({row.dataset}/{row.subject})"
        if row.split not in ("",) + SPLITS:
            raise ValueError(f"{where}: split {row.split!r} is not one of {SPLITS} or empty")
        if not row.t1 or not row.label:
            raise ValueError(f"{where}: t1 and label paths are required")
        parse_spacing(row.spacing, where)
        for column in IMAGE_COLUMNS:
            if row[column]:
                absolute = (path.parent / row[column]).resolve()
                table.at[index, column] = str(absolute)
                if check_files and not absolute.is_file():
                    raise ValueError(f"{where}: {column} file {absolute} does not exist")
    return table


def write_manifest(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``table`` atomically, storing image paths relative to the manifest's folder."""
    path = Path(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: cannot write a manifest without column(s) {missing}")
    out = table[list(COLUMNS)].copy()
    for column in IMAGE_COLUMNS:
        out[column] = [_relative_to(value, path.parent) for value in out[column]]
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)


def _relative_to(value: str, folder: Path) -> str:
    if not value:
        return ""
    return os.path.relpath(Path(value).resolve(), folder.resolve())


def modalities(table: pd.DataFrame) -> tuple[str, ...]:
    """Image columns present for every row: ``("t1",)`` or ``("t1", "t2")``."""
    has_t2 = bool(len(table)) and all(bool(v) for v in table["t2"])
    return ("t1", "t2") if has_t2 else ("t1",)
