"""ABIDE I with FreeSurfer outputs (T1 only, conformed 256³ 1 mm LIA volumes, MGH format).

Layout (a FreeSurfer ``SUBJECTS_DIR``, e.g. the Preprocessed Connectomes Project's
``Outputs/freesurfer/5.1/``)::

    <source>/<SUBJECT>/mri/brainmask.mgz   (or T1.mgz when brainmask.mgz is missing)
    <source>/<SUBJECT>/mri/aseg.mgz        (or aparc+aseg.mgz when aseg.mgz is missing)
    <source>/phenotypic.csv                optional, for sites (see below)

Image: ``brainmask.mgz`` (the intensity-normalized T1, skull-stripped) is preferred; ``T1.mgz``
(same grid, with skull) is the fallback, preprocessing skull-strips with the label mask anyway.
Labels: ``aseg.mgz`` mapped through :data:`ASEG_TO_TISSUE`; with ``aparc+aseg.mgz`` the cortical
parcels 1000-1035 (left) and 2000-2035 (right) are cortex, i.e. GM
(:data:`APARC_ASEG_TO_TISSUE`). A label value in neither table is an error naming the file and the
values (extend the table deliberately rather than guess).

Volumes keep FreeSurfer's conformed orientation, shape and affine: no reorientation, the NIfTI
outputs carry the same affine as the ``.mgz`` files.

Subjects: every folder of ``source`` with an ``mri/`` sub-folder, except FreeSurfer's template
subjects (``fsaverage*``); subject id = the folder name (ABIDE's FILE_ID, e.g.
``Caltech_0051456``). A subject with an image and no label volume (recon-all did not finish) is
skipped with a ``logging`` warning; a label volume without an image is an error.

Site, the first rule that applies:

1. ``site`` given (``--site``): used for every subject;
2. ``source/phenotypic.csv`` (or the PCP's ``Phenotypic_V1_0b_preprocessed1.csv``) with a
   ``SITE_ID`` column: the row whose ``FILE_ID`` equals the folder name, else whose ``SUB_ID``
   equals the folder name's trailing number;
3. the folder name ``<Site>_<digits>``: the part before the trailing number, upper-cased, with
   ABIDE's scanner sub-groups folded into their site (``CMU_a`` -> ``CMU``, ``MaxMun_c`` ->
   ``MAX_MUN``), which reproduces the phenotypic table's SITE_ID (``Caltech_0051456`` ->
   ``CALTECH``, ``Leuven_1_0050682`` -> ``LEUVEN_1``, ``UM_2_0050380`` -> ``UM_2``);
4. otherwise an error naming the folder.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pandas as pd

from dnorm.ingest.common import (
    SubjectFiles,
    convert_subjects,
    natural_key,
    remove_stale_manifest,
    require_source,
)

log = logging.getLogger(__name__)

DATASET = "abide"
BG, CSF, GM, WM = 0, 1, 2, 3

# FreeSurfer aseg label (FreeSurferColorLUT numbering) -> tissue. Rationale in the comments.
# General rule: nothing inside the brain is background, because preprocessing skull-strips with
# the label mask (label > 0); non-parenchymal structures inside the brain go to the tissue whose
# T1 intensity they share.
ASEG_TO_TISSUE: dict[int, int] = {
    0: BG,     # Unknown: everything outside the brain
    # --- cerebrospinal fluid ---------------------------------------------------------------
    4: CSF,    # Left-Lateral-Ventricle
    43: CSF,   # Right-Lateral-Ventricle
    5: CSF,    # Left-Inf-Lat-Vent
    44: CSF,   # Right-Inf-Lat-Vent
    14: CSF,   # 3rd-Ventricle
    15: CSF,   # 4th-Ventricle
    24: CSF,   # CSF (extra-ventricular, mostly basal cisterns)
    72: CSF,   # 5th-Ventricle (cavum septi pellucidi)
    31: CSF,   # Left-choroid-plexus: lies inside the ventricles; part of the ventricular compartment
    63: CSF,   # Right-choroid-plexus
    30: CSF,   # Left-vessel: non-parenchymal, dark on T1 (flow voids, perivascular spaces) like CSF;
    62: CSF,   # Right-vessel   BG would punch holes in the brain mask used for skull-stripping
    # --- grey matter -----------------------------------------------------------------------
    3: GM,     # Left-Cerebral-Cortex
    42: GM,    # Right-Cerebral-Cortex
    8: GM,     # Left-Cerebellum-Cortex
    47: GM,    # Right-Cerebellum-Cortex
    10: GM,    # Left-Thalamus (Left-Thalamus-Proper before FreeSurfer 7): deep grey nucleus
    49: GM,    # Right-Thalamus
    11: GM,    # Left-Caudate
    50: GM,    # Right-Caudate
    12: GM,    # Left-Putamen
    51: GM,    # Right-Putamen
    13: GM,    # Left-Pallidum: grey nucleus (brighter on T1, but MRBrainS/iSEG count basal ganglia as GM)
    52: GM,    # Right-Pallidum
    17: GM,    # Left-Hippocampus
    53: GM,    # Right-Hippocampus
    18: GM,    # Left-Amygdala
    54: GM,    # Right-Amygdala
    26: GM,    # Left-Accumbens-area
    58: GM,    # Right-Accumbens-area
    80: GM,    # non-WM-hypointensities: hypointensities located in grey structures
    81: GM,    # Left-non-WM-hypointensities (per-hemisphere variant of 80)
    82: GM,    # Right-non-WM-hypointensities
    # --- white matter ----------------------------------------------------------------------
    2: WM,     # Left-Cerebral-White-Matter
    41: WM,    # Right-Cerebral-White-Matter
    7: WM,     # Left-Cerebellum-White-Matter
    46: WM,    # Right-Cerebellum-White-Matter
    16: WM,    # Brain-Stem: mostly fibre tracts, WM-like T1 contrast
    28: WM,    # Left-VentralDC: cerebral peduncle, optic tract and small nuclei; mostly WM by volume
    60: WM,    # Right-VentralDC
    77: WM,    # WM-hypointensities: lesions inside WM (MRBrainS also counts WM lesions as WM)
    78: WM,    # Left-WM-hypointensities (per-hemisphere variant of 77)
    79: WM,    # Right-WM-hypointensities
    85: WM,    # Optic-Chiasm: nerve fibres
    251: WM,   # CC_Posterior (corpus callosum, written into aseg.mgz by mri_cc)
    252: WM,   # CC_Mid_Posterior
    253: WM,   # CC_Central
    254: WM,   # CC_Mid_Anterior
    255: WM,   # CC_Anterior
}
"""FreeSurfer ``aseg.mgz`` label -> tissue (0 BG, 1 CSF, 2 GM, 3 WM); every aseg label exactly once."""

APARC_CORTEX = tuple(range(1000, 1036)) + tuple(range(2000, 2036))
"""``aparc+aseg.mgz`` cortical parcels (Desikan-Killiany, ctx-lh-* and ctx-rh-*), all cortex GM."""

APARC_ASEG_TO_TISSUE: dict[int, int] = {**ASEG_TO_TISSUE, **{label: GM for label in APARC_CORTEX}}
"""``aparc+aseg.mgz`` label -> tissue: :data:`ASEG_TO_TISSUE` plus the cortical parcels as GM."""

IMAGE_NAMES = ("brainmask.mgz", "T1.mgz")
LABEL_NAMES = ("aseg.mgz", "aparc+aseg.mgz")
PHENOTYPIC_NAMES = ("phenotypic.csv", "Phenotypic_V1_0b_preprocessed1.csv")

# ABIDE FILE_ID prefixes whose scanner sub-group letter is not part of the phenotypic SITE_ID.
_SITE_ALIASES = {"MAXMUN": "MAX_MUN"}
_FILE_ID = re.compile(r"^(?P<site>.+?)_(?P<number>\d+)$")


def site_from_name(subject: str) -> str | None:
    """``Caltech_0051456`` -> ``CALTECH``, ``CMU_a_0050642`` -> ``CMU``, ``MaxMun_d_0051606`` ->
    ``MAX_MUN``, ``Leuven_1_0050682`` -> ``LEUVEN_1``; ``None`` if the name is not ``<Site>_<digits>``."""
    match = _FILE_ID.match(subject)
    if not match:
        return None
    site = re.sub(r"_[A-Za-z]$", "", match["site"]).upper()
    return _SITE_ALIASES.get(site, site)


def read_phenotypic(path: Path) -> pd.DataFrame:
    """Read the phenotypic table; raises ``ValueError`` naming it if unreadable or lacking columns."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as error:
        raise ValueError(f"{path}: cannot be read as a CSV ({error})") from error
    if "SITE_ID" not in table.columns or not ({"FILE_ID", "SUB_ID"} & set(table.columns)):
        raise ValueError(f"{path}: phenotypic table needs a SITE_ID column and a FILE_ID or SUB_ID column; "
                         f"found {list(table.columns)}")
    return table


def site_from_table(table: pd.DataFrame, subject: str) -> str | None:
    """SITE_ID of ``subject`` (matched on FILE_ID, then on SUB_ID), or ``None``."""
    if "FILE_ID" in table.columns:
        rows = table[table["FILE_ID"] == subject]
        if len(rows):
            return str(rows["SITE_ID"].iloc[0])
    match = re.search(r"(\d+)$", subject)
    if match and "SUB_ID" in table.columns:
        numbers = pd.to_numeric(table["SUB_ID"], errors="coerce")
        rows = table[numbers == int(match.group(1))]
        if len(rows):
            return str(rows["SITE_ID"].iloc[0])
    return None


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    return next((folder / name for name in names if (folder / name).is_file()), None)


def find_subjects(source: str | os.PathLike, site: str | None = None) -> list[SubjectFiles]:
    """List the labelled subjects of a FreeSurfer subjects folder, sorted by name."""
    source = require_source(source, "ABIDE FreeSurfer")
    phenotypic_path = _first(source, PHENOTYPIC_NAMES)
    phenotypic = read_phenotypic(phenotypic_path) if phenotypic_path and site is None else None
    folders = [p for p in source.iterdir() if p.is_dir() and (p / "mri").is_dir()
               and not p.name.startswith("fsaverage")]
    if not folders:
        raise ValueError(f"{source}: no FreeSurfer subject folders (<SUBJECT>/mri/) found")

    subjects = []
    for folder in sorted(folders, key=lambda p: natural_key(p.name)):
        mri = folder / "mri"
        image, label = _first(mri, IMAGE_NAMES), _first(mri, LABEL_NAMES)
        if image is None and label is not None:
            raise ValueError(f"{label}: subject {folder.name} has a label volume but neither "
                             f"{' nor '.join(str(mri / n) for n in IMAGE_NAMES)}")
        if label is None:
            log.warning("%s: neither %s (recon-all incomplete?); subject %s skipped",
                        mri, " nor ".join(LABEL_NAMES), folder.name)
            continue
        subject_site = site
        if subject_site is None and phenotypic is not None:
            subject_site = site_from_table(phenotypic, folder.name)
            if subject_site is None:
                log.warning("%s: subject %s not in the table; site taken from its name",
                            phenotypic_path, folder.name)
        if subject_site is None:
            subject_site = site_from_name(folder.name)
        if not subject_site:
            raise ValueError(f"{folder}: cannot tell the site of subject {folder.name!r}: the name is not "
                             f"<Site>_<digits> (e.g. Caltech_0051456); give --site or {source / 'phenotypic.csv'}")
        aparc = label.name == "aparc+aseg.mgz"
        subjects.append(SubjectFiles(
            subject=folder.name, site=subject_site, t1=image, label=label,
            label_table=APARC_ASEG_TO_TISSUE if aparc else ASEG_TO_TISSUE,
            table_name=("aparc+aseg table (dnorm.ingest.abide.APARC_ASEG_TO_TISSUE)" if aparc
                        else "aseg label table (dnorm.ingest.abide.ASEG_TO_TISSUE)")))
    return subjects


def ingest_abide(source: str | os.PathLike, out_dir: str | os.PathLike, site: str | None = None) -> Path:
    """Convert ABIDE FreeSurfer outputs to NIfTI under ``out_dir/abide/``; returns the manifest path."""
    remove_stale_manifest(out_dir)
    subjects = find_subjects(source, site)
    return convert_subjects(subjects, DATASET, Path(source), out_dir)
