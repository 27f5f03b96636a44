"""Evaluation metrics of the study (SPEC section 5), NumPy arrays in, plain Python/NumPy out.

Labels: 0 background, 1 CSF, 2 GM, 3 WM. Importing this package loads only NumPy and SciPy.

- :mod:`~dnorm.metrics.overlap`: Dice per class.
- :mod:`~dnorm.metrics.surface`: modified Hausdorff distance (Eq. 5), HD95, average surface
  distance, in mm.
- :mod:`~dnorm.metrics.distribution`: intensity histograms and generalized Jensen–Shannon
  divergence (nats).
- :mod:`~dnorm.metrics.bias`: Pearson correlation between intensity and position.
- :mod:`~dnorm.metrics.discriminator`: discriminator confusion matrix, the paper's
  accuracy over real and generated patches, P(generated).
"""

from dnorm.metrics.bias import pearson_bias, pearson_bias_slice
from dnorm.metrics.discriminator import (confusion_accuracy, confusion_matrix, correct_cells, discriminator_accuracy,
                                         discriminator_scores, generated_probability)
from dnorm.metrics.distribution import intensity_histogram, jsd
from dnorm.metrics.overlap import dice
from dnorm.metrics.surface import average_surface_distance, hd95, mhd, surface_metrics

__all__ = [
    "average_surface_distance",
    "confusion_accuracy",
    "confusion_matrix",
    "correct_cells",
    "dice",
    "discriminator_accuracy",
    "discriminator_scores",
    "generated_probability",
    "hd95",
    "intensity_histogram",
    "jsd",
    "mhd",
    "pearson_bias",
    "pearson_bias_slice",
    "surface_metrics",
]
