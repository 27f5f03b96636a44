"""Predict a whole volume inside its brain's bounding box.

Windows are laid out from the corner of the brain's bounding box (padded, centred, to at least
one window where the box is smaller), not from the corner of the field of view. So the same brain
gives the same result whatever empty margin surrounds it: ``dnorm normalize`` on a preprocessed
test image and the workflow's evaluation of that subject run exactly the same windows.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from dnorm.inference.predict import predict_volume
from dnorm.preprocess.geometry import bounding_box, centred_padding


def predict_in_brain_box(volume: np.ndarray, brain: np.ndarray, networks: nn.ModuleDict, card: dict,
                         **options) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`dnorm.inference.predict.predict_volume` on the brain's bounding box of ``volume``.

    Args:
        volume: ``C×X×Y×Z`` preprocessed volume (see ``predict_volume``).
        brain: ``X×Y×Z`` boolean brain mask (not empty); windows holding none of it are skipped.
        options: ``stride``, ``batch_size``, ``device``, ``progress``… passed to ``predict_volume``.

    Returns:
        ``(probabilities, normalized)`` on the full ``X×Y×Z`` grid: ``4×X×Y×Z`` class
        probabilities (all 0 where no evaluated window reaches) and ``C×X×Y×Z`` G outputs (0 outside
        the box) or ``None`` for methods without a generator.

    Raises:
        ValueError: for an empty ``brain`` or a mask whose shape is not ``volume.shape[1:]``.
    """
    brain = np.asarray(brain, dtype=bool)
    if brain.shape != volume.shape[1:]:
        raise ValueError(f"brain mask shape {brain.shape} differs from the volume's {volume.shape[1:]}")
    box = bounding_box(brain)
    cropped_shape = [s.stop - s.start for s in box]
    patch_size = int(card["training"]["patch_size"])
    padding = centred_padding(cropped_shape, [max(n, patch_size) for n in cropped_shape])
    cropped = np.pad(np.asarray(volume)[(slice(None), *box)], [(0, 0), *padding])
    probabilities, normalized = predict_volume(cropped, networks, card, mask=np.pad(brain[box], padding), **options)
    inner = (slice(None), *(slice(before, before + n) for (before, _), n in zip(padding, cropped_shape)))
    outputs = []
    for cropped_output in (probabilities, normalized):
        if cropped_output is None:
            outputs.append(None)
            continue
        full = np.zeros((len(cropped_output), *brain.shape), dtype=np.float32)
        full[(slice(None), *box)] = cropped_output[inner]
        outputs.append(full)
    return outputs[0], outputs[1]
