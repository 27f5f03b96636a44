"""Whole-volume prediction with a trained model: class probabilities and the normalized image.

:func:`load_model` rebuilds G, S (and D) from a ``model.pt`` written by
:func:`dnorm.training.run.train_experiment`; :func:`predict_volume` runs them over a preprocessed
``C×X×Y×Z`` volume with the paper's test-time procedure (sliding windows, stride 8, outputs
averaged per voxel, SPEC section 2). It is a pure function; reading and writing NIfTI files is
:mod:`dnorm.apply`'s job.

One pass of :func:`dnorm.inference.patch_average` runs a composite model that maps a window ``x``
to ``concat([G(x), softmax(S(G(x)))])``, so G's and S's outputs are averaged over the same
windows and G runs once per window. Methods without a generator map ``x`` to
``softmax(S(x))``, where for the Standardization baseline ``x`` is cut from the volume after it was
z-scored as a whole over its brain voxels, exactly as in training
(:class:`dnorm.training.patches.Volume`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dnorm.inference.patch_average import _windows_touching, patch_average
from dnorm.inference.windows import check_patch_stride, window_starts
from dnorm.training.experiment import Experiment
from dnorm.training.networks import N_CLASSES, build_networks
from dnorm.training.patches import brain_statistics


def experiment_of(card: dict) -> Experiment:
    """The :class:`Experiment` recorded in a model card (lists turned back into tuples)."""
    entry = dict(card["experiment"])
    for key in ("datasets", "modalities"):
        if key in entry:
            entry[key] = tuple(entry[key])
    return Experiment(**entry)


def _numpy_scalar_globals() -> list:
    """NumPy scalar types a model card may hold (e.g. a metric stored as ``np.float64``), allowed
    in addition to tensors and plain Python data when loading with ``weights_only``."""
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # NumPy < 2
        from numpy.core.multiarray import scalar
    names = ("Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType")
    dtypes = getattr(np, "dtypes", None)
    # TorchVersion: a str subclass that earlier model cards stored.
    return [scalar, np.dtype, torch.torch_version.TorchVersion,
            *(getattr(dtypes, n) for n in names if hasattr(dtypes, n))]


def load_model(path: str | os.PathLike) -> tuple[nn.ModuleDict, dict]:
    """Load a trained model written by ``dnorm`` training (``model.pt``).

    Returns ``(networks, card)``: the ``nn.ModuleDict`` of :func:`dnorm.training.networks.build_networks`
    (``segmenter``, plus ``generator`` and ``discriminator`` when the method has them) on the CPU
    in eval mode, and the model card (a dict with ``experiment``, ``training``, ``preprocess``, …).

    Raises:
        ValueError: naming ``path`` when the file is missing, unreadable, not a ``dnorm`` model, or
            its weights do not fit the networks its card describes.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: model file does not exist")
    try:
        # weights_only: a model file may come from anyone; it must hold only tensors and plain data.
        with torch.serialization.safe_globals(_numpy_scalar_globals()):
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated or foreign files
        first_line = (str(error).strip().splitlines() or [""])[0]
        raise ValueError(f"{path}: unreadable model file ({type(error).__name__}: {first_line})") from error
    if not (isinstance(content, dict) and isinstance(content.get("card"), dict)
            and isinstance(content.get("networks"), dict)):
        raise ValueError(f"{path}: not a dnorm model (expected a dict with 'card' and 'networks')")
    card = content["card"]
    missing = [key for key in ("experiment", "training") if not isinstance(card.get(key), dict)]
    if missing:
        raise ValueError(f"{path}: the model card lacks {missing}")
    try:
        experiment = experiment_of(card)
        networks = build_networks(experiment, card["training"])
    except (TypeError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: cannot rebuild the networks from the model card ({error!r})") from error
    try:
        networks.load_state_dict(content["networks"])
    except RuntimeError as error:
        raise ValueError(f"{path}: weights do not match the networks of the model card ({error})") from error
    return networks.eval(), card


class _Composite(nn.Module):
    """One window model for patch averaging: ``N×C×p×p×p`` → ``N×(C+4)×p×p×p``
    (``[G(x), softmax(S(G(x)))]``) with a generator, ``N×4×p×p×p`` (``softmax(S(x))``) without.

    ``on_batch(n)`` is called after every batch of ``n`` windows (progress reporting)."""

    def __init__(self, networks: nn.ModuleDict, on_batch=None) -> None:
        super().__init__()
        self.segmenter = networks["segmenter"]
        self.generator = networks["generator"] if "generator" in networks else None
        self.on_batch = on_batch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is not None:
            normalized = self.generator(x)
            probabilities = torch.softmax(self.segmenter(normalized).float(), dim=1)
            out = torch.cat([normalized.float(), probabilities], dim=1)
        else:
            out = torch.softmax(self.segmenter(x).float(), dim=1)
        if self.on_batch is not None:
            self.on_batch(x.shape[0])
        return out


def standardize_volume(volume: np.ndarray) -> np.ndarray:
    """The Standardization baseline's input: each channel of ``C×X×Y×Z`` ``volume`` z-scored over
    its brain voxels (:func:`dnorm.training.patches.brain_statistics`, voxels > 0), 0 outside the
    brain (channel 0 > 0), as in training. Returns float32 ``C×X×Y×Z``."""
    brain = volume[0] > 0
    out = np.zeros(volume.shape, dtype=np.float32)
    for channel, image in enumerate(volume):
        mean, std = brain_statistics(image)
        out[channel] = np.where(brain, (image - mean) / std, 0.0)
    return out


def count_windows(shape, patch_size: int, stride: int, mask: np.ndarray | None = None) -> int:
    """How many windows :func:`patch_average` evaluates on a volume of spatial ``shape``."""
    padded = tuple(max(n, patch_size) for n in shape)
    starts = [window_starts(n, patch_size, stride) for n in padded]
    if mask is None:
        return int(np.prod([len(s) for s in starts]))
    mask = np.pad(np.asarray(mask) != 0, [(0, p - n) for p, n in zip(padded, shape)])
    return int(_windows_touching(mask, starts, patch_size).sum())


def predict_volume(
    volume: np.ndarray,
    networks: nn.ModuleDict,
    card: dict,
    stride: int = 8,
    mask: np.ndarray | None = None,
    batch_size: int = 16,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Segment (and normalize) a preprocessed volume with a trained model.

    Args:
        volume: ``C×X×Y×Z`` preprocessed image (skull-stripped, intensities scaled to [0, 1], on
            the model's voxel spacing), channels in the order of the card's modalities.
        networks, card: as returned by :func:`load_model`. The networks must live on ``device``
            (``None``: wherever their parameters are).
        stride: window step; the window edge is the card's ``training.patch_size``.
        mask: optional ``X×Y×Z`` brain mask; windows holding no mask voxel are skipped, so voxels
            that no evaluated window covers get all-zero outputs.
        batch_size, device, autocast_dtype: passed to :func:`dnorm.inference.patch_average`.
        progress: show a tqdm bar over the windows.

    Returns:
        ``(probabilities, normalized)``: ``4×X×Y×Z`` float32 class probabilities (BG, CSF, GM, WM)
        averaged over the windows covering each voxel (they sum to 1 on every covered voxel), and
        the ``C×X×Y×Z`` float32 normalized image G(x) averaged likewise, or ``None`` for methods
        without a generator (single-dataset U-Net, Standardization).

    Raises:
        ValueError: if ``volume`` is not ``C×X×Y×Z`` with ``C`` the card's number of modalities,
            holds values outside [0, 1] or NaN, or on bad ``stride``/``mask``/``batch_size``.
    """
    volume = np.asarray(volume)
    modalities = list(card["experiment"]["modalities"])
    if volume.ndim != 4:
        raise ValueError(f"volume must be C×X×Y×Z (4D), got shape {volume.shape!r}")
    if volume.shape[0] != len(modalities):
        raise ValueError(f"volume has {volume.shape[0]} channel(s) but the model expects {len(modalities)} "
                         f"({', '.join(modalities)})")
    volume = volume.astype(np.float32, copy=False)
    if volume.size and not (np.isfinite(volume).all() and volume.min() >= 0.0 and volume.max() <= 1.0):
        raise ValueError(f"volume must be preprocessed to [0, 1] (no NaN), got values in "
                         f"[{np.nanmin(volume)}, {np.nanmax(volume)}]")
    patch_size, stride = check_patch_stride(card["training"]["patch_size"], stride)
    if experiment_of(card).standardize:
        volume = standardize_volume(volume)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count_windows(volume.shape[1:], patch_size, stride, mask), unit="window",
                   desc="patches", leave=False)
    composite = _Composite(networks, on_batch=bar.update if bar is not None else None)
    try:
        output = patch_average(volume, composite, patch_size=patch_size, stride=stride, mask=mask,
                               batch_size=batch_size, device=device, autocast_dtype=autocast_dtype)
    finally:
        if bar is not None:
            bar.close()
    if composite.generator is None:
        return output, None
    channels = volume.shape[0]
    return output[channels : channels + N_CLASSES], output[:channels]
