"""3D U-Net used for both the generator G and the segmenter S (paper section 2.1, Fig. 3).

Encoder: per level two 3×3×3 convolutions, each followed by batch normalization and an activation,
with 2× max-pooling between levels; level ``i`` has ``min(width·2^i, max_width)`` channels.
Decoder: 2× interpolation (trilinear or nearest, not transposed convolutions), concatenation with
the encoder skip of the same resolution, then two convolutions. Each decoder block outputs as many
channels as the skip it will be concatenated with next (the top block keeps ``width``), which for
the authors' configuration 64-128-256-512-512 gives about 40 M parameters. A final 1×1×1
convolution maps to ``out_channels``, followed by a sigmoid (G, intensities in [0, 1]) or nothing
(S, class logits; softmax is applied by the losses and at inference).
"""

from __future__ import annotations

import torch
from torch import nn

from dnorm.models.batchnorm import BatchNorm3d

UPSAMPLING_MODES = ("trilinear", "nearest")
ACTIVATIONS = ("leaky_relu", "relu")
FINALS = ("sigmoid", "none")
PADDING_MODES = ("zeros", "replicate", "reflect")


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters of ``module`` (works on modules built on the ``meta`` device)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _check_positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"UNet3D: {name} must be an integer >= {minimum}, got {value!r}")
    return value


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"UNet3D: {name} must be one of {choices}, got {value!r}")
    return value  # type: ignore[return-value]


class ConvBlock3D(nn.Sequential):
    """Two (3×3×3 conv, no bias → BatchNorm3d → activation): N×C_in×D×H×W → N×C_out×D×H×W."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        padding_mode: str = "zeros",
    ) -> None:
        layers: list[nn.Module] = []
        for c_in in (in_channels, out_channels):
            layers += [
                nn.Conv3d(c_in, out_channels, kernel_size=3, padding=1, bias=False, padding_mode=padding_mode),
                BatchNorm3d(out_channels),
                nn.LeakyReLU(negative_slope, inplace=True) if activation == "leaky_relu" else nn.ReLU(inplace=True),
            ]
        super().__init__(*layers)


class UNet3D(nn.Module):
    """3D U-Net mapping N×C_in×D×H×W to N×C_out×D×H×W.

    Args:
        in_channels: input channels (1 for T1 only, 2 for T1 + T2).
        out_channels: output channels (G: same as ``in_channels``; S: number of classes, 4).
        width: channels of the first level.
        depth: number of resolution levels (``depth - 1`` poolings); D, H and W of the input must
            be divisible by ``2**(depth - 1)``.
        max_width: cap on the channels of any level.
        upsampling: ``"trilinear"`` (align_corners=False) or ``"nearest"``.
        activation: ``"leaky_relu"`` (authors' code) or ``"relu"`` (paper text).
        negative_slope: LeakyReLU slope.
        final: ``"sigmoid"`` (generator, outputs in [0, 1]) or ``"none"`` (segmenter logits).
        padding_mode: padding of the 3×3×3 convolutions (``"zeros"``, ``"replicate"``, ``"reflect"``).
        zero_background: multiply the output by ``input != 0`` (element-wise; needs
            ``out_channels == in_channels``): a generator then leaves the skull-stripped background
            exactly 0, as the raw images and the segmentation-only baselines have it, instead of a
            sigmoid's small positive values (a blurred brain edge for S, a "generated" cue for D).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        width: int = 64,
        depth: int = 5,
        max_width: int = 512,
        upsampling: str = "trilinear",
        activation: str = "leaky_relu",
        negative_slope: float = 0.2,
        final: str = "sigmoid",
        padding_mode: str = "zeros",
        zero_background: bool = False,
    ) -> None:
        super().__init__()
        _check_positive_int("in_channels", in_channels)
        _check_positive_int("out_channels", out_channels)
        _check_positive_int("width", width)
        _check_positive_int("depth", depth)
        _check_positive_int("max_width", max_width)
        if max_width < width:
            raise ValueError(f"UNet3D: max_width ({max_width!r}) must be >= width ({width!r})")
        _check_choice("upsampling", upsampling, UPSAMPLING_MODES)
        _check_choice("activation", activation, ACTIVATIONS)
        _check_choice("final", final, FINALS)
        _check_choice("padding_mode", padding_mode, PADDING_MODES)
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or not 0 <= negative_slope < 1:
            raise ValueError(f"UNet3D: negative_slope must be a number in [0, 1), got {negative_slope!r}")

        if zero_background and out_channels != in_channels:
            raise ValueError(f"UNet3D: zero_background needs out_channels == in_channels, got {out_channels} "
                             f"and {in_channels}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.zero_background = bool(zero_background)
        self.depth = depth
        self.channels = tuple(min(width * 2**level, max_width) for level in range(depth))

        block_kwargs = dict(activation=activation, negative_slope=float(negative_slope), padding_mode=padding_mode)
        self.encoders = nn.ModuleList()
        previous = in_channels
        for channels in self.channels:
            self.encoders.append(ConvBlock3D(previous, channels, **block_kwargs))
            previous = channels
        self.pool = nn.MaxPool3d(kernel_size=2)
        if upsampling == "trilinear":
            self.upsample = nn.Upsample(scale_factor=2, mode="trilinear", align_corners=False)
        else:
            self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        # Decoder blocks from the deepest skip (level depth-2) up to level 0.
        self.decoders = nn.ModuleList()
        for level in range(depth - 2, -1, -1):
            skip = self.channels[level]
            out = self.channels[level - 1] if level > 0 else self.channels[0]
            self.decoders.append(ConvBlock3D(previous + skip, out, **block_kwargs))
            previous = out
        self.head = nn.Conv3d(previous, out_channels, kernel_size=1)
        self.final = nn.Sigmoid() if final == "sigmoid" else nn.Identity()

    @property
    def divisor(self) -> int:
        """Spatial sizes of the input must be multiples of this (``2**(depth - 1)``)."""
        return 2 ** (self.depth - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N×C_in×D×H×W → N×C_out×D×H×W (sigmoid outputs for G, logits for S)."""
        if x.dim() != 5:
            raise ValueError(f"UNet3D: expected an N×C×D×H×W tensor, got shape {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"UNet3D: expected {self.in_channels} input channels, got shape {tuple(x.shape)}"
            )
        if any(size % self.divisor for size in x.shape[2:]):
            raise ValueError(
                f"UNet3D: spatial size {tuple(x.shape[2:])} must be divisible by 2**(depth-1) = "
                f"{self.divisor} (depth={self.depth})"
            )
        image = x
        skips: list[torch.Tensor] = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                x = in_input_dtype(self.pool, x)
            x = encoder(x)
            skips.append(x)
        x = skips.pop()
        for decoder in self.decoders:
            x = decoder(torch.cat([skips.pop(), self.upsample(x)], dim=1))
        return keep_background(self.final(self.head(x)), image, self.zero_background)


def in_input_dtype(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``module(x)`` with autocast disabled, in ``x``'s dtype: for max pooling, which CPU autocast
    runs in float32 (a copy of the whole tensor) although taking a maximum is exact in any dtype."""
    with torch.autocast(x.device.type, enabled=False):
        return module(x)


def keep_background(output: torch.Tensor, image: torch.Tensor, zero_background: bool) -> torch.Tensor:
    """``output`` with the voxels where ``image`` is 0 set to 0 (when ``zero_background``)."""
    return output * (image != 0).to(output.dtype) if zero_background else output


def build_generator(
    in_channels: int = 1,
    width: int = 64,
    depth: int = 5,
    max_width: int = 512,
    upsampling: str = "trilinear",
    activation: str = "leaky_relu",
    **kwargs,
) -> UNet3D:
    """Generator G: N×C×D×H×W in [0, 1] → N×C×D×H×W normalized image in [0, 1] (sigmoid)."""
    return UNet3D(
        in_channels, in_channels, width=width, depth=depth, max_width=max_width,
        upsampling=upsampling, activation=activation, final="sigmoid", **kwargs,
    )


def build_segmenter(
    in_channels: int = 1,
    n_classes: int = 4,
    width: int = 64,
    depth: int = 5,
    max_width: int = 512,
    upsampling: str = "trilinear",
    activation: str = "leaky_relu",
    **kwargs,
) -> UNet3D:
    """Segmenter S: N×C×D×H×W → N×n_classes×D×H×W class logits (BG, CSF, GM, WM)."""
    return UNet3D(
        in_channels, n_classes, width=width, depth=depth, max_width=max_width,
        upsampling=upsampling, activation=activation, final="none", **kwargs,
    )
