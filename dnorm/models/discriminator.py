"""Discriminator D: a 3D DCGAN classifier over K source datasets + 1 "generated" class.

Four blocks of (3×3×3 conv, stride 2, padding 1 → BatchNorm3d in blocks 2–4 → LeakyReLU 0.2 →
Dropout3d 0.25) with 16-32-64-128 channels take a 32³ patch down to 2³; a linear layer maps the
flattened 128·2³ = 1024 features to K + 1 logits. About 0.3 M parameters (paper section 2.1;
authors' code). Label convention: classes 0..K-1 are the source datasets, class K is "generated".
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class Discriminator3D(nn.Module):
    """N×C×P×P×P patches → N×(n_domains + 1) logits (softmax gives D_z in Eq. 2).

    Args:
        in_channels: image channels (1 for T1, 2 for T1 + T2).
        n_domains: K, the number of source datasets; the output has K + 1 classes.
        channels: channels of the stride-2 convolution blocks.
        patch_size: P, the cubic patch side; must be divisible by ``2**len(channels)``.
        dropout: Dropout3d probability after each block.
        negative_slope: LeakyReLU slope.
    """

    def __init__(
        self,
        in_channels: int,
        n_domains: int,
        channels: Sequence[int] = (16, 32, 64, 128),
        patch_size: int = 32,
        dropout: float = 0.25,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("n_domains", n_domains), ("patch_size", patch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Discriminator3D: {name} must be an integer >= 1, got {value!r}")
        channels = tuple(channels)
        if not channels or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in channels):
            raise ValueError(f"Discriminator3D: channels must be a non-empty sequence of integers >= 1, got {channels!r}")
        if patch_size % 2 ** len(channels):
            raise ValueError(
                f"Discriminator3D: patch_size {patch_size!r} must be divisible by 2**len(channels) = "
                f"{2 ** len(channels)}"
            )
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"Discriminator3D: dropout must be in [0, 1), got {dropout!r}")
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float)) or not 0 <= negative_slope < 1:
            raise ValueError(f"Discriminator3D: negative_slope must be in [0, 1), got {negative_slope!r}")

        self.in_channels = in_channels
        self.n_domains = n_domains
        self.patch_size = patch_size
        blocks: list[nn.Module] = []
        previous = in_channels
        for index, out in enumerate(channels):
            with_norm = index > 0
            layers: list[nn.Module] = [
                nn.Conv3d(previous, out, kernel_size=3, stride=2, padding=1, bias=not with_norm)
            ]
            if with_norm:
                layers.append(nn.BatchNorm3d(out))
            layers += [nn.LeakyReLU(float(negative_slope), inplace=True), nn.Dropout3d(float(dropout))]
            blocks.append(nn.Sequential(*layers))
            previous = out
        self.features = nn.Sequential(*blocks)
        final_side = patch_size // 2 ** len(channels)
        self.classifier = nn.Linear(previous * final_side**3, n_domains + 1)

    @property
    def generated_class(self) -> int:
        """Index of the "generated" class (K, 0-based)."""
        return self.n_domains

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """N×C×P×P×P → N×(K + 1) logits."""
        expected = (self.in_channels, self.patch_size, self.patch_size, self.patch_size)
        if x.dim() != 5 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"Discriminator3D: expected N×{'×'.join(map(str, expected))} input, got shape {tuple(x.shape)}"
            )
        return self.classifier(torch.flatten(self.features(x), start_dim=1))
