"""Tissue anatomy of the synthetic benchmark, built from the MNI152 2009 template nilearn ships.

The template's tissue maps are skull-stripped with a tight mask, so cerebrospinal fluid exists
only in the ventricles and a thin partial-volume rim. Real iSEG/MRBrainS labels include the
extra-cerebral CSF around the brain, so we add a CSF shell outside the mask, and a scalp shell
beyond it (labelled background) so raw images look like heads and skull stripping has work to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: Channels of :attr:`TissueTemplate.probabilities`. Air and scalp are both label 0 (BG).
CHANNELS = ("air", "csf", "gm", "wm", "scalp")
#: Which label each channel becomes: 0 BG, 1 CSF, 2 GM, 3 WM.
CHANNEL_LABELS = (0, 1, 2, 3, 0)


@dataclass(frozen=True)
class TissueTemplate:
    """Tissue probabilities ``probabilities`` (5×X×Y×Z float32, channels :data:`CHANNELS`,
    summing to 1 per voxel) on a grid with RAS ``affine`` (4×4, mm)."""

    probabilities: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)


def load_mni_tissues() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(gm, wm, brain_mask, affine)`` of nilearn's bundled 1 mm MNI152 2009 template."""
    from nilearn import datasets  # imported here: nilearn is slow to import

    gm = datasets.load_mni152_gm_template(resolution=1)
    wm = datasets.load_mni152_wm_template(resolution=1)
    mask = datasets.load_mni152_brain_mask(resolution=1)
    as_array = lambda image: np.asarray(image.get_fdata(), dtype=np.float32)  # noqa: E731
    return as_array(gm), as_array(wm), as_array(mask) > 0.5, mask.affine


def build_template(csf_shell_mm: float, scalp_mm: float, spacing_mm: float = 1.0) -> TissueTemplate:
    """Tissue template with a CSF shell of ``csf_shell_mm`` and a scalp of ``scalp_mm`` around
    the brain, block-averaged to ``spacing_mm`` (a multiple of 1 mm) to save time at coarse
    spacings. Raises ``ValueError`` for non-positive thicknesses or spacing."""
    if csf_shell_mm < 0 or scalp_mm < 0:
        raise ValueError(f"shell thicknesses must be >= 0, got csf {csf_shell_mm}, scalp {scalp_mm}")
    factor = int(round(spacing_mm))
    if factor < 1 or abs(factor - spacing_mm) > 1e-6:
        raise ValueError(f"synth template spacing must be a whole number of mm >= 1, got {spacing_mm}")
    gm, wm, mask, affine = load_mni_tissues()
    gm, wm = gm * mask, wm * mask
    inner_csf = np.clip(mask - gm - wm, 0.0, 1.0)
    # Soft shells from the distance (mm) to the brain mask: a 1 mm linear ramp at each edge
    # gives partial volume instead of staircase boundaries.
    distance = ndi.distance_transform_edt(~mask).astype(np.float32)
    csf_shell = np.clip(csf_shell_mm + 0.5 - distance, 0.0, 1.0) * ~mask
    head = np.clip(csf_shell_mm + scalp_mm + 0.5 - distance, 0.0, 1.0) * ~mask
    scalp = head - csf_shell
    csf = inner_csf + csf_shell
    air = np.clip(1.0 - gm - wm - csf - scalp, 0.0, 1.0)
    probabilities = np.stack([air, csf, gm, wm, scalp]).astype(np.float32)
    probabilities /= probabilities.sum(axis=0, keepdims=True)
    if factor > 1:
        probabilities, affine = _block_average(probabilities, affine, factor)
    return TissueTemplate(probabilities=probabilities, affine=affine)


def _block_average(volumes: np.ndarray, affine: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Average ``factor``³ blocks of C×X×Y×Z ``volumes``; the affine moves to block centres."""
    channels, *shape = volumes.shape
    cut = [s - s % factor for s in shape]
    trimmed = volumes[:, : cut[0], : cut[1], : cut[2]]
    blocks = trimmed.reshape(channels, cut[0] // factor, factor, cut[1] // factor, factor, cut[2] // factor, factor)
    averaged = blocks.mean(axis=(2, 4, 6))
    new_affine = affine.copy()
    new_affine[:3, :3] = affine[:3, :3] * factor
    new_affine[:3, 3] = affine[:3, :3] @ np.full(3, (factor - 1) / 2.0) + affine[:3, 3]
    return np.ascontiguousarray(averaged, dtype=np.float32), new_affine


def blur_for_spacing(template: TissueTemplate, target_spacing) -> TissueTemplate:
    """Blur tissue maps so sampling them on a ``target_spacing`` grid mimics partial volume:
    a Gaussian whose FWHM adds up (in quadrature) with the template's to the target voxel size.
    Axes are those of the template; subject rotations are a few degrees, so this is close."""
    fwhm_to_sigma = 1.0 / np.sqrt(8 * np.log(2))
    extra = np.sqrt(np.clip(np.asarray(target_spacing, float) ** 2 - template.spacing**2, 0.0, None))
    sigma_voxels = extra * fwhm_to_sigma / template.spacing
    if not np.any(sigma_voxels > 0.1):
        return template
    blurred = np.stack([ndi.gaussian_filter(p, sigma_voxels, mode="nearest") for p in template.probabilities])
    return TissueTemplate(probabilities=blurred.astype(np.float32), affine=template.affine)


def head_bounding_box_mm(template: TissueTemplate, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """World (mm) corners ``(low, high)`` of the voxels whose non-air probability exceeds ``threshold``."""
    head = template.probabilities[0] < 1.0 - threshold
    indices = np.argwhere(head)
    corners = np.stack([indices.min(axis=0), indices.max(axis=0)]).astype(float)
    world = corners @ template.affine[:3, :3].T + template.affine[:3, 3]
    return world.min(axis=0), world.max(axis=0)
