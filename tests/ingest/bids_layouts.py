"""A small BIDS dataset written with nibabel in the exact BIDS layout (a unique module name, so
other test folders can import it): two sites in participants.tsv, a subject with two sessions
(the second with two T1w runs), a subject without labels, a derivatives dseg with its dseg.tsv.

    ds/dataset_description.json, participants.tsv (participant_id, site, scanner)
    ds/sub-01/anat/sub-01_{T1w,T2w,FLAIR}.nii.gz                         site A, labelled
    ds/sub-02/ses-1/anat/sub-02_ses-1_{T1w,T2w}.nii.gz                   site B, labelled
    ds/sub-02/ses-2/anat/sub-02_ses-2_run-{1,2}_{T1w,T2w}.nii.gz         site B, labelled
    ds/sub-03/anat/sub-03_{T1w,T2w}.nii.gz                               site A, no labels
    ds/derivatives/manual/dataset_description.json, dseg.tsv (1 GM, 2 WM, 3 CSF: fMRIPrep's order)
    ds/derivatives/manual/sub-<..>/[ses-<..>/]anat/sub-<..>[_ses-<..>]_dseg.nii.gz
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (30, 28, 26)
#: 1 × 1 × 2 mm voxels, x flipped, origin away from 0 (as tests/test_apply.py).
AFFINE = np.array([[-1.0, 0, 0, 40.5], [0, 1.0, 0, -22.0], [0, 0, 2.0, -31.0], [0, 0, 0, 1]])
SITES = {"01": "A", "02": "B", "03": "A"}
#: (subject, session, run) of every T1w image; its value offset tells the images apart.
T1_IMAGES = [("01", None, None), ("02", "1", None), ("02", "2", 1), ("02", "2", 2), ("03", None, None)]
LABELLED = [("01", None), ("02", "1"), ("02", "2")]
#: dseg.tsv of the fixture: file value -> name (fMRIPrep's numbering, not dnorm's).
DSEG_NAMES = {1: "GM", 2: "WM", 3: "CSF"}
#: The same as dnorm tissues: 0 BG, 1 CSF, 2 GM, 3 WM.
DSEG_TO_DNORM = {0: 0, 1: 2, 2: 3, 3: 1}


def brain(shape=SHAPE) -> np.ndarray:
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    return (grid**2).sum(axis=0) < 0.6


def dseg_values(shape=SHAPE) -> np.ndarray:
    """File values (fMRIPrep order) in shells: WM inside, GM around it, CSF outside, 0 elsewhere."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = (grid**2).sum(axis=0)
    values = np.zeros(shape, np.uint8)
    values[radius < 0.6] = 3
    values[radius < 0.45] = 1
    values[radius < 0.25] = 2
    return values


def image_values(offset: float, shape=SHAPE, second: bool = False) -> np.ndarray:
    """A skull-stripped image: a smooth ramp plus ``offset`` inside the brain, 0 outside."""
    ramp = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) % 97
    scale = 3.0 if second else 1.0
    return ((100.0 + ramp + offset) * scale * brain(shape)).astype(np.float32)


def offset_of(subject: str, session: str | None, run: int | None) -> float:
    return 1000.0 * int(subject) + 100.0 * int(session or 0) + 10.0 * (run or 0)


def entities(subject: str, session: str | None, run: int | None = None) -> str:
    return "_".join([f"sub-{subject}"] + ([f"ses-{session}"] if session else []) + ([f"run-{run}"] if run else []))


def anat(root: Path, subject: str, session: str | None) -> Path:
    folder = root / f"sub-{subject}" / (f"ses-{session}" if session else "") / "anat"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save(path: Path, data: np.ndarray, affine=AFFINE) -> Path:
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def build_bids(root: Path, shape=SHAPE, flair: bool = True) -> Path:
    """Write the dataset described in the module doc under ``root``; returns ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "dnorm toy", "BIDSVersion": "1.9.0",
                                                               "DatasetType": "raw"}))
    (root / "participants.tsv").write_text("participant_id\tsite\tscanner\n" + "".join(
        f"sub-{s}\t{site}\tscanner-{site.lower()}\n" for s, site in SITES.items()))
    for subject, session, run in T1_IMAGES:
        folder = anat(root, subject, session)
        name = entities(subject, session, run)
        offset = offset_of(subject, session, run)
        save(folder / f"{name}_T1w.nii.gz", image_values(offset, shape))
        save(folder / f"{name}_T2w.nii.gz", image_values(offset, shape, second=True))
        if flair and subject == "01":
            save(folder / f"{name}_FLAIR.nii.gz", image_values(offset + 5, shape, second=True))
    derivatives = root / "derivatives" / "manual"
    derivatives.mkdir(parents=True)
    (derivatives / "dataset_description.json").write_text(json.dumps({
        "Name": "manual tissue labels", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "manual"}]}))
    (derivatives / "dseg.tsv").write_text("index\tname\n" + "".join(f"{i}\t{n}\n" for i, n in DSEG_NAMES.items()))
    for subject, session in LABELLED:
        save(anat(derivatives, subject, session) / f"{entities(subject, session)}_dseg.nii.gz", dseg_values(shape))
    return root
