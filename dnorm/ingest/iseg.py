"""iSEG-2017 (6-month infants, T1 + T2, 1 mm isotropic, Analyze 7.5).

Layout: one folder holding, per subject ``N``::

    subject-N-T1.hdr / subject-N-T1.img
    subject-N-T2.hdr / subject-N-T2.img
    subject-N-label.hdr / subject-N-label.img      (training subjects 1-10 only)

Labels: 0 background, 10 CSF, 150 GM, 250 WM, mapped to 0, 1, 2, 3. Any other value is an error.

Rules:

- the subject id in the manifest is the file prefix (``subject-N``); site = ``iseg`` unless given;
- a subject with T1 and T2 but no label (the iSEG test subjects 11-23) cannot be evaluated: it is
  skipped with a ``logging`` warning;
- a subject with only one of T1 / T2, a label without images, or a ``.hdr`` without its ``.img``
  (or the reverse) is an error naming the file;
- Analyze 7.5 stores no orientation: nibabel gives every file the same default (radiological,
  LAS) affine from the voxel size, which is kept unchanged in the NIfTI outputs.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from dnorm.ingest.common import (
    SubjectFiles,
    check_analyze_pair,
    convert_subjects,
    natural_key,
    remove_stale_manifest,
    require_source,
)

log = logging.getLogger(__name__)

DATASET = "iseg"
ISEG_TO_TISSUE: dict[int, int] = {0: 0, 10: 1, 150: 2, 250: 3}
"""iSEG label value -> tissue (0 BG, 1 CSF, 2 GM, 3 WM)."""

_NAME = re.compile(r"^(subject-(\d+))-(T1|T2|label)\.(hdr|img)$", re.IGNORECASE)


def find_subjects(source: str | os.PathLike, site: str | None = None) -> list[SubjectFiles]:
    """List the labelled subjects of an iSEG folder, sorted by subject number."""
    source = require_source(source, "iSEG-2017")
    found: dict[str, dict[str, Path]] = {}
    for path in sorted(source.iterdir()):
        match = _NAME.match(path.name)
        if not match or not path.is_file():
            continue
        _, number, kind, extension = match.groups()
        if extension.lower() == "img":
            if not path.with_suffix(".hdr").is_file():
                raise ValueError(f"{path}: Analyze header {path.with_suffix('.hdr').name} missing")
            continue
        check_analyze_pair(path)
        found.setdefault(f"subject-{int(number)}", {})[kind.lower()] = path
    if not found:
        raise ValueError(f"{source}: no iSEG-2017 files named like subject-N-T1.hdr found")

    subjects = []
    for subject in sorted(found, key=natural_key):
        files = found[subject]
        t1, t2, label = files.get("t1"), files.get("t2"), files.get("label")
        if t1 is None and t2 is None:
            raise ValueError(f"{label}: label of {subject} has no T1 or T2 image beside it")
        if t1 is None or t2 is None:
            if t2 is None:
                present, kind, missing = t1, "T1", source / f"{subject}-T2.hdr"
            else:
                present, kind, missing = t2, "T2", source / f"{subject}-T1.hdr"
            raise ValueError(f"{present}: {subject} present in one modality only ({kind}); {missing} is missing")
        if label is None:
            log.warning("%s: %s has no label file (an unlabelled test subject?); skipped", source, subject)
            continue
        subjects.append(SubjectFiles(subject=subject, site=site or DATASET, t1=t1, t2=t2, label=label,
                                     label_table=ISEG_TO_TISSUE, table_name="iSEG label table (0, 10, 150, 250)"))
    return subjects


def ingest_iseg(source: str | os.PathLike, out_dir: str | os.PathLike, site: str | None = None) -> Path:
    """Convert an iSEG-2017 folder to NIfTI under ``out_dir/iseg/``; returns ``out_dir/manifest.csv``."""
    remove_stale_manifest(out_dir)
    subjects = find_subjects(source, site)
    return convert_subjects(subjects, DATASET, Path(source), out_dir)
