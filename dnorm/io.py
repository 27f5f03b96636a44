"""Reading and writing volumes with the checks every stage relies on.

Every writer goes through :func:`atomic_path`: a file appears under its final name only once it
is complete, so a crashed job never leaves an output that Snakemake would take as done.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np

LABEL_VALUES = (0, 1, 2, 3)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    The temporary name keeps the final suffixes (``.nii.gz``) so writers that infer the format
    from the name still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name.split('.')[0]}.", suffix=suffix)
    os.close(handle)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes files private (0600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_image(path: str | os.PathLike) -> nib.spatialimages.SpatialImage:
    """Load any image nibabel reads (NIfTI, Analyze, MGH), with an error that names the file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: file does not exist")
    try:
        image = nib.load(str(path))
        image.header  # noqa: B018 - force header parsing now
    except Exception as error:  # nibabel raises several types for corrupt headers
        raise ValueError(f"{path}: unreadable image ({error})") from error
    if len(image.shape) not in (3, 4) or (len(image.shape) == 4 and image.shape[3] != 1):
        raise ValueError(f"{path}: expected a 3D volume, got shape {image.shape}")
    return image


def load_volume(path: str | os.PathLike, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(data X×Y×Z, affine 4×4)``; raises ``ValueError`` naming the file on NaN/inf."""
    image = load_image(path)
    try:
        data = np.asarray(image.dataobj, dtype=dtype)
    except Exception as error:
        raise ValueError(f"{path}: image data cannot be read ({error})") from error
    data = data.reshape(image.shape[:3])
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        count = int((~np.isfinite(data)).sum())
        raise ValueError(f"{path}: {count} voxel(s) are NaN or infinite")
    return data, image.affine.astype(np.float64)


def load_labels(path: str | os.PathLike, allowed=LABEL_VALUES) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(labels X×Y×Z uint8, affine)``; raises if any value is outside ``allowed``."""
    data, affine = load_volume(path, dtype=np.float32)
    if not np.array_equal(data, np.round(data)):
        raise ValueError(f"{path}: label volume holds non-integer values")
    values = np.unique(data).astype(int)
    unexpected = sorted(set(values.tolist()) - set(allowed))
    if unexpected:
        raise ValueError(f"{path}: unexpected label value(s) {unexpected}; allowed {list(allowed)}")
    return data.astype(np.uint8), affine


def check_same_grid(path_a, shape_a, affine_a, path_b, shape_b, affine_b, atol: float = 1e-3) -> None:
    """Raise ``ValueError`` naming both files unless shapes and affines agree."""
    if tuple(shape_a) != tuple(shape_b):
        raise ValueError(f"{path_a}: shape {tuple(shape_a)} differs from {path_b} shape {tuple(shape_b)}")
    if not np.allclose(affine_a, affine_b, atol=atol):
        raise ValueError(
            f"{path_a}: affine differs from {path_b}\n{np.round(affine_a, 4)}\nvs\n{np.round(affine_b, 4)}"
        )


def save_nifti(data: np.ndarray, affine: np.ndarray, path: str | os.PathLike) -> None:
    """Write ``data`` as NIfTI atomically, with qform and sform set to ``affine``."""
    image = nib.Nifti1Image(np.asarray(data), np.asarray(affine, dtype=np.float64))
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    with atomic_path(path) as tmp:
        nib.save(image, str(tmp))


def spacing_of(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel size in mm from the affine's column norms."""
    return tuple(float(v) for v in np.linalg.norm(np.asarray(affine)[:3, :3], axis=0))  # type: ignore[return-value]
