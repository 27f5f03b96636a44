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

Speed (``benchmarks/bench_inference.py``, README "Inference speed"): by default the networks run as
a copy with batch normalization folded into the convolutions (:mod:`dnorm.inference.optimize`), in
channels-last 3D on CPU and under bfloat16 autocast where the hardware has it, the same policy as
training (:mod:`dnorm.training.device`), except for each U-Net's first convolution and head, which
stay float32; on CPU in bfloat16, two windows share each grouped convolution
(:class:`dnorm.inference.optimize.PackedUNet3D`) and every other convolution runs as one oneDNN call
with its bias in float32 and its activation fused (:class:`dnorm.inference.optimize.FusedConv3d`);
windows holding no brain voxel are skipped. Pass
``precision="float32"`` for float32 throughout and ``mask=None`` to evaluate every window.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dnorm.inference.optimize import (PackedUNet3D, can_pack, float32_ends, fold_batchnorm, fuse_convolutions,
                                      fused_convolution_available, pack_windows, round_weights_keeping_sums,
                                      unpack_windows)
from dnorm.inference.patch_average import _model_device, _windows_touching, patch_average
from dnorm.inference.windows import check_patch_stride, window_starts
from dnorm.training import device as device_policy
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


class WindowModel(nn.Module):
    """One window model for patch averaging: ``N×C×p×p×p`` → ``N×(C+4)×p×p×p``
    (``[G(x), softmax(S(G(x)))]``) with a generator, ``N×4×p×p×p`` (``softmax(S(x))``) without.
    Outputs are float32 whatever precision the networks run in (softmax is taken in float32).

    ``networks`` is used as given (not copied): ``WindowModel(networks)`` is the plain float32
    composite; :func:`predict_volume` passes an inference copy (:func:`inference_networks`).
    ``channels_last``: convert each batch to channels-last 3D first (use with networks in that
    memory format). ``pack``: the networks take ``pack`` windows side by side in the channels
    (:class:`dnorm.inference.optimize.PackedUNet3D`); a batch whose size is not a multiple of it is
    completed with copies of its last window, whose outputs are dropped. ``on_batch(n)`` is called
    after every batch of ``n`` windows (progress reporting).
    """

    def __init__(self, networks: nn.ModuleDict, on_batch=None, channels_last: bool = False, pack: int = 1) -> None:
        super().__init__()
        self.segmenter = networks["segmenter"]
        self.generator = networks["generator"] if "generator" in networks else None
        self.on_batch = on_batch
        self.channels_last = channels_last
        self.pack = pack

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if self.pack > 1:
            missing = -n % self.pack
            if missing:
                x = torch.cat([x, x[-1:].expand(missing, *x.shape[1:])])
            x = pack_windows(x, self.pack)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last_3d)
        if self.generator is not None:
            normalized = self.generator(x)
            logits = self.segmenter(normalized)
            outputs = [normalized, logits]
        else:
            outputs = [self.segmenter(x)]
        if self.pack > 1:
            outputs = [unpack_windows(output, self.pack)[:n] for output in outputs]
        probabilities = torch.softmax(outputs[-1].float(), dim=1)
        out = torch.cat([outputs[0].float(), probabilities], dim=1) if len(outputs) == 2 else probabilities
        if self.on_batch is not None:
            self.on_batch(n)
        return out


def inference_networks(networks: nn.ModuleDict, channels_last: bool = False,
                       autocast: bool | torch.dtype = False, pack: int = 1, fused: bool = False) -> nn.ModuleDict:
    """A copy of the segmenter (and generator) of ``networks`` for inference: eval mode, batch
    normalization folded into the convolutions (:func:`dnorm.inference.optimize.fold_batchnorm`),
    optionally in channels-last 3D, with ``pack`` > 1 windows side by side
    (:class:`dnorm.inference.optimize.PackedUNet3D`; use with ``WindowModel(..., pack=pack)``), and,
    for use under low-precision ``autocast`` (its dtype, or ``True`` for bfloat16), each U-Net's
    first convolution and head kept in float32 (:func:`dnorm.inference.optimize.float32_ends`) and
    the other convolutions' weights rounded ahead of time so that each kernel's sum of rounding
    errors is about zero (:func:`dnorm.inference.optimize.round_weights_keeping_sums`), and with
    ``fused`` (bfloat16 on CPU only, see :func:`use_fused_convolutions`) every other convolution
    run as one oneDNN call with a float32 bias and its activation fused
    (:func:`dnorm.inference.optimize.fuse_convolutions`).
    ``networks`` is left unchanged; the discriminator is dropped. Raises ``ValueError`` if ``pack``
    > 1 and a network cannot be packed (:func:`dnorm.inference.optimize.can_pack`)."""
    kept = nn.ModuleDict({name: networks[name] for name in ("segmenter", "generator") if name in networks})
    copy = fold_batchnorm(kept)
    if pack > 1:
        copy = nn.ModuleDict({name: PackedUNet3D(net, pack) for name, net in copy.items()})
    if channels_last:
        copy = copy.to(memory_format=torch.channels_last_3d)
    if autocast:  # True or a dtype
        float32_ends(copy)
        round_weights_keeping_sums(copy, torch.bfloat16 if autocast is True else autocast)
    if fused:
        fuse_convolutions(copy, channels_last)
    return copy


def use_fused_convolutions(device: torch.device, dtype: torch.dtype | None) -> bool:
    """Whether :func:`predict_volume` runs the convolutions as fused oneDNN calls with a float32
    bias (:class:`dnorm.inference.optimize.FusedConv3d`): on CPU under bfloat16 autocast, where this
    PyTorch build has the operator (:func:`dnorm.inference.optimize.fused_convolution_available`).
    Keeping the bias float32 halved the brain voxels whose label differs from a float32 run
    (README "Inference speed"), and fusing the activation saves a pass over each tensor."""
    return device.type == "cpu" and dtype == torch.bfloat16 and fused_convolution_available()


def default_pack(networks: nn.ModuleDict, device: torch.device, dtype: torch.dtype | None) -> int:
    """Windows per packed row for :func:`predict_volume`: 2 on CPU under low-precision autocast when
    the networks are U-Nets that can be packed, else 1. Packing made the default study's G + S 1.3×
    faster in bfloat16 on one CPU core and did not help in float32; on CUDA, cuDNN picks its own
    kernels and grouped convolutions are not faster there, so CUDA does not pack."""
    if device.type != "cpu" or dtype is None:
        return 1
    return 2 if all(can_pack(networks[k]) for k in ("segmenter", "generator") if k in networks) else 1


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
    mask: np.ndarray | str | None = "brain",
    batch_size: int = 16,
    device: str | torch.device | None = None,
    autocast_dtype: torch.dtype | None = None,
    progress: bool = False,
    precision: str = "auto",
    channels_last: str | bool = "auto",
    fused: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Segment (and normalize) a preprocessed volume with a trained model.

    Args:
        volume: ``C×X×Y×Z`` preprocessed image (skull-stripped, intensities scaled to [0, 1], on
            the model's voxel spacing), channels in the order of the card's modalities.
        networks, card: as returned by :func:`load_model`. The networks must live on ``device``
            (``None``: wherever their parameters are). They are not modified: the windows run
            through an inference copy (:func:`inference_networks`: batch normalization folded into
            the convolutions, which changes float32 outputs by rounding only).
        stride: window step; the window edge is the card's ``training.patch_size``.
        mask: ``X×Y×Z`` brain mask, ``"brain"`` (the default: input channel 0 > 0, the preprocessed
            volumes being skull-stripped) or ``None`` (every window). Windows holding no mask voxel
            are skipped: mask voxels get exactly the result of evaluating every window, and voxels
            no evaluated window covers (far outside the brain) get all-zero outputs.
        batch_size: windows per network call, passed to :func:`dnorm.inference.patch_average`.
        device: where the windows run; ``None``: where the networks' parameters are.
        autocast_dtype: an explicit autocast dtype (e.g. ``torch.float16`` on CUDA); overrides
            ``precision`` when given.
        progress: show a tqdm bar over the windows.
        precision: ``"auto"`` (bfloat16 autocast where the hardware has it: CUDA with bf16, CPUs
            with AVX512-BF16 or AMX; float32 elsewhere), ``"float32"`` or ``"bfloat16"``, as
            ``training.precision`` (:func:`dnorm.training.device.autocast_dtype`). In low
            precision each U-Net's first convolution and head stay float32, and on CPU two windows
            share each grouped convolution (:func:`default_pack`), the other convolutions keep
            their bias in float32 (``fused``) and get weights rounded so that each kernel's summed
            rounding error is about zero. Accumulation and the softmax are float32 in every case.
            With both, the default study's 56 test volumes give float32's label on 99.915 % of
            brain voxels or more (README "Inference speed"); pass ``"float32"`` where even that
            matters more than time.
        channels_last: ``"auto"`` (channels-last 3D on CPU, default layout on CUDA, as training),
            ``True`` or ``False``.
        fused: on CPU in bfloat16, run the convolutions as fused oneDNN calls with a float32 bias
            (:func:`use_fused_convolutions`; ignored elsewhere). ``False``: plain autocast
            convolutions, bias rounded to bfloat16 (the behaviour before this option).

    Returns:
        ``(probabilities, normalized)``: ``4×X×Y×Z`` float32 class probabilities (BG, CSF, GM, WM)
        averaged over the windows covering each voxel (they sum to 1 on every covered voxel), and
        the ``C×X×Y×Z`` float32 normalized image G(x) averaged likewise, or ``None`` for methods
        without a generator (single-dataset U-Net, Standardization).

    Raises:
        ValueError: if ``volume`` is not ``C×X×Y×Z`` with ``C`` the card's number of modalities,
            holds values outside [0, 1] or NaN, or on bad ``stride``/``mask``/``batch_size``/
            ``precision``/``channels_last``/``fused``.
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
    if isinstance(mask, str):
        if mask != "brain":
            raise ValueError(f"mask must be an X×Y×Z array, 'brain' or None, got {mask!r}")
        mask = volume[0] > 0  # before standardization, which leaves no zero-valued marker of the brain
    if not (channels_last == "auto" or isinstance(channels_last, bool)):
        raise ValueError(f"channels_last must be 'auto', True or False, got {channels_last!r}")
    if not isinstance(fused, bool):
        raise ValueError(f"fused must be True or False, got {fused!r}")
    device = _model_device(networks) if device is None else torch.device(device)
    if autocast_dtype is None:
        autocast_dtype = device_policy.autocast_dtype(device, precision)
    elif precision not in device_policy.PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of {device_policy.PRECISIONS}")
    channels_last = device_policy.use_channels_last(device, channels_last)
    if experiment_of(card).standardize:
        volume = standardize_volume(volume)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=count_windows(volume.shape[1:], patch_size, stride, mask), unit="window",
                   desc="patches", leave=False)
    pack = default_pack(networks, device, autocast_dtype)
    inference_copy = inference_networks(networks, channels_last, autocast=autocast_dtype or False, pack=pack,
                                        fused=fused and use_fused_convolutions(device, autocast_dtype))
    model = WindowModel(inference_copy, channels_last=channels_last, pack=pack,
                        on_batch=bar.update if bar is not None else None)
    try:
        output = patch_average(volume, model, patch_size=patch_size, stride=stride, mask=mask,
                               batch_size=batch_size, device=device, autocast_dtype=autocast_dtype)
    finally:
        if bar is not None:
            bar.close()
    if model.generator is None:
        return output, None
    channels = volume.shape[0]
    return output[channels : channels + N_CLASSES], output[:channels]
