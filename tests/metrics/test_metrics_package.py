"""The package surface: exported names, and a light import (no torch)."""

import subprocess
import sys

import dnorm.metrics

PUBLIC = {
    "dice", "mhd", "hd95", "average_surface_distance", "surface_metrics", "jsd",
    "intensity_histogram", "pearson_bias", "pearson_bias_slice", "confusion_matrix",
    "discriminator_accuracy", "confusion_accuracy", "correct_cells", "discriminator_scores", "generated_probability",
}


def test_exports():
    assert set(dnorm.metrics.__all__) == PUBLIC
    for name in PUBLIC:
        assert callable(getattr(dnorm.metrics, name))


def test_import_does_not_load_torch():
    code = "import sys, dnorm.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
