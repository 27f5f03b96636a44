"""Apply a trained model to new NIfTI images: normalized image(s) and tissue labels, NIfTI in, NIfTI out.

The thin file-level wrapper behind ``dnorm normalize`` and ``dnorm segment``. For one subject,
:func:`apply_model`:

1. checks the inputs (NIfTI files, readable, 3D, finite; T2 and mask on the T1's voxel grid);
2. preprocesses them as the training data were (SPEC 3.3, :mod:`dnorm.preprocess.pipeline`):
   take the brain as the non-zero voxels of the mask (``--mask``) or else of the T1 image,
   resample to the model's isotropic spacing with ANTs (linear for images, nearest for the brain),
   zero everything outside the brain and scale each modality to [0, 1] by its brain
   ``clip_percentile`` (both read from the model card). An image with negative brain
   intensities (e.g. z-scored) is first shifted so its ``100 - clip_percentile`` percentile is 0,
   with a warning: training images had raw, non-negative intensities;
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
the brain (``--mask``, or the T1's non-zero voxels) are background in the labels (probability 1) and
0 in the normalized image. With ``skull_strip`` (``--skull-strip``) the brain is first extracted by
:func:`dnorm.preprocess.skullstrip.extract_brain`, and its mask is written beside the outputs.
Output file names can be replaced per kind (``output_paths``): :mod:`dnorm.bids_output` uses that
to write BIDS-derivatives names.

:func:`apply_to_folder` runs every T1 image of a folder (``<id>_t1``/``_T1`` or BIDS ``<id>_T1w``,
``.nii``/``.nii.gz``); a subject that fails is reported and the others are still processed.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

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
#: Folder mode: T1 file names (dnorm's ``<id>_t1``/``_T1`` and BIDS ``<id>_T1w``) and the tags of
#: the second modality paired with them by prefix (T2, or BIDS ``_T2w``/``_FLAIR``).
_T1_NAME = re.compile(r"^(?P<prefix>.+)_(?P<tag>t1|T1|T1w)(?P<suffix>\.nii(\.gz)?)$")
SECOND_MODALITY_TAGS = ("t2", "T2", "T2w", "FLAIR")

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


def read_model(path: str | os.PathLike) -> tuple[nn.ModuleDict, dict]:
    """:func:`dnorm.inference.predict.load_model` with messages for a user's mistakes: a folder, a
    file that is not a PyTorch archive (random bytes, truncated) and one holding pickled Python
    objects, which ``load_model`` refuses (``weights_only``) and which is then not a dnorm model:
    torch's own advice to load it with ``weights_only=False`` is unsafe and is never shown."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a model file (give the model.pt inside it)")
    if not path.exists():
        raise ValueError(f"{path}: model file does not exist")
    try:
        with zipfile.ZipFile(path) as archive:  # torch.save writes a zip archive
            damaged = archive.testzip()
    except zipfile.BadZipFile:
        raise ValueError(f"{path}: not a dnorm model file (not a PyTorch archive: corrupt, truncated "
                         f"or another format)") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read the model file ({error.strerror or error})") from None
    if damaged is not None:
        raise ValueError(f"{path}: not a dnorm model file (corrupt: {damaged} fails its checksum)")
    try:
        return load_model(path)
    except ValueError as error:
        if isinstance(error.__cause__, pickle.UnpicklingError):
            raise ValueError(f"{path}: not a dnorm model file (it holds Python objects, not only tensors "
                             f"and plain data as dnorm models do)") from None
        raise


def _model(model) -> tuple[nn.ModuleDict, dict, str]:
    """``(networks, card, name for messages)`` from a path or an already loaded ``(networks, card)``."""
    if isinstance(model, tuple):
        networks, card = model
        return networks, card, str(card.get("experiment", {}).get("name", "model"))
    networks, card = read_model(model)
    return networks, card, str(model)


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """``out_dir`` as a ``Path``, checked before any work: ``ValueError`` naming the path when it,
    or the nearest existing folder above it, is a file or cannot be written to."""
    out_dir = Path(out_dir)
    existing = next(p for p in (out_dir, *out_dir.absolute().parents) if p.exists())
    if not existing.is_dir():
        if existing == out_dir:
            raise ValueError(f"{out_dir}: is a file; the output folder OUT must be a folder (created if needed)")
        raise ValueError(f"{existing}: is a file, so the output folder {out_dir} cannot be created in it")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{existing}: no permission to write the outputs there")
    return out_dir


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


def prepare_batch_request(model_path, out_dir, device, stride: int, batch_size: int, write_normalized,
                          write_labels: bool, write_probabilities: bool):
    """The checks shared by every many-subject entry point (a folder, a BIDS dataset), done once
    before any prediction: returns ``(device, out_dir, networks, card, model name)``."""
    device = _default_device(device)
    out_dir = check_out_dir(out_dir)
    networks, card, name = _model(model_path)
    preprocess_settings(card, name)
    _check_request(card, name, write_normalized, write_labels, write_probabilities)
    check_patch_stride(card["training"]["patch_size"], stride)
    check_int("batch_size", batch_size, 1)
    return device, out_dir, networks, card, name


def _default_device(device) -> torch.device:
    """The requested device, or CUDA when available, else CPU. A GPU that was asked for and is not
    there is a ``ValueError``, never a silent fall-back to the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from error
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {str(device)!r}: no CUDA GPU is available here; use cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"device {str(device)!r}: only {count} CUDA GPU(s) here (cuda:0 to cuda:{count - 1})")
    return device


def brain_of(data: np.ndarray) -> np.ndarray:
    """Boolean ``X×Y×Z`` brain: the non-zero voxels of a skull-stripped image or of a mask. Not
    ``> 0``: a z-scored brain is about half negative."""
    return np.asarray(data) != 0


def unit_intensities(image: np.ndarray, brain: np.ndarray, percentile: float, path) -> np.ndarray:
    """``image`` scaled to [0, 1] as the training data (:func:`dnorm.preprocess.geometry.scale_to_unit`).

    Training images had raw, non-negative intensities. An image with negative brain voxels (e.g.
    z-scored) is first shifted so that its ``100 - percentile`` brain percentile is 0, with a
    warning: clipping at 0 would flatten half of a z-scored brain. ``ValueError`` names ``path``.
    """
    values = image[brain]
    low = 0.0
    if values.size and values.min() < 0:
        low = float(np.percentile(values, 100.0 - percentile))
        log.warning("%s: negative brain intensities (min %.3g), e.g. a z-scored image; shifted so that their "
                    "%gth percentile is 0 before scaling to [0, 1]. The model was trained on raw intensities: "
                    "give the image before z-scoring if you have it", path, values.min(), 100.0 - percentile)
    try:
        return scale_to_unit(np.where(brain, np.maximum(image - low, 0.0), 0.0), brain, percentile)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


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
    skull_strip: bool = False,
    output_paths: Mapping[str, str | os.PathLike] | None = None,
) -> dict[str, Path]:
    """Normalize and segment one subject's skull-stripped image(s) with a trained model.

    Args:
        model_path: a ``model.pt`` written by ``dnorm`` training, or an already loaded
            ``(networks, card)`` from :func:`dnorm.inference.predict.load_model` (the networks are
            moved to ``device``).
        t1_path: skull-stripped T1-weighted image (``.nii``/``.nii.gz``), any voxel size.
        out_dir: output folder (created; checked before any work).
        t2_path: T2-weighted image on the T1's voxel grid; required by models trained on T1 + T2,
            refused by T1-only models.
        mask_path: optional brain mask on the T1's grid (non-zero = brain); default: the T1's
            non-zero voxels.
        stride: sliding-window step in voxels of the model's spacing (1 … patch size; 8 in the paper).
        write_probabilities: also write the four class-probability maps as one 4D image.
        progress: show a progress bar over the sliding windows.
        write_normalized: ``None`` writes normalized images when the model has a generator;
            ``True`` requires one (``ValueError`` for the segmentation-only baselines); ``False``
            never writes them.
        write_labels: write the label image.
        device: where the networks run (default: CUDA when available, else CPU); a CUDA device
            that is not there is an error.
        batch_size: windows per forward pass.
        skull_strip: first extract the brain from the T1 with
            :func:`dnorm.preprocess.skullstrip.extract_brain`; its mask then plays the part of
            ``mask_path`` (which must not be given) and is written too, as kind ``brainmask``
            (``<stem>_brainmask.nii.gz``, uint8).
        output_paths: file to write per kind instead of the default ``out_dir/<stem>_<kind>…``
            (e.g. BIDS-derivatives names); kinds not listed keep the default.

    Returns:
        Written files by kind: ``normalized_<modality>`` (e.g. ``normalized_t1``), ``labels``,
        ``probabilities``, ``brainmask``. Every output has the T1's shape (X×Y×Z, plus ×4 for
        probabilities) and affine.

    Raises:
        ValueError: naming the file for a missing/unreadable/non-NIfTI input or model, a model
            path that is a folder, an output folder that is a file, images not on one grid, an empty
            brain, a modality count the model does not take, a model card without preprocessing
            settings, or a GPU asked for that is not there. Outputs are written only once all are
            computed, and a failed write removes the others (all or none).
    """
    options = dict(stride=stride, write_probabilities=write_probabilities, progress=progress,
                   write_normalized=write_normalized, write_labels=write_labels, device=device,
                   batch_size=batch_size, output_paths=dict(output_paths or {}))
    if not skull_strip:
        return _apply_one(model_path, t1_path, out_dir, t2_path, mask_path, **options)
    if mask_path is not None:
        raise ValueError(f"{mask_path}: --mask and --skull-strip both give the brain; use one of them")
    _read_input(t1_path, "T1 image")
    check_out_dir(out_dir)
    with tempfile.TemporaryDirectory(prefix="dnorm-skullstrip-") as folder:
        stripped, mask_file, mask = _skull_strip(Path(t1_path), Path(folder))
        brainmask = Path(options["output_paths"].get("brainmask",
                                                     Path(out_dir) / f"{nifti_stem(t1_path)}_brainmask.nii.gz"))
        try:
            return _apply_one(model_path, stripped, out_dir, t2_path, mask_file, **options,
                              extra={"brainmask": (mask, brainmask)})
        except ValueError as error:  # name the user's file, not the temporary one
            raise ValueError(str(error).replace(str(stripped), f"{t1_path} (skull-stripped)")
                             .replace(str(mask_file), f"brain mask of {t1_path}")) from None


def _skull_strip(t1_path: Path, folder: Path) -> tuple[Path, Path, np.ndarray]:
    """Extract the brain of ``t1_path`` (:func:`dnorm.preprocess.skullstrip.extract_brain`) and
    write it to ``folder`` under the T1's own file name (so output names do not change), with its
    mask; returns ``(brain image path, mask path, mask X×Y×Z uint8)``."""
    from dnorm.io import load_image
    from dnorm.preprocess.skullstrip import extract_brain

    image = load_image(t1_path)  # as loaded from its file, so extract_brain's errors can name it
    try:
        brain_image, mask_image = extract_brain(image)
    except ValueError as error:
        message = one_line(error)
        if str(t1_path) not in message:
            message = f"{t1_path}: skull-stripping failed ({message})"
        raise ValueError(message) from None
    mask = (np.asarray(mask_image.dataobj) != 0).astype(np.uint8)
    if mask.shape != image.shape[:3]:
        raise ValueError(f"{t1_path}: skull-stripping returned a mask of shape {mask.shape}, not the image's "
                         f"{image.shape[:3]}")
    stripped, mask_file = folder / t1_path.name, folder / f"{nifti_stem(t1_path)}_brainmask.nii.gz"
    save_nifti(np.asarray(brain_image.dataobj, dtype=np.float32), image.affine, stripped)
    save_nifti(mask, image.affine, mask_file)
    return stripped, mask_file, mask


def _apply_one(
    model_path,
    t1_path: str | os.PathLike,
    out_dir: str | os.PathLike,
    t2_path: str | os.PathLike | None,
    mask_path: str | os.PathLike | None,
    *,
    stride: int,
    write_probabilities: bool,
    progress: bool,
    write_normalized: bool | None,
    write_labels: bool,
    device,
    batch_size: int,
    output_paths: Mapping[str, str | os.PathLike],
    extra: Mapping[str, tuple[np.ndarray, Path]] | None = None,
) -> dict[str, Path]:
    """:func:`apply_model` without skull-stripping; ``extra`` arrays are written with the outputs."""
    device = _default_device(device)
    out_dir = check_out_dir(out_dir)
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
    brain_input = brain_of(mask if mask is not None else t1_data)
    if not brain_input.any():
        source = mask_path if mask is not None else t1_path
        raise ValueError(f"{source}: empty brain (every voxel is 0); inputs must be skull-stripped brain images")
    if mask is None and brain_input.mean() > 0.9:
        log.warning("%s: %.0f%% of the voxels are non-zero; is it skull-stripped? The model expects a "
                    "brain-only image (or pass a brain mask)", t1_path, 100 * brain_input.mean())

    # 2. Preprocess as the training data: isotropic spacing, brain only, scale to [0, 1].
    reference = _ants_read(t1_path)
    if tuple(reference.shape) != tuple(shape):
        raise ValueError(f"{t1_path}: ANTs reads shape {reference.shape}, nibabel {shape}")
    isotropic = {m: _resample_iso(reference if m == modalities[0] else _ants_read(p), spacing_mm, LINEAR)
                 for m, p in inputs.items()}
    iso_grid = isotropic[modalities[0]]
    # Nearest neighbour on the brain itself: thresholding linearly resampled intensities would
    # depend on their sign and blur the boundary.
    brain_image = reference.new_image_like(brain_input.astype(np.float32))
    brain = _resample_iso(brain_image, spacing_mm, NEAREST).numpy() > 0.5
    if not brain.any():
        raise ValueError(f"{t1_path}: the brain vanishes when resampled to the model's {spacing_mm} mm spacing")
    volume = np.stack([unit_intensities(image.numpy(), brain, percentile, inputs[modality])
                       for modality, image in isotropic.items()])

    # 3. Predict inside the brain's bounding box (windows anchored at the box, as in evaluation).
    networks.to(device)
    log.info("%s: %s on a %s grid at %g mm", t1_path, name, "×".join(map(str, volume.shape[1:])), spacing_mm)
    probabilities, normalized = predict_in_brain_box(volume, brain, networks, card, stride=stride,
                                                     batch_size=batch_size, device=device, progress=progress)

    # 4. Back to the input grid: background where no window reached, resample linearly.
    probabilities[0][probabilities.sum(axis=0) == 0] = 1.0  # in no evaluated window: no brain nearby
    arrays: dict[str, tuple[np.ndarray, Path]] = {}
    background = ~brain_input
    if write_labels or write_probabilities:
        resampled = _to_input_grid(probabilities, iso_grid, reference)
        resampled[:, background] = 0.0
        resampled[0][background] = 1.0
        if write_labels:
            arrays["labels"] = (np.argmax(resampled, axis=0).astype(np.uint8), out_dir / f"{stems[0]}_labels.nii.gz")
        if write_probabilities:
            arrays["probabilities"] = (np.moveaxis(resampled, 0, -1), out_dir / f"{stems[0]}_probabilities.nii.gz")
    if normalized_wanted and normalized is not None:
        images = np.where(brain, normalized, 0.0).astype(np.float32)
        resampled = np.clip(_to_input_grid(images, iso_grid, reference), 0.0, 1.0)
        resampled[:, background] = 0.0
        for modality, stem, image in zip(inputs, stems, resampled):
            arrays[f"normalized_{modality}"] = (image, out_dir / f"{stem}_normalized.nii.gz")
    arrays |= dict(extra or {})
    arrays = {kind: (data, Path(output_paths.get(kind, path))) for kind, (data, path) in arrays.items()}
    return _write_all(arrays, affine)


def _write_all(arrays: dict[str, tuple[np.ndarray, Path]], affine: np.ndarray) -> dict[str, Path]:
    """Write every ``kind: (data, path)`` as NIfTI with ``affine``; if one write fails, remove the
    ones already written, so a subject has all its outputs or none. Returns ``kind: path``."""
    written: dict[str, Path] = {}
    try:
        for kind, (data, path) in arrays.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_nifti(data, affine, path)
            written[kind] = path
            log.info("wrote %s: %s", kind, path)
    except BaseException:
        for path in written.values():
            path.unlink(missing_ok=True)
        raise
    return written


def find_t1_images(folder: str | os.PathLike) -> list[Path]:
    """T1 images of ``folder``, sorted: ``<id>_t1`` / ``<id>_T1`` or BIDS ``<id>_T1w``, each
    ``.nii`` or ``.nii.gz``. ``ValueError`` naming the folder when it holds none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    images = [path for path in sorted(folder.iterdir()) if _T1_NAME.match(path.name) and path.is_file()]
    if not images:
        raise ValueError(f"{folder}: no T1 images found (expected names ending in _t1, _T1 or _T1w, "
                         f"with .nii or .nii.gz)")
    return images


def paired_image(t1_path: str | os.PathLike) -> Path:
    """The second-modality image beside a T1 image found by :func:`find_t1_images`: same prefix,
    tag ``t2``, ``T2``, ``T2w`` or ``FLAIR``, ``.nii`` or ``.nii.gz``. ``ValueError`` naming the T1
    file when there is none or more than one."""
    t1_path = Path(t1_path)
    prefix = _T1_NAME.match(t1_path.name)["prefix"]
    candidates = [t1_path.parent / f"{prefix}_{tag}{suffix}" for tag in SECOND_MODALITY_TAGS
                  for suffix in NIFTI_SUFFIXES]
    found = sorted({c for c in candidates if c.is_file()})
    if not found:
        raise ValueError(f"{t1_path}: the model needs a T2 image too, but there is no {prefix}_t2.nii.gz "
                         f"(or _T2, _T2w, _FLAIR; .nii or .nii.gz) beside it")
    if len(found) > 1:
        raise ValueError(f"{t1_path}: several T2 images match: {', '.join(f.name for f in found)}")
    return found[0]


@dataclass
class FolderResult:
    """What :func:`apply_to_folder` did: written files per T1 file name, and a one-line reason
    per T1 file name that failed (its outputs are not written)."""

    written: dict[str, dict[str, Path]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


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
    skull_strip: bool = False,
) -> FolderResult:
    """:func:`apply_model` on every T1 image of ``folder`` (:func:`find_t1_images`; T2 images
    paired by :func:`paired_image`); the brain is each T1's non-zero voxels, or with
    ``skull_strip`` the mask :func:`dnorm.preprocess.skullstrip.extract_brain` finds (written as
    ``<stem>_brainmask.nii.gz``). The model is loaded once; a tqdm bar counts images.

    A subject that fails (unreadable image, missing T2, empty brain…) is recorded in
    ``FolderResult.failed`` with its message and the others are still processed; it leaves no
    output file. Problems common to every subject (model, device, output folder, arguments, a
    folder without T1 images) raise ``ValueError`` before any work.
    """
    device, out_dir, networks, card, name = prepare_batch_request(
        model_path, out_dir, device, stride, batch_size, write_normalized, write_labels, write_probabilities)
    modalities = list(card["experiment"]["modalities"])
    images = find_t1_images(folder)
    from tqdm.auto import tqdm

    result = FolderResult()
    stems: dict[str, str] = {}
    for t1 in tqdm(images, desc="images", unit="image", disable=not progress):
        try:
            stem = nifti_stem(t1)
            if stem in stems:  # a_t1.nii beside a_t1.nii.gz
                raise ValueError(f"{t1}: same name as {stems[stem]} but for the suffix; its outputs would "
                                 f"overwrite the other's")
            stems[stem] = t1.name
            t2 = paired_image(t1) if len(modalities) == 2 else None
            result.written[t1.name] = apply_model(
                (networks, card), t1, out_dir, t2_path=t2, stride=stride, write_probabilities=write_probabilities,
                progress=progress, write_normalized=write_normalized, write_labels=write_labels, device=device,
                batch_size=batch_size, skull_strip=skull_strip)
        except (ValueError, OSError) as error:  # report it, go on with the other subjects
            result.failed[t1.name] = one_line(error)
            log.info("failed: %s", result.failed[t1.name])
    return result


def one_line(error: BaseException) -> str:
    """An error as one line for a user: ``OSError`` as ``file: reason``, newlines folded."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error)
    return re.sub(r"\s*\n\s*", " ", text).strip()
