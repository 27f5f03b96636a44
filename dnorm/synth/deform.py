"""Per-subject anatomy: a random similarity transform plus a smooth deformation of the template,
sampled on the site's acquisition grid."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial.transform import Rotation

from dnorm.synth.template import TissueTemplate, head_bounding_box_mm


@dataclass(frozen=True)
class SubjectGeometry:
    """Maps acquisition-grid world coordinates to template world coordinates:
    ``x_template = rotation @ (x - centre) / scale + centre + displacement(x)``."""

    rotation: np.ndarray  # 3×3
    scale: float
    centre: np.ndarray  # 3, mm
    displacement_amplitude_mm: float
    displacement_smoothness_mm: float


def random_geometry(
    rng: np.random.Generator,
    template: TissueTemplate,
    brain_scale: tuple[float, float],
    max_rotation_deg: float,
    deformation_mm: float,
    smoothness_mm: float,
) -> SubjectGeometry:
    """Draw a subject: global scale uniform in ``brain_scale`` (infants' brains are smaller),
    rotation about each axis uniform in ±``max_rotation_deg``."""
    angles = rng.uniform(-max_rotation_deg, max_rotation_deg, size=3)
    rotation = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    low, high = head_bounding_box_mm(template)
    return SubjectGeometry(
        rotation=rotation,
        scale=float(rng.uniform(*brain_scale)),
        centre=(low + high) / 2.0,
        displacement_amplitude_mm=deformation_mm,
        displacement_smoothness_mm=smoothness_mm,
    )


def acquisition_grid(template: TissueTemplate, geometry: SubjectGeometry, spacing, margin_mm: float = 8.0):
    """Shape and RAS affine of a grid with voxel size ``spacing`` (mm) that holds the subject's
    head plus ``margin_mm`` on every side."""
    spacing = np.asarray(spacing, dtype=float)
    low, high = head_bounding_box_mm(template)
    extent = (high - low) * geometry.scale * 1.05 + 2 * margin_mm  # 5 %: room for rotation
    shape = tuple(int(np.ceil(e / s)) for e, s in zip(extent, spacing))
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = geometry.centre - spacing * (np.asarray(shape) - 1) / 2.0
    return shape, affine


def smooth_displacement(rng: np.random.Generator, shape, affine, amplitude_mm: float, smoothness_mm: float):
    """Random smooth displacement field (3×X×Y×Z, mm) with per-component standard deviation
    ``amplitude_mm`` and spatial correlation length about ``smoothness_mm``.

    Drawn on a coarse control grid (spacing ``smoothness_mm / 2``) and linearly interpolated,
    which costs far less than smoothing noise at full resolution.
    """
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    extent = np.asarray(shape) * spacing
    control_spacing = max(smoothness_mm / 2.0, 1e-3)
    control_shape = tuple(int(np.ceil(e / control_spacing)) + 3 for e in extent)
    fields = []
    for _ in range(3):
        noise = ndi.gaussian_filter(rng.standard_normal(control_shape), sigma=1.0, mode="wrap")
        noise *= amplitude_mm / max(noise.std(), 1e-12)
        fields.append(noise.astype(np.float32))
    axes = [np.arange(n) * s / control_spacing + 1.0 for n, s in zip(shape, spacing)]
    coordinates = np.stack(np.meshgrid(*axes, indexing="ij")).astype(np.float32)
    return np.stack([ndi.map_coordinates(f, coordinates, order=1, mode="nearest") for f in fields])


def template_coordinates(template: TissueTemplate, geometry: SubjectGeometry, shape, affine, rng) -> np.ndarray:
    """Template voxel coordinates (3×X×Y×Z float32) sampled by each acquisition voxel."""
    axes = [np.arange(n, dtype=np.float32) for n in shape]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"))
    world = np.einsum("ij,j...->i...", affine[:3, :3].astype(np.float32), grid)
    world += affine[:3, 3].astype(np.float32)[:, None, None, None]
    centre = geometry.centre.astype(np.float32)[:, None, None, None]
    moved = np.einsum("ij,j...->i...", (geometry.rotation / geometry.scale).astype(np.float32), world - centre)
    moved += centre
    if geometry.displacement_amplitude_mm > 0:
        moved += smooth_displacement(
            rng, shape, affine, geometry.displacement_amplitude_mm, geometry.displacement_smoothness_mm
        )
    to_voxel = np.linalg.inv(template.affine).astype(np.float32)
    voxel = np.einsum("ij,j...->i...", to_voxel[:3, :3], moved)
    voxel += to_voxel[:3, 3][:, None, None, None]
    return voxel


def sample_tissues(template: TissueTemplate, coordinates: np.ndarray) -> np.ndarray:
    """Tissue probabilities (C×X×Y×Z float32) at template voxel ``coordinates``; outside the
    template is air."""
    sampled = []
    for channel, probability in enumerate(template.probabilities):
        outside = 1.0 if channel == 0 else 0.0
        sampled.append(ndi.map_coordinates(probability, coordinates, order=1, mode="constant", cval=outside))
    return np.stack(sampled).astype(np.float32)
