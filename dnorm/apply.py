"""Apply a trained model to new NIfTI images: normalized image(s) and tissue labels, NIfTI in, NIfTI out.

The thin file-level wrapper behind ``dnorm normalize`` and ``dnorm segment``. For one subject,
:func:`apply_model`:

1. checks the inputs (NIfTI files, readable, 3D, finite; T2 and mask on the T1's voxel grid);
2. preprocesses them as the training data were (SPEC 3.3, :mod:`dnorm.preprocess.pipeline`):
   resample to the model's isotropic spacing with ANTs (linear for images, nearest for the mask),
   take the brain as ``mask > 0`` (``--mask``) or else ``T1 > 0``, zero everything outside it and
   scale each modality to [0, 1] by its brain ``clip_percentile`` (both read from the model card);
3. runs :func:`dnorm.inference.brain_box.predict_in_brain_box` (sliding windows laid out over the
   brain's bounding box, averaged outputs), the very function the workflow's evaluation runs;
4. brings the outputs back to the **input grid**: on the isotropic grid, voxels no window
   reached get background probability 1 and intensity 0, that grid is
   extended by one edge-replicated voxel on each side so it covers every input voxel centre, and
   ANTs resamples it onto the input image's own grid with linear interpolation: the normalized
   image channel by channel, the segmentation as its four class-probability maps, whose argmax
   gives the labels. Averaging probabilities rather than resampling hard labels keeps the
   boundaries of the upsampled segmentation smooth;
5. writes, with the input's affine and shape, atomically: ``<stem>_normalized.nii.gz`` per
   modality (models with a generator), ``<stem>_labels.nii.gz`` (uint8: 0 background, 1 CSF,
   2 GM, 3 WM) and optionally ``<stem>_probabilities.nii.gz`` (X×Y×Z×4 float32, same order),
   where ``<stem>`` is the input file name without ``.nii``/``.nii.gz``.

Inputs must be **skull-stripped** (the models were trained on brain-only images): voxels outside
the brain mask (``--mask``, or T1 > 0) are background in the labels (probability 1) and 0 in the
normalized image.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dnorm.inference.brain_box import predict_in_brain_box
from dnorm.inference.predict import experiment_of, load_model
from dnorm.inference.windows import check_int, check_patch_stride
from dnorm.io import check_same_grid, load_volume, save_nifti
from dnorm.preprocess.geometry import scale_to_unit
from dnorm.preprocess.resample import LINEAR, NEAREST

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_T1_NAME = re.compile(r"^(?P<prefix>.+)_(?P<tag>t1|T1)(?P<suffix>\.nii(\.gz)?)$")

def nifti_stem(path: str | os.PathLike) -> str:
    """File name without ``.nii`` / ``.nii.gz``; ``ValueError`` naming a file with another suffix."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    raise ValueError(f"{path}: not a NIfTI file (expected a .nii or .nii.gz name); convert it first, "
                     f"e.g. with mri_convert or nibabel")


def _read_input(path: str | os.PathLike, what: str) -> tuple[np.ndarray, np.ndarray]:
    """``(data X×Y×Z, affine)`` of a NIfTI input, with errors that name the file."""
    nifti_stem(path)
    if not Path(path).is_file():
        raise ValueError(f"{path}: {what} file does not exist")
    return load_volume(path)


def _model(model) -> tuple[nn.ModuleDict, dict, str]:
    """``(networks, card, name for messages)`` from a path or an already loaded ``(networks, card)``."""
    if isinstance(model, tuple):
        networks, card = model
        return networks, card, str(card.get("experiment", {}).get("name", "model"))
    networks, card = load_model(model)
    return networks, card, str(model)


def preprocess_settings(card: dict, name: str) -> tuple[float, float]:
    """``(spacing mm, clip_percentile)`` from the model card's ``preprocess`` section."""
    settings = card.get("preprocess")
    if not isinstance(settings, dict) or "spacing" not in settings or "clip_percentile" not in settings:
        raise ValueError(f"{name}: the model card lacks preprocessing settings (preprocess.spacing, "
                         f"preprocess.clip_percentile), so new images cannot be prepared like its training "
                         f"data; retrain it with the current dnorm")
    return float(settings["spacing"]), float(settings["clip_percentile"])


def _check_request(card: dict, name: str, write_normalized: bool | None, write_labels: bool,
                   write_probabilities: bool) -> bool:
    """Whether normalized images will be written; ``ValueError`` for impossible requests."""
    has_generator = experiment_of(card).uses_generator
    if write_normalized and not has_generator:
        method = card["experiment"]["method"]
        raise ValueError(f"{name}: method {method!r} is a segmentation-only baseline without a generator, so it "
                         f"cannot normalize images; use `dnorm segment` for its labels")
    normalized = has_generator if write_normalized is None else bool(write_normalized)
    if not (normalized or write_labels or write_probabilities):
        raise ValueError("nothing to write: normalized images, labels and probabilities are all switched off")
    return normalized


def _default_device(device) -> torch.device:
    """The requested device (checked), or CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {str(device)!r} requested but CUDA is not available here")
    return device


def _ants_read(path: str | os.PathLike):
    import ants  # heavy import, only where needed

    try:
        image = ants.image_read(str(path))
    except Exception as error:
        raise ValueError(f"{path}: ANTs cannot read the image ({error})") from error
    if image.dimension == 4 and image.shape[3] == 1:
        image = ants.slice_image(image, axis=3, idx=0)
    if image.dimension != 3:
        raise ValueError(f"{path}: expected a 3D volume, got shape {image.shape}")
    return image


def _resample_iso(image, spacing_mm: float, interpolation: int):
    import ants

    return ants.resample_image(image, (spacing_mm,) * 3, use_voxels=False, interp_type=interpolation)


def _to_input_grid(maps: np.ndarray, iso, reference) -> np.ndarray:
    """Resample ``K×X'×Y'×Z'`` maps on the isotropic ANTs grid ``iso`` onto ``reference``'s grid
    (linear). The isotropic grid is first extended by one edge-replicated voxel on every side, so
    input voxel centres near the field-of-view border are interpolated, not set to 0."""
    import ants

    direction = np.asarray(iso.direction, dtype=float)
    spacing = np.asarray(iso.spacing, dtype=float)
    origin = np.asarray(iso.origin, dtype=float) - direction @ spacing  # physical point of index -1
    out = []
    for channel in maps:
        extended = np.pad(channel.astype(np.float32), 1, mode="edge")
        image = ants.from_numpy(extended, origin=tuple(origin), spacing=tuple(spacing), direction=direction)
        out.append(ants.resample_image_to_target(image, reference, interp_type="linear").numpy())
    return np.stack(out).astype(np.float32)


def apply_model(
    model_path,
    t1_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    t2_path: str | os.PathLike | None = None,
    mask_path: str | os.PathLike | None = None,
    stride: int = 8,
    write_probabilities: bool = False,
    progress: bool = True,
    *,
    write_normalized: bool | None = None,
    write_labels: bool = True,
    device: str | torch.device | None = None,
    batch_size: int = 16,
) -> dict[str, Path]:
    """Normalize and segment one subject's skull-stripped image(s) with a trained model.

    Args:
        model_path: a ``model.pt`` written by ``dnorm`` training, or an already loaded
            ``(networks, card)`` from :func:`dnorm.inference.predict.load_model` (the networks are
            moved to ``device``).
        t1_path: skull-stripped T1-weighted image (``.nii``/``.nii.gz``), any voxel size.
        out_dir: output folder (created).
        t2_path: T2-weighted image on the T1's voxel grid; required by models trained on T1 + T2,
            refused by T1-only models.
        mask_path: optional brain mask on the T1's grid (non-zero = brain); default: T1 > 0.
        stride: sliding-window step in voxels of the model's spacing (1 … patch size; 8 in the paper).
        write_probabilities: also write the four class-probability maps as one 4D image.
        progress: show a progress bar over the sliding windows.
        write_normalized: ``None`` writes normalized images when the model has a generator;
            ``True`` requires one (``ValueError`` for the segmentation-only baselines); ``False``
            never writes them.
        write_labels: write the label image.
        device: where the networks run (default: CUDA when available, else CPU).
        batch_size: windows per forward pass.

    Returns:
        Written files by kind: ``normalized_<modality>`` (e.g. ``normalized_t1``), ``labels``,
        ``probabilities``. Every output has the T1's shape (X×Y×Z, plus ×4 for probabilities)
        and affine.

    Raises:
        ValueError: naming the file for a missing/unreadable/non-NIfTI input or model, images not
            on one grid, an empty brain, a modality count the model does not take, or a model card
            without preprocessing settings.
    """
    networks, card, name = _model(model_path)
    spacing_mm, percentile = preprocess_settings(card, name)
    normalized_wanted = _check_request(card, name, write_normalized, write_labels, write_probabilities)
    modalities = list(card["experiment"]["modalities"])
    patch_size, stride = check_patch_stride(card["training"]["patch_size"], stride)
    batch_size = check_int("batch_size", batch_size, 1)
    if len(modalities) == 2 and t2_path is None:
        raise ValueError(f"{name}: the model was trained on {' + '.join(modalities)}; give the T2 image too "
                         f"(--t2), on the T1's voxel grid")
    if len(modalities) == 1 and t2_path is not None:
        raise ValueError(f"{name}: the model was trained on {modalities[0]} only; it cannot use {t2_path}")

    # 1. Check the inputs with nibabel (clear errors), then read them with ANTs for resampling.
    inputs = {modalities[0]: Path(t1_path)} | ({modalities[1]: Path(t2_path)} if t2_path is not None else {})
    t1_data, affine = _read_input(t1_path, "T1 image")
    shape = t1_data.shape
    for modality, path in list(inputs.items())[1:]:
        data, other = _read_input(path, f"{modality.upper()} image")
        check_same_grid(path, data.shape, other, t1_path, shape, affine)
    mask = None
    if mask_path is not None:
        mask, mask_affine = _read_input(mask_path, "brain mask")
        check_same_grid(mask_path, mask.shape, mask_affine, t1_path, shape, affine)
    stems = [nifti_stem(path) for path in inputs.values()]
    if len(set(stems)) != len(stems):
        raise ValueError(f"{t1_path} and {t2_path} have the same file name stem {stems[0]!r}; their outputs "
                         f"would overwrite each other")
    brain_input = (mask > 0) if mask is not None else (t1_data > 0)
    if not brain_input.any():
        source = mask_path if mask is not None else t1_path
        raise ValueError(f"{source}: empty brain (no voxel > 0); inputs must be skull-stripped brain images")
    if mask is None and brain_input.mean() > 0.9:
        log.warning("%s: %.0f%% of the voxels are > 0; is it skull-stripped? The model expects a brain-only "
                    "image (or pass a brain mask)", t1_path, 100 * brain_input.mean())

    # 2. Preprocess as the training data: isotropic spacing, brain only, crop, pad, scale to [0, 1].
    reference = _ants_read(t1_path)
    if tuple(reference.shape) != tuple(shape):
        raise ValueError(f"{t1_path}: ANTs reads shape {reference.shape}, nibabel {shape}")
    isotropic = {m: _resample_iso(reference if m == modalities[0] else _ants_read(p), spacing_mm, LINEAR)
                 for m, p in inputs.items()}
    iso_grid = isotropic[modalities[0]]
    if mask_path is not None:
        brain = _resample_iso(_ants_read(mask_path), spacing_mm, NEAREST).numpy() > 0
    else:
        brain = iso_grid.numpy() > 0
    if not brain.any():
        raise ValueError(f"{t1_path}: the brain vanishes when resampled to the model's {spacing_mm} mm spacing")
    volume = np.stack([scale_to_unit(np.where(brain, np.maximum(image.numpy(), 0.0), 0.0), brain, percentile)
                       for image in isotropic.values()])

    # 3. Predict inside the brain's bounding box (windows anchored at the box, as in evaluation).
    device = _default_device(device)
    networks.to(device)
    log.info("%s: %s on a %s grid at %g mm", t1_path, name, "×".join(map(str, volume.shape[1:])), spacing_mm)
    probabilities, normalized = predict_in_brain_box(volume, brain, networks, card, stride=stride,
                                                     batch_size=batch_size, device=device, progress=progress)

    # 4. Back to the input grid: background where no window reached, resample linearly.
    probabilities[0][probabilities.sum(axis=0) == 0] = 1.0  # in no evaluated window: no brain nearby
    outputs: dict[str, Path] = {}
    out_dir = Path(out_dir)
    background = ~brain_input
    if write_labels or write_probabilities:
        resampled = _to_input_grid(probabilities, iso_grid, reference)
        resampled[:, background] = 0.0
        resampled[0][background] = 1.0
        if write_labels:
            labels = np.argmax(resampled, axis=0).astype(np.uint8)
            outputs["labels"] = out_dir / f"{stems[0]}_labels.nii.gz"
            save_nifti(labels, affine, outputs["labels"])
        if write_probabilities:
            outputs["probabilities"] = out_dir / f"{stems[0]}_probabilities.nii.gz"
            save_nifti(np.moveaxis(resampled, 0, -1), affine, outputs["probabilities"])
    if normalized_wanted and normalized is not None:
        images = np.where(brain, normalized, 0.0).astype(np.float32)
        resampled = np.clip(_to_input_grid(images, iso_grid, reference), 0.0, 1.0)
        resampled[:, background] = 0.0
        for modality, stem, image in zip(inputs, stems, resampled):
            outputs[f"normalized_{modality}"] = out_dir / f"{stem}_normalized.nii.gz"
            save_nifti(image, affine, outputs[f"normalized_{modality}"])
    for kind, path in outputs.items():
        log.info("wrote %s: %s", kind, path)
    return outputs


def find_subjects(folder: str | os.PathLike, modalities) -> list[dict[str, Path]]:
    """T1 images of ``folder`` (``*_t1.nii.gz``, ``*_T1.nii``, …), sorted, each with its T2
    (same prefix, ``_t2``/``_T2``) when ``modalities`` has two entries.

    Returns one ``{"t1": path[, "t2": path]}`` per subject. Raises ``ValueError`` naming the
    folder when it holds no T1 image, or the T1 file whose T2 is missing or ambiguous."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    subjects = []
    for path in sorted(folder.iterdir()):
        match = _T1_NAME.match(path.name)
        if not match or not path.is_file():
            continue
        subject = {modalities[0]: path}
        if len(modalities) == 2:
            candidates = [folder / f"{match['prefix']}_{tag}{suffix}" for tag in ("t2", "T2")
                          for suffix in NIFTI_SUFFIXES]
            found = sorted({c for c in candidates if c.is_file()})
            if not found:
                raise ValueError(f"{path}: the model needs a T2 image too, but there is no "
                                 f"{match['prefix']}_t2.nii.gz (or _T2, .nii) beside it")
            if len(found) > 1:
                raise ValueError(f"{path}: several T2 images match: {[str(f) for f in found]}")
            subject[modalities[1]] = found[0]
        subjects.append(subject)
    if not subjects:
        raise ValueError(f"{folder}: no T1 images found (expected names ending in _t1.nii.gz, _t1.nii, "
                         f"_T1.nii.gz or _T1.nii)")
    return subjects


def apply_to_folder(
    model_path,
    folder: str | os.PathLike,
    out_dir: str | os.PathLike,
    stride: int = 8,
    write_probabilities: bool = False,
    progress: bool = True,
    *,
    write_normalized: bool | None = None,
    write_labels: bool = True,
    device: str | torch.device | None = None,
    batch_size: int = 16,
) -> dict[str, dict[str, Path]]:
    """:func:`apply_model` on every T1 image of ``folder`` (see :func:`find_subjects` for the
    names and the T2 pairing); the brain is each T1 > 0. The model is loaded once; a tqdm bar
    counts images. Returns the written files per T1 file name."""
    networks, card, name = _model(model_path)
    preprocess_settings(card, name)
    _check_request(card, name, write_normalized, write_labels, write_probabilities)
    modalities = list(card["experiment"]["modalities"])
    subjects = find_subjects(folder, modalities)
    from tqdm.auto import tqdm

    results = {}
    for subject in tqdm(subjects, desc="images", unit="image", disable=not progress):
        t1 = subject[modalities[0]]
        t2 = subject[modalities[1]] if len(modalities) == 2 else None
        results[t1.name] = apply_model((networks, card), t1, out_dir, t2_path=t2, stride=stride,
                                       write_probabilities=write_probabilities, progress=progress,
                                       write_normalized=write_normalized, write_labels=write_labels,
                                       device=device, batch_size=batch_size)
    return results
