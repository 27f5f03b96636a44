"""Site-specific image formation: partial-volume mixing of tissue means, smooth texture, bias
field, Rician noise, then the scanner's intensity scale and gamma."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

#: Tissues that carry a mean intensity, in the order of the template's channels after air.
TISSUES = ("csf", "gm", "wm", "scalp")


@dataclass(frozen=True)
class SiteProfile:
    """How one scanner renders tissue. ``means[modality][tissue]`` are relative intensities
    (air is 0); ``snr`` is the brightest tissue mean over the Rician noise sigma; ``texture``
    the relative standard deviation of smooth within-tissue variation; ``bias`` the amplitude of
    a smooth multiplicative bias field (0 = none); ``gamma`` and ``scale`` the scanner's
    non-linear and linear intensity mapping."""

    name: str
    means: dict[str, dict[str, float]]
    snr: float
    texture: float = 0.05
    bias: float = 0.0
    gamma: float = 1.0
    scale: float = 1000.0

    @classmethod
    def from_config(cls, entry: dict, modalities, source: str) -> "SiteProfile":
        """Build from a config entry, raising ``ValueError`` naming ``source`` when a modality or
        tissue mean is missing or a parameter is out of range."""
        means = {}
        for modality in modalities:
            if modality not in entry:
                raise ValueError(f"{source}: site {entry.get('name')!r} has no intensity means for {modality!r}")
            missing = [t for t in TISSUES if t not in entry[modality]]
            if missing:
                raise ValueError(f"{source}: site {entry['name']!r} {modality} lacks tissue mean(s) {missing}")
            means[modality] = {t: float(entry[modality][t]) for t in TISSUES}
        profile = cls(
            name=str(entry["name"]),
            means=means,
            snr=float(entry["snr"]),
            texture=float(entry.get("texture", 0.05)),
            bias=float(entry.get("bias", 0.0)),
            gamma=float(entry.get("gamma", 1.0)),
            scale=float(entry.get("scale", 1000.0)),
        )
        if profile.snr <= 0 or profile.gamma <= 0 or profile.scale <= 0:
            raise ValueError(f"{source}: site {profile.name!r} needs snr, gamma and scale > 0")
        return profile


def smooth_field(rng: np.random.Generator, shape, sigma_voxels) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-smoothed noise (X×Y×Z float32)."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_voxels, mode="reflect")
    noise -= noise.mean()
    return noise / max(float(noise.std()), 1e-12)


def bias_field(rng: np.random.Generator, shape, spacing, amplitude: float) -> np.ndarray:
    """Smooth multiplicative field exp(amplitude · f), f a low-order random polynomial in the
    normalized coordinates: what slowly varying coil sensitivity looks like."""
    if amplitude == 0:
        return np.ones(shape, dtype=np.float32)
    axes = [np.linspace(-1.0, 1.0, n, dtype=np.float32) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
    terms = [x, y, z, x * y, y * z, x * z, x * x, y * y, z * z]
    coefficients = rng.normal(0.0, 1.0, size=len(terms)) / np.sqrt(len(terms))
    field_values = sum(c * t for c, t in zip(coefficients, terms))
    return np.exp(amplitude * field_values).astype(np.float32)


def render_modality(
    tissues: np.ndarray, profile: SiteProfile, modality: str, spacing, rng: np.random.Generator
) -> np.ndarray:
    """Render one image (X×Y×Z float32, scanner units) from tissue probabilities
    (5×X×Y×Z: air, csf, gm, wm, scalp)."""
    means = profile.means[modality]
    clean = sum(tissues[i + 1] * means[t] for i, t in enumerate(TISSUES))
    spacing = np.asarray(spacing, dtype=float)
    texture = smooth_field(rng, clean.shape, sigma_voxels=1.5 / spacing)
    image = clean * (1.0 + profile.texture * texture)
    image *= bias_field(rng, clean.shape, spacing, profile.bias)
    sigma = max(means.values()) / profile.snr
    real = image + sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    imaginary = sigma * rng.standard_normal(clean.shape, dtype=np.float32)
    magnitude = np.sqrt(real * real + imaginary * imaginary)
    return (profile.scale * np.power(magnitude, profile.gamma)).astype(np.float32)
