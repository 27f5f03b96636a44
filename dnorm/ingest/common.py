"""What every dataset adapter shares: finding the source, checking and converting one subject,
writing the manifest.

An adapter only knows its dataset's folder layout and label table. It lists its subjects as
:class:`SubjectFiles` and hands them to :func:`convert_subjects`, which for each subject

1. loads the T1 (and second modality) as float32, rejecting NaN/inf (``dnorm.io.load_volume``);
2. checks the second modality and the label volume share the T1's orientation, shape and affine
   (an orientation mismatch is reported as such, naming both files);
3. maps the label values to 0 BG, 1 CSF, 2 GM, 3 WM with the dataset's table; a value not in the
   table is an error naming the file and the values;
4. writes ``out_dir/<dataset>/<subject>_{t1,t2,label}.nii.gz`` (float32 images, uint8 labels,
   the source affine unchanged: no reorientation, no resampling), each file atomically;

and writes ``out_dir/manifest.csv`` only after every subject succeeded. Any manifest left by an
earlier run is removed first, so after a failure there is no manifest: the manifest is the "done"
marker of an ingest.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import nibabel as nib
import numpy as np
import pandas as pd

from dnorm.io import check_same_grid, load_image, load_volume, save_nifti
from dnorm.manifest import COLUMNS, format_spacing, write_manifest

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.csv"


@dataclass(frozen=True)
class SubjectFiles:
    """The source files of one subject, as an adapter found them.

    ``label_table`` maps every label value the source may hold to 0 BG, 1 CSF, 2 GM or 3 WM;
    ``table_name`` names that table in error messages.
    """

    subject: str
    site: str
    t1: Path
    label: Path
    label_table: Mapping[int, int] = field(repr=False)
    table_name: str = "label table"
    t2: Path | None = None


def require_source(source: str | os.PathLike, what: str) -> Path:
    """Return ``source`` as a Path; raise ``ValueError`` naming it if it is missing or empty."""
    path = Path(source)
    if not path.exists():
        raise ValueError(f"{path}: {what} source folder does not exist")
    if not path.is_dir():
        raise ValueError(f"{path}: {what} source is not a folder")
    if not any(path.iterdir()):
        raise ValueError(f"{path}: {what} source folder is empty")
    return path


def check_analyze_pair(header: Path) -> None:
    """An Analyze ``.hdr`` needs its ``.img``; raise ``ValueError`` naming the missing file."""
    data = header.with_suffix(".img")
    if not data.is_file():
        raise ValueError(f"{data}: image data file missing for header {header}")


def map_labels(values: np.ndarray, table: Mapping[int, int], path: Path, table_name: str) -> np.ndarray:
    """Map an integer label volume through ``table``; returns uint8 of the same shape.

    Raises ``ValueError`` naming ``path`` and every value missing from ``table``.
    """
    present = np.unique(values)
    unexpected = [int(v) for v in present if int(v) not in table]
    if unexpected:
        shown = unexpected if len(unexpected) <= 20 else unexpected[:20] + ["..."]
        raise ValueError(
            f"{path}: unexpected label value(s) {shown} not in the {table_name}; "
            f"allowed: {compact_ranges(table)}"
        )
    targets = np.array([table[int(v)] for v in present], dtype=np.uint8)
    return targets[np.searchsorted(present, values)]


def compact_ranges(values) -> str:
    """``[0, 2, 3, 4, 7]`` -> ``"0, 2-4, 7"`` (keeps messages about long label tables short)."""
    ordered = sorted(int(v) for v in values)
    parts: list[str] = []
    start = previous = None
    for value in ordered + [None]:
        if start is not None and value == previous + 1:
            previous = value
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = value
    return ", ".join(parts)


def read_raw_labels(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(labels X×Y×Z int64, affine)`` as stored, before mapping to tissues."""
    data, affine = load_volume(path, dtype=np.float32)
    rounded = np.round(data)
    if not np.array_equal(data, rounded):
        raise ValueError(f"{path}: label volume holds non-integer values")
    return rounded.astype(np.int64), affine


def check_grid(image_path: Path, image_shape, image_affine, other_path: Path, other_shape, other_affine) -> None:
    """Raise ``ValueError`` naming both files unless orientation, shape and affine agree."""
    codes_image = "".join(nib.aff2axcodes(image_affine))
    codes_other = "".join(nib.aff2axcodes(other_affine))
    if codes_image != codes_other:
        raise ValueError(
            f"{other_path}: orientation {codes_other} differs from {image_path} orientation {codes_image}"
        )
    check_same_grid(other_path, other_shape, other_affine, image_path, image_shape, image_affine)


def spacing_from_header(path: Path) -> tuple[float, float, float]:
    """Voxel size in mm from the image header's zooms."""
    zooms = tuple(float(z) for z in load_image(path).header.get_zooms()[:3])
    if len(zooms) != 3 or not all(np.isfinite(z) and z > 0 for z in zooms):
        raise ValueError(f"{path}: header voxel size {zooms} is not three positive numbers")
    return zooms  # type: ignore[return-value]


def convert_subject(files: SubjectFiles, dataset: str, out_dir: Path) -> dict[str, str]:
    """Check and convert one subject; returns its manifest row (absolute paths)."""
    t1, t1_affine = load_volume(files.t1)
    spacing = spacing_from_header(files.t1)
    t2 = None
    if files.t2 is not None:
        t2, t2_affine = load_volume(files.t2)
        check_grid(files.t1, t1.shape, t1_affine, files.t2, t2.shape, t2_affine)
    raw, label_affine = read_raw_labels(files.label)
    check_grid(files.t1, t1.shape, t1_affine, files.label, raw.shape, label_affine)
    labels = map_labels(raw, files.label_table, files.label, files.table_name)

    folder = out_dir / dataset
    row = {"dataset": dataset, "subject": files.subject, "site": files.site, "split": "",
           "t1": str(folder / f"{files.subject}_t1.nii.gz"), "t2": "",
           "label": str(folder / f"{files.subject}_label.nii.gz"), "spacing": format_spacing(spacing)}
    save_nifti(t1.astype(np.float32), t1_affine, row["t1"])
    if t2 is not None:
        row["t2"] = str(folder / f"{files.subject}_t2.nii.gz")
        save_nifti(t2.astype(np.float32), t2_affine, row["t2"])
    save_nifti(labels, label_affine, row["label"])
    return row


def remove_stale_manifest(out_dir: str | os.PathLike) -> Path:
    """Delete ``out_dir/manifest.csv`` if an earlier run left one; returns its path.

    Adapters call this before looking at the source, so a re-run that fails at any point
    (discovery included) leaves no manifest that would mark it as done.
    """
    manifest = Path(out_dir) / MANIFEST_NAME
    if manifest.is_file() or manifest.is_symlink():
        manifest.unlink()
    return manifest


def convert_subjects(subjects: list[SubjectFiles], dataset: str, source: Path, out_dir: str | os.PathLike) -> Path:
    """Convert every subject, then write ``out_dir/manifest.csv``; returns the manifest path."""
    manifest = remove_stale_manifest(out_dir)
    if not subjects:
        raise ValueError(f"{source}: no labelled {dataset} subjects found")
    names = [s.subject for s in subjects]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{source}: subject id(s) {duplicated} found more than once")
    rows = []
    for files in subjects:
        log.info("ingest %s subject %s from %s", dataset, files.subject, files.t1)
        rows.append(convert_subject(files, dataset, Path(out_dir)))
    write_manifest(pd.DataFrame(rows, columns=list(COLUMNS)), manifest)
    log.info("wrote %s (%d subjects)", manifest, len(rows))
    return manifest


def natural_key(name: str) -> tuple:
    """Sort ``subject-2`` before ``subject-10``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))
