"""MRBrainS13 (adults, T1 + T2-FLAIR, 0.958 × 0.958 × 3.0 mm, NIfTI).

Layout (``source`` is the dataset folder holding ``TrainingData/``, or ``TrainingData`` itself)::

    TrainingData/N/T1.nii              T1 registered to the FLAIR: 0.958 x 0.958 x 3.0 mm
    TrainingData/N/T1_1mm.nii          the T1 at its acquired ~1 mm resolution (not used)
    TrainingData/N/T1_IR.nii           (not used)
    TrainingData/N/T2_FLAIR.nii        second modality
    TrainingData/N/LabelsForTesting.nii    0 BG, 1 CSF, 2 GM, 3 WM (used)
    TrainingData/N/LabelsForTraining.nii   8 classes (not used)

Why ``T1.nii`` and not ``T1_1mm.nii``: ``T1.nii``, ``T2_FLAIR.nii`` and the label volumes share
one voxel grid (the FLAIR's), so image and labels stay voxel-aligned without any resampling here.
``T1_1mm.nii`` lies on another grid; using it would mean resampling the 3 mm labels or the FLAIR,
which belongs to preprocessing (it resamples every dataset to one isotropic spacing with nearest
neighbour for labels), not to ingestion. The anisotropic spacing is kept and written to the
manifest.

Rules: subject id = the subject folder's name (``1`` ... ``5``); site = ``mrbrains`` unless given;
files may also end in ``.nii.gz``; a subject folder with T1 and FLAIR but no
``LabelsForTesting.nii`` (the MRBrainS13 test data) is skipped with a ``logging`` warning; a
subject with only one of T1 / FLAIR is an error naming the file. Folders holding none of the
expected files are ignored.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from dnorm.ingest.common import (
    SubjectFiles,
    convert_subjects,
    natural_key,
    remove_stale_manifest,
    require_source,
)

log = logging.getLogger(__name__)

DATASET = "mrbrains"
MRBRAINS_TO_TISSUE: dict[int, int] = {0: 0, 1: 1, 2: 2, 3: 3}
"""``LabelsForTesting.nii`` value -> tissue: already 0 BG, 1 CSF, 2 GM, 3 WM."""

T1_NAME, FLAIR_NAME, LABEL_NAME = "T1", "T2_FLAIR", "LabelsForTesting"
_KNOWN = (T1_NAME, FLAIR_NAME, LABEL_NAME, "T1_1mm", "T1_IR", "LabelsForTraining")


def training_folder(source: str | os.PathLike) -> Path:
    """``source/TrainingData`` if it exists, else ``source`` (already the training folder)."""
    source = require_source(source, "MRBrainS13")
    nested = source / "TrainingData"
    return require_source(nested, "MRBrainS13") if nested.is_dir() else source


def _find(folder: Path, stem: str) -> Path | None:
    for name in (f"{stem}.nii", f"{stem}.nii.gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def find_subjects(source: str | os.PathLike, site: str | None = None) -> list[SubjectFiles]:
    """List the labelled subjects of an MRBrainS13 training folder, sorted by folder name."""
    root = training_folder(source)
    subjects = []
    seen_any = False
    for folder in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
        if not any(_find(folder, stem) for stem in _KNOWN):
            log.debug("%s: no MRBrainS13 files, ignored", folder)
            continue
        seen_any = True
        t1, flair, label = (_find(folder, stem) for stem in (T1_NAME, FLAIR_NAME, LABEL_NAME))
        if t1 is None and flair is None:
            raise ValueError(f"{folder}: subject {folder.name} has neither {T1_NAME}.nii nor {FLAIR_NAME}.nii")
        if t1 is None or flair is None:
            if flair is None:
                present, kind, missing = t1, "T1", folder / f"{FLAIR_NAME}.nii"
            else:
                present, kind, missing = flair, "T2_FLAIR", folder / f"{T1_NAME}.nii"
            raise ValueError(f"{present}: subject {folder.name} present in one modality only ({kind}); "
                             f"{missing} is missing")
        if label is None:
            log.warning("%s: no %s.nii (unlabelled test subject?); subject %s skipped",
                        folder, LABEL_NAME, folder.name)
            continue
        subjects.append(SubjectFiles(subject=folder.name, site=site or DATASET, t1=t1, t2=flair, label=label,
                                     label_table=MRBRAINS_TO_TISSUE,
                                     table_name="MRBrainS13 LabelsForTesting classes (0-3)"))
    if not seen_any:
        raise ValueError(f"{root}: no MRBrainS13 subject folders (N/T1.nii, N/T2_FLAIR.nii, ...) found")
    return subjects


def ingest_mrbrains(source: str | os.PathLike, out_dir: str | os.PathLike, site: str | None = None) -> Path:
    """Convert MRBrainS13 training data to NIfTI under ``out_dir/mrbrains/``; returns the manifest path."""
    remove_stale_manifest(out_dir)
    subjects = find_subjects(source, site)
    return convert_subjects(subjects, DATASET, Path(source), out_dir)
