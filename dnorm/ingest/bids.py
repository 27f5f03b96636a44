"""BIDS datasets: raw T1w (+ T2w or FLAIR) images, tissue labels from a derivatives ``dseg``.

Layout (BIDS 1.x; queried with pybids' ``BIDSLayout``, never by hand-written globbing)::

    <source>/dataset_description.json                       required
    <source>/participants.tsv                               sites (optional, see below)
    <source>/sub-<label>/[ses-<label>/]anat/sub-<label>[_ses-<label>][_run-<n>]_T1w.nii.gz
                                                   ..._T2w.nii.gz / ..._FLAIR.nii.gz (if asked)
    <source>/derivatives/<pipeline>/dataset_description.json
    <source>/derivatives/<pipeline>/sub-<label>/[ses-<label>/]anat/sub-<label>[_ses-<label>]_dseg.nii.gz
    <source>/derivatives/<pipeline>/[...]dseg.tsv           label map (columns index, name)

Rules:

- **One manifest row per subject-session**; subject id ``sub-<label>`` or
  ``sub-<label>_ses-<label>``. Sessions without a T1w (e.g. functional-only) are skipped; a subject
  with no T1w in any session is an error naming its folder.
- **Several runs** of the T1w in one session: the **highest run number** is used (a repeated scan
  usually replaces a failed one), with a warning naming the runs left out. The T2w/FLAIR of the
  same run is used when there is one, else its own highest run. Several images left after that
  (e.g. differing ``acq-``/``rec-``/``ce-``) are an error naming them.
- **Second modality**: ``modalities`` as in the study config: ``[t1]`` (default) reads only the
  T1w, ``[t1, t2]`` also the ``T2w``, ``[t1, flair]`` the ``FLAIR``, into the manifest's ``t2``
  column; a subject-session without it is an error naming the T1w.
- **Labels**: the ``dseg`` (``.nii``/``.nii.gz``) of the same subject-session in a derivatives
  dataset: every ``<source>/derivatives/*/`` holding a ``dataset_description.json`` (folders without
  one are skipped with a warning, and so are dnorm's own outputs: predictions are not training
  labels), or the folders given as ``derivatives``. A ``dseg`` with a
  ``space-`` other than ``T1w``/``orig`` is not on the T1w's grid and is ignored. Among several,
  the one with the T1w's run, then the one without ``desc-``, is taken; several left is an error
  naming them. Its label map is the nearest ``*_dseg.tsv`` that BIDS inheritance applies to it (the
  same entities beside it, or ``dseg.tsv`` higher up, e.g. at the derivative root): each ``name``
  (or ``abbreviation``) is mapped to 0 BG, 1 CSF, 2 GM, 3 WM by :data:`TISSUE_NAMES`, value 0 is
  background when unlisted, and an unknown name is an error naming the tsv. Without a tsv,
  :data:`DEFAULT_LABEL_TABLE` (dnorm's own numbering, 0 BG, 1 CSF, 2 GM, 3 WM) is assumed with a
  warning: **fMRIPrep/sMRIPrep's ``_dseg`` uses 1 GM, 2 WM, 3 CSF**, give it a ``dseg.tsv``. A voxel
  value outside the map is an error naming the dseg, the values and the map.
- **Subjects without labels** (no dseg) are converted too (``<id>_t1.nii.gz``, ``<id>_t2.nii.gz``)
  but the manifest requires a label volume, so they are listed in ``out_dir/unlabelled.csv``
  instead (manifest columns, ``label`` empty): usable for normalization only (``dnorm normalize``
  on ``out_dir/bids/`` or on the BIDS folder itself), never for training or evaluation. A dataset
  where no subject has labels is an error.
- **Site**: ``site`` given (``--site``) for every subject; else the ``site_column`` column (default
  ``site``) of ``participants.tsv``, whose ``participant_id`` is ``sub-<label>``. A participant
  missing from the table or with an empty site is an error naming ``participants.tsv``. Without
  the table or the default column every subject's site is ``bids`` (with a warning); a
  ``site_column`` given explicitly must exist.

Images keep their affine and shape (the dseg must be on the T1w's grid, checked as for the other
adapters by :mod:`dnorm.ingest.common`).

Why pybids: measured on the 2-core development machine, ``import bids`` costs about 0.9 s and
indexing a small dataset with its derivatives about 0.7 s, negligible beside reading the volumes;
it gets BIDS entity parsing, sessions, runs and derivatives right without a private parser.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from dnorm.ingest.common import (
    SubjectFiles,
    check_grid,
    convert_subjects,
    natural_key,
    remove_stale_manifest,
    spacing_from_header,
)
from dnorm.io import load_volume, save_nifti
from dnorm.manifest import COLUMNS, format_spacing, write_manifest

log = logging.getLogger(__name__)

DATASET = "bids"
UNLABELLED_NAME = "unlabelled.csv"
BG, CSF, GM, WM = 0, 1, 2, 3
NIFTI_EXTENSIONS = [".nii", ".nii.gz"]
#: Config/CLI modality name -> BIDS suffix.
MODALITY_SUFFIXES = {"t1": "T1w", "t2": "T2w", "flair": "FLAIR"}
#: A ``dseg`` in one of these spaces (or none) lies on the T1w's own grid.
NATIVE_SPACES = (None, "T1w", "orig")
DEFAULT_SITE_COLUMN = "site"

DEFAULT_LABEL_TABLE: dict[int, int] = {0: BG, 1: CSF, 2: GM, 3: WM}
"""Label map assumed for a ``dseg`` without a ``dseg.tsv``: dnorm's own numbering."""

TISSUE_NAMES: dict[str, int] = {
    **dict.fromkeys(("bg", "background", "unknown", "outside", "none"), BG),
    **dict.fromkeys(("csf", "cerebrospinalfluid"), CSF),
    **dict.fromkeys(("gm", "graymatter", "greymatter", "cgm", "corticalgraymatter", "corticalgreymatter",
                     "sgm", "dgm", "subcorticalgraymatter", "subcorticalgreymatter", "deepgraymatter",
                     "deepgreymatter"), GM),
    **dict.fromkeys(("wm", "whitematter"), WM),
}
"""``dseg.tsv`` names (or abbreviations), lower-cased without spaces, dashes or underscores -> tissue."""


@dataclass(frozen=True)
class Acquisition:
    """The raw images of one subject-session: ``subject`` and ``session`` are BIDS labels without
    their ``sub-``/``ses-`` prefix (``session`` ``None`` when the dataset has no sessions)."""

    subject: str
    session: str | None
    t1: Path
    second: Path | None = None
    run: int | None = None

    @property
    def prefix(self) -> str:
        """``sub-<label>[_ses-<label>]``: the BIDS file-name prefix, also dnorm's subject id."""
        return f"sub-{self.subject}" + (f"_ses-{self.session}" if self.session is not None else "")

    @property
    def folder(self) -> str:
        """``sub-<label>[/ses-<label>]/anat``, relative to a dataset root."""
        return f"sub-{self.subject}" + (f"/ses-{self.session}" if self.session is not None else "") + "/anat"


def require_bids_root(source: str | os.PathLike) -> Path:
    """``source`` as a Path; ``ValueError`` naming it when it is not a folder or lacks the
    ``dataset_description.json`` every BIDS dataset has."""
    root = Path(source)
    if not root.exists():
        raise ValueError(f"{root}: BIDS dataset folder does not exist")
    if not root.is_dir():
        raise ValueError(f"{root}: not a folder (a BIDS dataset is a folder)")
    description = root / "dataset_description.json"
    if not description.is_file():
        raise ValueError(f"{description}: missing; every BIDS dataset has one at its root (is {root} the "
                         f"dataset's top folder?)")
    read_description(description)
    return root


def read_description(path: Path) -> dict:
    """A ``dataset_description.json`` as a dict; ``ValueError`` naming it when it is not JSON."""
    try:
        content = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path}: must hold a JSON object")
    return content


def derivative_folders(root: Path, derivatives: Sequence[str | os.PathLike] | None = None) -> list[Path]:
    """Derivative datasets to search for labels: ``derivatives`` (each must hold a
    ``dataset_description.json``) or else every ``root/derivatives/*/`` that holds one."""
    if derivatives is not None:
        folders = [Path(p) for p in derivatives]
        for folder in folders:
            if not folder.is_dir():
                raise ValueError(f"{folder}: derivatives folder does not exist")
            if not (folder / "dataset_description.json").is_file():
                raise ValueError(f"{folder / 'dataset_description.json'}: missing; a BIDS derivatives dataset "
                                 f"needs one (with DatasetType \"derivative\" and GeneratedBy)")
        return folders
    base = root / "derivatives"
    if not base.is_dir():
        return []
    folders = []
    for folder in sorted(p for p in base.iterdir() if p.is_dir()):
        description = folder / "dataset_description.json"
        if not description.is_file():
            log.warning("%s: no dataset_description.json, not searched for labels", folder)
        elif _generated_by_dnorm(read_description(description)):
            log.info("%s: dnorm's own predictions, not used as labels", folder)
        else:
            folders.append(folder)
    return folders


def _generated_by_dnorm(description: dict) -> bool:
    generated = description.get("GeneratedBy")
    return isinstance(generated, list) and any(isinstance(g, dict) and g.get("Name") == "dnorm" for g in generated)


def open_layout(root: Path, derivatives: Sequence[Path] = ()):
    """A pybids ``BIDSLayout`` of ``root`` with ``derivatives`` attached; pybids' own errors
    become ``ValueError`` naming the dataset."""
    from bids import BIDSLayout  # pybids: imported only where BIDS is used (about 1 s)

    try:
        return BIDSLayout(str(root), validate=True, derivatives=[str(p) for p in derivatives] or False)
    except Exception as error:  # pybids raises its own validation errors and ValueErrors
        message = re.sub(r"\s+", " ", str(error)).strip()
        raise ValueError(f"{root}: pybids cannot read the dataset ({type(error).__name__}: {message})") from None


def participant_labels(labels: Iterable[str] | None) -> list[str] | None:
    """``--participant-label`` values without their optional ``sub-`` prefix (as BIDS apps take them)."""
    if labels is None:
        return None
    result = []
    for label in labels:
        label = str(label).strip()
        label = label[4:] if label.startswith("sub-") else label
        if not label or not re.fullmatch(r"[A-Za-z0-9]+", label):
            raise ValueError(f"participant label {label!r} is not a BIDS label (letters and digits, optionally "
                             f"prefixed by sub-)")
        result.append(label)
    return result


def _run_of(file) -> int | None:
    run = file.get_entities().get("run")
    return int(run) if run is not None else None


def _one(files: list, what: str, run: int | None = None):
    """The file among ``files`` that :mod:`dnorm.ingest.bids` takes: ``run`` if given and present,
    else the highest run (warning about the others); ``ValueError`` naming them if several remain."""
    if run is not None and any(_run_of(f) == run for f in files):
        chosen_run = run
    else:
        runs = sorted({_run_of(f) for f in files}, key=lambda r: -1 if r is None else r)
        chosen_run = runs[-1]
        if len(runs) > 1:
            log.warning("%s: %d runs (%s); using run %s, the last one", what, len(runs),
                        ", ".join(str(r) for r in runs), chosen_run)
    chosen = [f for f in files if _run_of(f) == chosen_run]
    if len(chosen) > 1:
        raise ValueError(f"{chosen[0].path}: several {what} images for one run ({', '.join(Path(f.path).name for f in chosen)}); "
                         f"dnorm takes one per subject-session")
    return chosen[0]


def find_acquisitions(layout, root: Path, modalities: Sequence[str] = ("t1",),
                      participants: Sequence[str] | None = None) -> list[Acquisition]:
    """The raw images of every subject-session (of ``participants`` only, if given), sorted.

    ``ValueError`` naming the file or folder for an unknown participant label, a subject with no
    T1w, an ambiguous choice of image and a missing second modality.
    """
    modalities = check_modalities(modalities)
    subjects = sorted(layout.get_subjects(scope="raw"), key=natural_key)
    if participants is not None:
        unknown = [p for p in participants if p not in subjects]
        if unknown:
            raise ValueError(f"{root}: participant label(s) {', '.join(unknown)} not in the dataset (its subjects: "
                             f"{', '.join(subjects) or 'none'})")
        subjects = [s for s in subjects if s in participants]
    if not subjects:
        raise ValueError(f"{root}: no sub-<label> folders with BIDS images found")
    second_suffix = MODALITY_SUFFIXES[modalities[1]] if len(modalities) == 2 else None
    acquisitions = []
    for subject in subjects:
        t1_files = layout.get(scope="raw", subject=subject, suffix="T1w", datatype="anat",
                              extension=NIFTI_EXTENSIONS)
        if not t1_files:
            raise ValueError(f"{root / f'sub-{subject}'}: subject sub-{subject} has no T1w image "
                             f"(anat/sub-{subject}[_ses-<label>]_T1w.nii.gz)")
        sessions: dict[str | None, list] = {}
        for file in t1_files:
            sessions.setdefault(file.get_entities().get("session"), []).append(file)
        for session in sorted(sessions, key=lambda s: natural_key(s or "")):
            name = f"sub-{subject}" + (f" ses-{session}" if session is not None else "")
            t1 = _one(sessions[session], f"{name} T1w")
            acquisition = Acquisition(subject, session, Path(t1.path), None, _run_of(t1))
            if second_suffix is not None:
                try:
                    second = find_second_image(layout, acquisition, (second_suffix,))
                except ValueError as error:
                    raise ValueError(f"{error}, as modalities {list(modalities)} ask") from None
                acquisition = Acquisition(subject, session, Path(t1.path), second, _run_of(t1))
            acquisitions.append(acquisition)
    return acquisitions


def find_second_image(layout, acquisition: Acquisition, suffixes: Sequence[str] = ("T2w", "FLAIR")) -> Path:
    """The second-modality image of a subject-session: the first of ``suffixes`` it has, of the
    T1w's run if there is one, else the highest run. ``ValueError`` naming the T1w if none."""
    for suffix in suffixes:
        candidates = [f for f in layout.get(scope="raw", subject=acquisition.subject, suffix=suffix, datatype="anat",
                                            extension=NIFTI_EXTENSIONS)
                      if f.get_entities().get("session") == acquisition.session]
        if candidates:
            return Path(_one(candidates, f"{acquisition.prefix} {suffix}", run=acquisition.run).path)
    raise ValueError(f"{acquisition.t1}: no {' or '.join(suffixes)} image beside it")


def check_modalities(modalities: Sequence[str]) -> tuple[str, ...]:
    """``modalities`` as in the config: ``(t1,)``, ``(t1, t2)`` or ``(t1, flair)``."""
    modalities = tuple(modalities)
    if not modalities or modalities[0] != "t1" or len(modalities) > 2 or any(
            m not in MODALITY_SUFFIXES for m in modalities) or modalities[1:] == ("t1",):
        raise ValueError(f"modalities {list(modalities)}: expected [t1], [t1, t2] or [t1, flair]")
    return modalities


def find_dseg(layout, acquisition: Acquisition) -> Path | None:
    """The label volume of a subject-session in the attached derivatives, or ``None``."""
    files = [f for f in layout.get(scope="derivatives", subject=acquisition.subject, suffix="dseg",
                                   extension=NIFTI_EXTENSIONS)
             if f.get_entities().get("session") == acquisition.session
             and f.get_entities().get("space") in NATIVE_SPACES]
    if not files:
        return None
    if len(files) > 1 and any(_run_of(f) == acquisition.run for f in files):
        files = [f for f in files if _run_of(f) == acquisition.run]
    if len(files) > 1 and any("desc" not in f.get_entities() for f in files):
        files = [f for f in files if "desc" not in f.get_entities()]
    if len(files) > 1:
        raise ValueError(f"{acquisition.t1}: several label volumes match it ({', '.join(sorted(f.path for f in files))}); "
                         f"keep one, or give the derivatives folder to use (--derivatives)")
    return Path(files[0].path)


_IGNORED_ENTITIES = {"suffix", "extension", "datatype"}


def find_label_map(layout, dseg: Path) -> Path | None:
    """The ``*_dseg.tsv`` that applies to ``dseg`` by BIDS inheritance (nearest first; its
    entities must all be entities of the dseg), or ``None``."""
    entities = {k: v for k, v in layout.parse_file_entities(str(dseg)).items() if k not in _IGNORED_ENTITIES}
    candidates = layout.get_nearest(str(dseg), suffix="dseg", extension=".tsv", all_=True, strict=False) or []
    for candidate in candidates:
        own = {k: v for k, v in layout.parse_file_entities(str(candidate)).items() if k not in _IGNORED_ENTITIES}
        if all(entities.get(k) == v for k, v in own.items()) and Path(dseg).parent.is_relative_to(Path(candidate).parent):
            return Path(candidate)
    return None


def _tissue_key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", str(name)).lower()


def read_label_map(path: Path) -> dict[int, int]:
    """``dseg.tsv`` (columns ``index``, ``name``, optional ``abbreviation``) as ``{value: tissue}``;
    value 0 is background unless listed. ``ValueError`` naming the file for missing columns, a
    non-integer or repeated index and a name that is no tissue of :data:`TISSUE_NAMES`."""
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as error:  # pandas raises many types for broken files
        raise ValueError(f"{path}: cannot be read as a TSV ({error})") from None
    missing = [c for c in ("index", "name") if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: label map lacks column(s) {missing}; a BIDS dseg.tsv has index and name")
    result: dict[int, int] = {}
    for row in table.itertuples(index=False):
        try:
            index = int(str(row.index).strip())
        except ValueError:
            raise ValueError(f"{path}: index {row.index!r} is not an integer") from None
        if index in result:
            raise ValueError(f"{path}: index {index} appears twice")
        keys = [_tissue_key(row.name)] + ([_tissue_key(row.abbreviation)] if "abbreviation" in table.columns else [])
        tissue = next((TISSUE_NAMES[k] for k in keys if k in TISSUE_NAMES), None)
        if tissue is None:
            raise ValueError(f"{path}: label {row.name!r} (index {index}) is not a tissue dnorm knows; name each "
                             f"label background, CSF, GM (gray matter) or WM (white matter)")
        result[index] = tissue
    result.setdefault(0, BG)
    return result


def read_sites(root: Path, subjects: Iterable[str], site: str | None = None,
               site_column: str | None = None) -> dict[str, str]:
    """Site of every subject label: ``site`` for all, else from ``participants.tsv`` (see module doc)."""
    subjects = list(subjects)
    if site is not None:
        return dict.fromkeys(subjects, str(site))
    path = root / "participants.tsv"
    column = site_column or DEFAULT_SITE_COLUMN
    table = None
    if path.is_file():
        try:
            table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        except Exception as error:
            raise ValueError(f"{path}: cannot be read as a TSV ({error})") from None
        if "participant_id" not in table.columns:
            raise ValueError(f"{path}: lacks the participant_id column BIDS requires")
    if table is None or column not in table.columns:
        if site_column is not None:
            where = f"{path}: no column {column!r}" if table is not None else f"{path}: missing"
            raise ValueError(f"{where}; the sites were to come from its {column!r} column (--site-column)")
        log.warning("%s: no %r column; every subject's site is %r (give --site or --site-column)",
                    path, column, DATASET)
        return dict.fromkeys(subjects, DATASET)
    sites = {}
    ids = dict(zip(table["participant_id"].str.strip(), table[column].str.strip()))
    for subject in subjects:
        value = ids.get(f"sub-{subject}", ids.get(subject, ""))
        if not value or value.lower() == "n/a":
            raise ValueError(f"{path}: no {column!r} value for participant sub-{subject}")
        sites[subject] = value
    return sites


@dataclass
class BidsSubjects:
    """What :func:`find_subjects` found: labelled subject-sessions ready for
    :func:`dnorm.ingest.common.convert_subjects`, and the unlabelled ones with their sites."""

    labelled: list[SubjectFiles]
    unlabelled: list[tuple[Acquisition, str]]


def find_subjects(source: str | os.PathLike, modalities: Sequence[str] = ("t1",), site: str | None = None,
                  site_column: str | None = None,
                  derivatives: Sequence[str | os.PathLike] | None = None) -> BidsSubjects:
    """List the subject-sessions of a BIDS dataset with their labels (see the module doc)."""
    root = require_bids_root(source)
    layout = open_layout(root, derivative_folders(root, derivatives))
    acquisitions = find_acquisitions(layout, root, modalities)
    sites = read_sites(root, sorted({a.subject for a in acquisitions}), site, site_column)
    found = BidsSubjects([], [])
    for acquisition in acquisitions:
        dseg = find_dseg(layout, acquisition)
        if dseg is None:
            log.warning("%s: no dseg label volume in the derivatives; %s is for normalization only (%s)",
                        acquisition.t1, acquisition.prefix, UNLABELLED_NAME)
            found.unlabelled.append((acquisition, sites[acquisition.subject]))
            continue
        label_map = find_label_map(layout, dseg)
        if label_map is None:
            log.warning("%s: no dseg.tsv applies to it; assuming dnorm's label numbering 0 BG, 1 CSF, 2 GM, "
                        "3 WM (fMRIPrep's is 1 GM, 2 WM, 3 CSF: add a dseg.tsv)", dseg)
            table, table_name = DEFAULT_LABEL_TABLE, "default label map (0 BG, 1 CSF, 2 GM, 3 WM; no dseg.tsv)"
        else:
            table, table_name = read_label_map(label_map), f"label map {label_map}"
        found.labelled.append(SubjectFiles(subject=acquisition.prefix, site=sites[acquisition.subject],
                                           t1=acquisition.t1, t2=acquisition.second, label=dseg,
                                           label_table=table, table_name=table_name))
    return found


def convert_unlabelled(acquisition: Acquisition, site: str, dataset: str, out_dir: Path) -> dict[str, str]:
    """Convert the images of an unlabelled subject-session; returns its row (``label`` empty)."""
    t1, affine = load_volume(acquisition.t1)
    folder = out_dir / dataset
    row = {"dataset": dataset, "subject": acquisition.prefix, "site": site, "split": "",
           "t1": str(folder / f"{acquisition.prefix}_t1.nii.gz"), "t2": "", "label": "",
           "spacing": format_spacing(spacing_from_header(acquisition.t1))}
    if acquisition.second is not None:
        t2, t2_affine = load_volume(acquisition.second)
        check_grid(acquisition.t1, t1.shape, affine, acquisition.second, t2.shape, t2_affine)
        row["t2"] = str(folder / f"{acquisition.prefix}_t2.nii.gz")
        save_nifti(t2.astype(np.float32), t2_affine, row["t2"])
    save_nifti(t1.astype(np.float32), affine, row["t1"])
    return row


def ingest_bids(source: str | os.PathLike, out_dir: str | os.PathLike, site: str | None = None, *,
                modalities: Sequence[str] = ("t1",), site_column: str | None = None,
                derivatives: Sequence[str | os.PathLike] | None = None) -> Path:
    """Convert a BIDS dataset to NIfTI under ``out_dir/bids/``; returns ``out_dir/manifest.csv``.

    Labelled subject-sessions go to the manifest, unlabelled ones to ``out_dir/unlabelled.csv``
    (written first; the manifest is written last, as the "done" marker). ``ValueError`` naming the
    file for every bad input (see the module doc).
    """
    out_dir = Path(out_dir)
    remove_stale_manifest(out_dir)
    unlabelled_csv = out_dir / UNLABELLED_NAME
    unlabelled_csv.unlink(missing_ok=True)
    found = find_subjects(source, modalities, site, site_column, derivatives)
    if not found.labelled:
        raise ValueError(f"{source}: no subject has a dseg label volume in its derivatives "
                         f"({Path(source) / 'derivatives'}/<pipeline>/); to normalize or segment unlabelled data, "
                         f"give the BIDS folder to `dnorm normalize` / `dnorm segment` directly")
    if found.unlabelled:
        rows = [convert_unlabelled(a, s, DATASET, out_dir) for a, s in found.unlabelled]
        write_manifest(pd.DataFrame(rows, columns=list(COLUMNS)), unlabelled_csv)
        log.info("wrote %s (%d unlabelled subject-sessions)", unlabelled_csv, len(rows))
    return convert_subjects(found.labelled, DATASET, Path(source), out_dir)


def options_from_entry(entry: Mapping) -> dict:
    """The :func:`ingest_bids` keyword options set by a config dataset entry (``modalities``,
    ``site_column``, ``derivatives``), for the workflow's import of a ``source: bids`` dataset."""
    options: dict = {"modalities": tuple(entry.get("modalities", ("t1",)))}
    if entry.get("site_column"):
        options["site_column"] = entry["site_column"]
    if entry.get("derivatives"):
        derivatives = entry["derivatives"]
        options["derivatives"] = [derivatives] if isinstance(derivatives, str) else list(derivatives)
    return options


__all__ = ["Acquisition", "BidsSubjects", "DEFAULT_LABEL_TABLE", "TISSUE_NAMES", "UNLABELLED_NAME",
           "check_modalities", "find_acquisitions", "find_dseg", "find_label_map", "find_second_image", "find_subjects", "ingest_bids",
           "open_layout", "options_from_entry", "participant_labels", "read_label_map", "read_sites",
           "require_bids_root"]
