"""``dnorm normalize`` / ``dnorm segment`` on a BIDS dataset: a BIDS-derivatives folder out.

Given a BIDS dataset (a folder with ``dataset_description.json``), every subject-session's T1w
(chosen as :mod:`dnorm.ingest.bids` does: the highest run when there are several) is processed by
:func:`dnorm.apply.apply_model`, and the outputs are named as BIDS derivatives under ``OUT``,
keeping the source file's entities (``sub``, ``ses``, ``acq``, ``run``…)::

    OUT/dataset_description.json      DatasetType "derivative", GeneratedBy dnorm + the model's digests
    OUT/dseg.tsv                      label map of every *_dseg.nii.gz (index, name, abbreviation)
    OUT/sub-X/[ses-Y/]anat/sub-X[_ses-Y]_desc-normalized_T1w.nii.gz  (+ .json: Sources, SkullStripped)
                                     ..._desc-normalized_T2w.nii.gz / _FLAIR (two-modality models)
                                     ..._dseg.nii.gz          uint8, 0 BG, 1 CSF, 2 GM, 3 WM
                                     ..._probseg.nii.gz       4D, volumes in dseg.tsv order (--probabilities)
                                     ..._desc-brain_mask.nii.gz   (--skull-strip)

Two-modality models take the session's ``T2w``, else its ``FLAIR``. ``participants`` (BIDS apps'
``--participant-label``, with or without ``sub-``) restricts the subjects; an unknown label is an
error naming the dataset. ``dataset_description.json`` records the model file's SHA-256 and the
training fingerprint of its model card (``provenance.fingerprint``); an ``OUT`` that already holds
outputs of another model is refused, so one derivatives folder never mixes models.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Sequence

import dnorm
from dnorm.apply import FolderResult, apply_model, one_line, prepare_batch_request
from dnorm.ingest.bids import (
    Acquisition,
    find_acquisitions,
    find_second_image,
    open_layout,
    participant_labels,
    read_description,
    require_bids_root,
)
from dnorm.io import atomic_path

log = logging.getLogger(__name__)

BIDS_VERSION = "1.9.0"
#: The labels of every ``*_dseg.nii.gz`` dnorm writes, as ``OUT/dseg.tsv`` rows (index, name, abbreviation).
DSEG_ROWS = ((0, "background", "BG"), (1, "cerebrospinal fluid", "CSF"), (2, "gray matter", "GM"),
             (3, "white matter", "WM"))
_SUFFIX_OF = {"T1w", "T2w", "FLAIR"}


def is_bids_dataset(folder: str | os.PathLike) -> bool:
    """Whether an input folder is to be read as a BIDS dataset: it has a ``dataset_description.json``.
    A folder with ``sub-*`` sub-folders but no description is a ``ValueError`` naming the missing file
    (a BIDS dataset without it is not valid, and reading it as a flat folder would find nothing)."""
    folder = Path(folder)
    if (folder / "dataset_description.json").is_file():
        return True
    if any(p.is_dir() and p.name.startswith("sub-") for p in folder.iterdir()):
        raise ValueError(f"{folder / 'dataset_description.json'}: missing; {folder} has sub-* folders like a BIDS "
                         f"dataset, and every BIDS dataset has this file at its root")
    return False


def derivative_name(source: Path, desc: str | None, suffix: str, extension: str = ".nii.gz") -> str:
    """File name of a derivative of ``source`` (a raw BIDS image): its entities, then ``desc-<desc>``
    (last, as BIDS orders entities), then ``_<suffix><extension>``."""
    name = source.name
    stem = name[: -len(".nii.gz")] if name.endswith(".nii.gz") else name[: -len(".nii")]
    entities, _, raw_suffix = stem.rpartition("_")
    if raw_suffix not in _SUFFIX_OF or not entities:
        raise ValueError(f"{source}: not a BIDS T1w/T2w/FLAIR file name")
    return f"{entities}{f'_desc-{desc}' if desc else ''}_{suffix}{extension}"


def output_paths(out_dir: Path, acquisition: Acquisition, modalities: Sequence[str],
                 second: Path | None = None) -> dict[str, Path]:
    """Where :func:`dnorm.apply.apply_model` writes each kind for one subject-session."""
    folder = out_dir / acquisition.folder
    t1 = acquisition.t1
    paths = {"normalized_t1": folder / derivative_name(t1, "normalized", "T1w"),
             "labels": folder / derivative_name(t1, None, "dseg"),
             "probabilities": folder / derivative_name(t1, None, "probseg"),
             "brainmask": folder / derivative_name(t1, "brain", "mask")}
    if second is not None and len(modalities) == 2:
        suffix = "FLAIR" if second.name.split(".")[0].endswith("_FLAIR") else "T2w"
        paths[f"normalized_{modalities[1]}"] = folder / derivative_name(second, "normalized", suffix)
    return paths


def model_digests(model_path, card: dict) -> dict:
    """What identifies the model in ``GeneratedBy``: experiment, the SHA-256 of the model file (when
    given as a path) and the model card's training fingerprint (``provenance.fingerprint``)."""
    from dnorm.training.provenance import file_digest

    experiment = card.get("experiment", {})
    digests = {"ModelExperiment": str(experiment.get("name", "")), "ModelMethod": str(experiment.get("method", ""))}
    if not isinstance(model_path, tuple):
        digests["ModelSHA256"] = file_digest(model_path)
    fingerprint = (card.get("provenance") or {}).get("fingerprint")
    if fingerprint:
        digests["ModelFingerprint"] = str(fingerprint)
    return digests


def dataset_description(source: Path, model_path, card: dict) -> dict:
    """The derivative's ``dataset_description.json`` content."""
    raw = read_description(source / "dataset_description.json")
    digests = model_digests(model_path, card)
    description = (f"Intensity-normalized images and CSF/GM/WM segmentations by dnorm (DeepNormalize), model "
                   f"{digests['ModelExperiment'] or 'unnamed'} ({digests['ModelMethod'] or 'unknown method'})")
    return {
        "Name": f"dnorm outputs of {raw.get('Name', source.name)}",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "dnorm", "Version": dnorm.__version__, "Description": description, **digests}],
        "SourceDatasets": [{"URL": source.resolve().as_uri()}],
        "DatasetLinks": {"raw": source.resolve().as_uri()},
    }


def write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=2) + "\n")


def prepare_output(out_dir: Path, description: dict) -> None:
    """Write ``OUT/dataset_description.json`` and ``OUT/dseg.tsv``; ``ValueError`` naming the file
    when ``OUT`` already holds the outputs of another model or is not a dnorm derivative."""
    path = out_dir / "dataset_description.json"
    if path.is_file():
        existing = read_description(path)
        ours = [g for g in existing.get("GeneratedBy", []) if isinstance(g, dict) and g.get("Name") == "dnorm"]
        mine = description["GeneratedBy"][0]
        keys = ("ModelSHA256", "ModelFingerprint", "ModelExperiment")
        if not ours or any(ours[0].get(k) != mine.get(k) for k in keys):
            raise ValueError(f"{path}: {out_dir} already holds derivatives of another model or pipeline; "
                             f"write to another folder")
    write_json(path, description)
    with atomic_path(out_dir / "dseg.tsv") as tmp:
        tmp.write_text("index\tname\tabbreviation\n" + "".join(f"{i}\t{n}\t{a}\n" for i, n, a in DSEG_ROWS))


def write_sidecars(written: dict[str, Path], sources: dict[str, Path], source_root: Path) -> dict[str, Path]:
    """A JSON sidecar beside each normalized image and segmentation (``Sources`` as BIDS URIs,
    ``SkullStripped``); returns them by kind (``<kind>_json``)."""
    sidecars = {}
    for kind, path in written.items():
        if kind == "brainmask":
            continue
        source = sources.get(kind.removeprefix("normalized_"), sources["t1"])
        content = {"Sources": [f"bids:raw:{source.resolve().relative_to(source_root.resolve()).as_posix()}"]}
        if kind.startswith("normalized_"):
            content |= {"Description": "intensities of dnorm's generator G, in [0, 1]", "SkullStripped": True}
        elif kind == "probabilities":
            content |= {"Description": "class probabilities; volumes in the order of dseg.tsv"}
        sidecar = path.with_name(path.name.removesuffix(".nii.gz") + ".json")
        write_json(sidecar, content)
        sidecars[f"{kind}_json"] = sidecar
    return sidecars


def apply_to_bids(
    model_path,
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    participants: Sequence[str] | None = None,
    stride: int = 8,
    write_probabilities: bool = False,
    progress: bool = True,
    *,
    write_normalized: bool | None = None,
    write_labels: bool = True,
    device=None,
    batch_size: int = 16,
    skull_strip: bool = False,
) -> FolderResult:
    """:func:`dnorm.apply.apply_model` on every subject-session of a BIDS dataset, written as a
    BIDS-derivatives dataset at ``out_dir`` (see the module doc). The result is keyed by
    ``sub-X[_ses-Y]``. A subject-session that fails is recorded with its one-line reason and the
    others go on; problems common to all (model, device, output folder, arguments, dataset,
    participant labels, a subject without T1w) raise ``ValueError`` before any prediction."""
    device, out_dir, networks, card, name = prepare_batch_request(
        model_path, out_dir, device, stride, batch_size, write_normalized, write_labels, write_probabilities)
    modalities = list(card["experiment"]["modalities"])
    root = require_bids_root(source)
    if out_dir.resolve() == root.resolve():
        raise ValueError(f"{out_dir}: is the BIDS dataset itself; write the derivatives to another folder, e.g. "
                         f"{root / 'derivatives' / 'dnorm'}")
    layout = open_layout(root)
    acquisitions = find_acquisitions(layout, root, participants=participant_labels(participants))
    prepare_output(out_dir, dataset_description(root, model_path, card))
    from tqdm.auto import tqdm

    result = FolderResult()
    for acquisition in tqdm(acquisitions, desc="subject-sessions", unit="session", disable=not progress):
        try:
            second = find_second_image(layout, acquisition) if len(modalities) == 2 else None
            paths = output_paths(out_dir, acquisition, modalities, second)
            written = apply_model(
                (networks, card), acquisition.t1, out_dir, t2_path=second, stride=stride,
                write_probabilities=write_probabilities, progress=progress, write_normalized=write_normalized,
                write_labels=write_labels, device=device, batch_size=batch_size, skull_strip=skull_strip,
                output_paths=paths)
            sources = {"t1": acquisition.t1} | ({modalities[1]: second} if second is not None else {})
            written |= write_sidecars(written, sources, root)
            result.written[acquisition.prefix] = written
        except (ValueError, OSError) as error:  # report it, go on with the others
            result.failed[acquisition.prefix] = one_line(error)
            log.info("failed: %s", result.failed[acquisition.prefix])
    return result
