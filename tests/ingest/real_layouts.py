"""Tiny fixture datasets in the exact layouts of iSEG-2017, MRBrainS13 and ABIDE (FreeSurfer).

Every subject's images are distinguishable: T1 voxels hold ``1000 * n + ramp`` and the second
modality ``1000 * n + 500 + ramp`` for subject number ``n``, so a test can tell which subject and
which modality a converted file came from.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (12, 14, 10)
ISEG_RAW = (0, 10, 150, 250)
MRBRAINS_AFFINE = np.array([[-0.958, 0, 0, 5.0], [0, 0.958, 0, -6.0], [0, 0, 3.0, -15.0], [0, 0, 0, 1]])
# FreeSurfer conformed orientation (LIA): x -> left, y -> inferior, z -> anterior
LIA_AFFINE = np.array([[-1.0, 0, 0, 6.0], [0, 0, 1.0, -5.0], [0, -1.0, 0, 7.0], [0, 0, 0, 1]])


def ramp(shape=SHAPE) -> np.ndarray:
    """0 .. 99 increasing along the flattened volume, so volumes are not constant."""
    return (np.arange(int(np.prod(shape))) % 100).reshape(shape).astype(np.float32)


def tissue_pattern(shape=SHAPE) -> np.ndarray:
    """Labels 0..3 in x-slabs (every class present, not symmetric under a flip)."""
    classes = np.zeros(shape, dtype=np.uint8)
    classes[3:5] = 1
    classes[5:8] = 2
    classes[8:11] = 3
    return classes


def image_values(number: int, second: bool = False, shape=SHAPE) -> np.ndarray:
    return 1000.0 * number + (500.0 if second else 0.0) + ramp(shape)


def build_iseg(root: Path, labelled=(1, 2), unlabelled=(), shape=SHAPE) -> Path:
    """``root/subject-N-{T1,T2,label}.hdr/.img`` as Analyze 7.5 (int16 images, uint8 labels)."""
    root.mkdir(parents=True, exist_ok=True)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    for number in tuple(labelled) + tuple(unlabelled):
        for kind, second in (("T1", False), ("T2", True)):
            data = image_values(number, second, shape).astype(np.int16)
            nib.save(nib.AnalyzeImage(data, affine), str(root / f"subject-{number}-{kind}.hdr"))
        if number in labelled:
            raw = np.asarray(ISEG_RAW, dtype=np.uint8)[tissue_pattern(shape)]
            nib.save(nib.AnalyzeImage(raw, affine), str(root / f"subject-{number}-label.hdr"))
    return root


def save_nii(data, affine, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return path


def build_mrbrains(root: Path, labelled=(1, 2), unlabelled=(), nested=True, shape=SHAPE) -> Path:
    """``root/TrainingData/N/{T1,T1_1mm,T2_FLAIR,LabelsForTesting,LabelsForTraining}.nii``.

    ``T1_1mm.nii`` is on another (1 mm, larger) grid with values 9999 so picking it shows.
    Returns the folder to pass to ingest (``root``).
    """
    training = root / "TrainingData" if nested else root
    for number in tuple(labelled) + tuple(unlabelled):
        folder = training / str(number)
        save_nii(image_values(number, False, shape), MRBRAINS_AFFINE, folder / "T1.nii")
        save_nii(image_values(number, True, shape), MRBRAINS_AFFINE, folder / "T2_FLAIR.nii")
        big = (shape[0], shape[1], shape[2] * 3)
        save_nii(np.full(big, 9999.0, dtype=np.float32), np.diag([0.958, 0.958, 1.0, 1.0]), folder / "T1_1mm.nii")
        if number in labelled:
            save_nii(tissue_pattern(shape), MRBRAINS_AFFINE, folder / "LabelsForTesting.nii")
            save_nii((tissue_pattern(shape) * 2).astype(np.uint8), MRBRAINS_AFFINE, folder / "LabelsForTraining.nii")
    return root


# aseg labels written in the ABIDE fixture, one x-slab each, and the tissue each must become
ABIDE_SLABS = ((0, 0), (2, 3), (3, 2), (4, 1), (17, 2), (24, 1), (251, 3), (31, 1), (16, 3), (0, 0), (42, 2), (0, 0))


def abide_labels(shape=SHAPE, cortex=(3, 42)) -> tuple[np.ndarray, np.ndarray]:
    """``(aseg int32, expected tissue uint8)``; ``cortex`` replaces labels 3 and 42 (for aparc+aseg)."""
    aseg = np.zeros(shape, dtype=np.int32)
    tissue = np.zeros(shape, dtype=np.uint8)
    for x, (label, expected) in enumerate(ABIDE_SLABS[: shape[0]]):
        label = {3: cortex[0], 42: cortex[1]}.get(label, label)
        aseg[x] = label
        tissue[x] = expected
    return aseg, tissue


def build_abide(root: Path, subjects=("Caltech_0051456", "CMU_a_0050642"), image_name="brainmask.mgz",
                label_name="aseg.mgz", cortex=(3, 42), shape=SHAPE) -> Path:
    """``root/<SUBJECT>/mri/{brainmask,aseg}.mgz`` (MGH, LIA affine, uint8 image, int32 labels)."""
    for number, subject in enumerate(subjects, start=1):
        mri = root / subject / "mri"
        mri.mkdir(parents=True, exist_ok=True)
        image = np.clip(ramp(shape) + 10 * number, 0, 255).astype(np.uint8)
        nib.save(nib.MGHImage(image, LIA_AFFINE), str(mri / image_name))
        aseg, _ = abide_labels(shape, cortex)
        nib.save(nib.MGHImage(aseg, LIA_AFFINE), str(mri / label_name))
    return root
