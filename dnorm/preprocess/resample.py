"""Resampling with ANTs, converting between ANTs' LPS physical space and NIfTI's RAS affines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: ANTs interpolator codes of ``ants.resample_image``.
LINEAR, NEAREST = 0, 1
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


def ants_to_affine(image) -> np.ndarray:
    """RAS voxel-to-world affine (4×4) of an ANTs image (whose geometry is in LPS)."""
    direction = np.asarray(image.direction, dtype=float)
    spacing = np.asarray(image.spacing, dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = _LPS_TO_RAS @ np.asarray(image.origin, dtype=float)
    return affine


def resample_file(path: str | Path, spacing_mm: float, interpolation: int) -> tuple[np.ndarray, np.ndarray]:
    """Read ``path`` with ANTs and resample it to isotropic ``spacing_mm``.

    Returns ``(data X×Y×Z float32, RAS affine)``. ``interpolation`` is :data:`LINEAR` for images,
    :data:`NEAREST` for labels. The output grid keeps the input's origin and direction, so an
    image and its label on one grid land on one grid.
    """
    import ants  # heavy import, only where needed

    try:
        image = ants.image_read(str(path))
    except Exception as error:
        raise ValueError(f"{path}: ANTs cannot read the image ({error})") from error
    resampled = ants.resample_image(image, (spacing_mm,) * 3, use_voxels=False, interp_type=interpolation)
    return resampled.numpy().astype(np.float32), ants_to_affine(resampled)
