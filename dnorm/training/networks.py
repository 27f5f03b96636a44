"""Build G, S and D for an experiment from the ``training`` config section."""

from __future__ import annotations

import torch
from torch import nn

from dnorm.models import Discriminator3D, build_generator, build_segmenter
from dnorm.training.experiment import Experiment

N_CLASSES = 4


def unet_options(section: dict) -> dict:
    return {k: section[k] for k in ("width", "depth", "max_width", "upsampling", "activation") if k in section}


def build_networks(experiment: Experiment, training: dict) -> nn.ModuleDict:
    """``segmenter`` always; ``generator`` for Pre-processor and Ours (its output 0 wherever its
    input is, with ``training["zero_background"]``; models trained before that key existed lack
    it and keep the plain sigmoid); ``discriminator`` for Ours with lambda > 0 (K + 1 classes: the
    experiment's datasets plus "generated")."""
    channels = len(experiment.modalities)
    networks = nn.ModuleDict({"segmenter": build_segmenter(channels, N_CLASSES, **unet_options(training["segmenter"]))})
    if experiment.uses_generator:
        networks["generator"] = build_generator(channels, **unet_options(training["generator"]),
                                                zero_background=bool(training.get("zero_background", False)))
    if experiment.uses_discriminator:
        d = training["discriminator"]
        networks["discriminator"] = Discriminator3D(channels, len(experiment.datasets), channels=tuple(d["channels"]),
                                                    patch_size=training["patch_size"], dropout=d["dropout"])
    return networks


def normalize(networks: nn.ModuleDict, image: torch.Tensor) -> torch.Tensor:
    """G(x) for methods with a generator, x itself otherwise (N×C×p×p×p)."""
    return networks["generator"](image) if "generator" in networks else image
