"""The embedded synthetic multi-site benchmark: one dataset at a time, NIfTI files plus a manifest.

Every random draw comes from a generator seeded by (seed, dataset name, subject index), so a
dataset is byte-identical for a given seed whatever else the configuration contains.
"""

from __future__ import annotations

import logging
import multiprocessing
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from dnorm.io import save_nifti
from dnorm.manifest import format_spacing, write_manifest
from dnorm.synth.contrast import SiteProfile, render_modality, smooth_field
from dnorm.synth.deform import acquisition_grid, random_geometry, sample_tissues, template_coordinates
from dnorm.synth.template import CHANNEL_LABELS, blur_for_spacing, build_template

log = logging.getLogger(__name__)


def subject_rng(seed: int, dataset: str, index: int) -> np.random.Generator:
    """Generator for one subject; ``zlib.crc32`` keeps the dataset's share stable across runs
    (Python's ``hash`` of a string is salted per process)."""
    return np.random.default_rng([seed, zlib.crc32(dataset.encode()), index])


#: How far (mm) label noise may move a tissue boundary: a voxel may only take a class that the
#: noise-free labels hold within this distance (at least one voxel step along every axis).
LABEL_NOISE_BAND_MM = 2.0


def tissue_labels(
    tissues: np.ndarray, rng: np.random.Generator, label_noise: float, spacing, band_mm: float = LABEL_NOISE_BAND_MM
) -> np.ndarray:
    """Hard labels (X×Y×Z uint8: 0 BG, 1 CSF, 2 GM, 3 WM) as the argmax of tissue probabilities.

    ``label_noise`` > 0 adds smooth random offsets to each class's probability before the
    argmax, which moves boundaries by a voxel or two in spatially coherent patches, the way
    automatic (FreeSurfer) labels err, unlike independent per-voxel flips. The noise is confined
    to tissue boundaries: a voxel may only take a class that the noise-free labels hold within
    ``band_mm`` of it (at least one voxel step along every axis). Without that band the
    offsets' Gaussian tails (4 sigma at ``label_noise`` 0.25) beat pure air and pure tissue, and
    left tissue islands in the air 60-92 mm from the brain and CSF or BG islands deep in white
    matter, which no automatic segmentation produces and which set the Hausdorff distance. The
    band costs no random draws: a seed gives the same images as before and the same labels
    wherever they were within the band.
    """
    classes = np.zeros((4,) + tissues.shape[1:], dtype=np.float32)
    for channel, label in enumerate(CHANNEL_LABELS):
        classes[label] += tissues[channel]
    if label_noise > 0:
        spacing = np.asarray(spacing, dtype=float)
        clean = classes.argmax(axis=0)
        sigma = 1.5 / spacing
        for label in range(1, 4):
            classes[label] += label_noise * smooth_field(rng, classes.shape[1:], sigma)
        band = max(float(band_mm), float(spacing.max()))
        for label in range(4):
            present = clean == label
            if not present.any():
                classes[label] = -np.inf
                continue
            far = ndi.distance_transform_edt(~present, sampling=spacing) > band
            classes[label][far] = -np.inf
    return classes.argmax(axis=0).astype(np.uint8)


def to_scanner_integers(image: np.ndarray) -> np.ndarray:
    """Round to int16 as scanners store magnitude images (and to keep files small)."""
    return np.clip(np.rint(image), 0, np.iinfo(np.int16).max).astype(np.int16)


#: What every subject of the dataset being drawn shares (set by :func:`synthesize_dataset`).
_SUBJECT_SETTINGS: dict = {}


def _synthesize_subject(index: int) -> dict:
    """Draw subject ``index`` of the dataset in :data:`_SUBJECT_SETTINGS`, write its images and
    labels, and return its manifest row."""
    settings = _SUBJECT_SETTINGS
    name, dataset, synth, spacing = settings["name"], settings["dataset"], settings["synth"], settings["spacing"]
    template, acquired, out_dir = settings["template"], settings["acquired"], settings["out_dir"]
    profile = settings["profiles"][index % len(settings["profiles"])]
    subject = f"{name}_{index + 1:03d}"
    rng = subject_rng(settings["seed"], name, index)
    geometry = random_geometry(
        rng,
        template,
        brain_scale=tuple(dataset["brain_scale"]),
        max_rotation_deg=synth["max_rotation_deg"],
        deformation_mm=synth["deformation_mm"],
        smoothness_mm=synth["deformation_smoothness_mm"],
    )
    shape, affine = acquisition_grid(template, geometry, spacing)
    tissues = sample_tissues(acquired, template_coordinates(acquired, geometry, shape, affine, rng))
    labels = tissue_labels(tissues, rng, dataset["label_noise"], spacing)
    paths = {"t1": "", "t2": ""}
    for column, modality in zip(("t1", "t2"), settings["modalities"]):
        image = render_modality(tissues, profile, modality, spacing, rng)
        paths[column] = str(out_dir / f"{subject}_{modality}.nii.gz")
        save_nifti(to_scanner_integers(image), affine, paths[column])
    label_path = str(out_dir / f"{subject}_label.nii.gz")
    save_nifti(labels, affine, label_path)
    log.info("%s: %s site %s grid %s", name, subject, profile.name, shape)
    return dict(dataset=name, subject=subject, site=profile.name, split="", **paths, label=label_path,
                spacing=format_spacing(spacing))


def synthesize_dataset(name: str, dataset: dict, synth: dict, seed: int, out_dir: str | Path,
                       workers: int = 1) -> Path:
    """Write dataset ``name`` (config entry ``dataset``, shared settings ``synth``) under
    ``out_dir`` and return the manifest's path, written last so it marks completion. ``workers``
    > 1 draws subjects in that many forked processes (each subject has its own generator, so
    the files are the same as with one)."""
    out_dir = Path(out_dir)
    modalities = list(dataset["modalities"])
    source = f"config datasets.{name}.sites"
    spacing = np.asarray(dataset["spacing"], dtype=float)
    template = build_template(dataset["csf_shell_mm"], synth["scalp_mm"], synth["template_spacing"])
    _SUBJECT_SETTINGS.update(
        name=name, dataset=dataset, synth=synth, seed=seed, out_dir=out_dir, modalities=modalities,
        profiles=[SiteProfile.from_config(entry, modalities, source) for entry in dataset["sites"]],
        spacing=spacing, template=template, acquired=blur_for_spacing(template, spacing))
    indices = range(dataset["subjects"])
    try:
        if workers > 1 and len(indices) > 1:
            # fork: the workers inherit the template from _SUBJECT_SETTINGS instead of unpickling it per subject
            with multiprocessing.get_context("fork").Pool(min(workers, len(indices))) as pool:
                rows = pool.map(_synthesize_subject, indices, chunksize=1)
        else:
            rows = [_synthesize_subject(index) for index in indices]
    finally:
        _SUBJECT_SETTINGS.clear()
    manifest = out_dir / "manifest.csv"
    write_manifest(pd.DataFrame(rows), manifest)
    return manifest
