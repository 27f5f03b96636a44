"""Fig. 7: per-class intensity densities of each dataset, for inputs and normalized images, with the
generalized Jensen–Shannon divergence between the datasets in each panel."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import seaborn as sns  # noqa: E402

from dnorm.figures import _panels as panels  # noqa: E402
from dnorm.figures.intensity import CLASS_COLOURS, save_figure  # noqa: E402
from dnorm.metrics import intensity_histogram, jsd  # noqa: E402


def _check_samples(samples: dict, bins: int) -> dict[tuple[str, str, str], np.ndarray]:
    """Validated {(image_kind, dataset, class_name): 1D float samples}; also checks ``bins``."""
    if not isinstance(samples, dict):
        raise ValueError(f"samples must be a dict, got {type(samples).__name__}")
    panels.require_items(samples, "samples")
    intensity_histogram(np.zeros(1), bins=bins)  # raises ValueError on a bad bin count
    checked = {}
    for key, values in samples.items():
        if not (isinstance(key, tuple) and len(key) == 3 and all(isinstance(part, str) for part in key)):
            raise ValueError(f"samples keys must be (image_kind, dataset, class_name) strings, got {key!r}")
        if key[2] not in CLASS_COLOURS:
            raise ValueError(f"class_name must be one of {list(CLASS_COLOURS)}, got {key[2]!r} in {key!r}")
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1 or array.size == 0:
            raise ValueError(f"samples[{key!r}] must be a non-empty 1D array, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ValueError(f"samples[{key!r}] must be finite, found {int((~np.isfinite(array)).sum())} NaN/inf")
        checked[key] = array
    return checked


def plot_class_histograms(samples: dict[tuple[str, str, str], np.ndarray], path: str, bins: int = 100) -> dict:
    """Rows = image kinds (order of first appearance), columns = classes (CSF, GM, WM that occur);
    one density curve per dataset per panel, ``bins`` fixed bins on [0, 1] (values outside are
    clipped into the end bins). Each title gives the JSD (nats) between the datasets' histograms of
    that class and kind, also returned as ``jsd`` {(image_kind, class_name): float}.

    ``samples``: {(image_kind, dataset, class_name): 1D intensities}.
    """
    checked = _check_samples(samples, bins)
    kinds = list(dict.fromkeys(key[0] for key in checked))
    datasets = list(dict.fromkeys(key[1] for key in checked))
    classes = [name for name in CLASS_COLOURS if any(key[2] == name for key in checked)]
    colours = dict(zip(datasets, sns.color_palette("tab10", len(datasets))))
    centres = (np.arange(bins) + 0.5) / bins
    sns.set_theme(style="whitegrid", context="notebook")
    fig, axes = plt.subplots(len(kinds), len(classes), figsize=(4.2 * len(classes), 2.9 * len(kinds) + 0.5),
                             squeeze=False, sharex=True, layout="constrained")
    divergences = {}
    for row, kind in enumerate(kinds):
        for col, name in enumerate(classes):
            axis = axes[row, col]
            counts = {d: intensity_histogram(checked[kind, d, name], bins=bins)
                      for d in datasets if (kind, d, name) in checked}
            for dataset, count in counts.items():
                axis.plot(centres, count * bins / count.sum(), color=colours[dataset], label=dataset, linewidth=1.4)
            title = f"{kind}: {name}"
            if counts:
                divergences[kind, name] = jsd(np.stack(list(counts.values())))
                title += f" (JSD {divergences[kind, name]:.4f})"
            axis.set_title(title, fontsize=10)
            axis.set(xlim=(0, 1), xlabel="intensity" if row == len(kinds) - 1 else "",
                     ylabel="density" if col == 0 else "")
    handles = [plt.Line2D([], [], color=colours[d], linewidth=1.4, label=d) for d in datasets]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(datasets), 6), frameon=False)
    result = panels.png_result(fig, jsd=divergences)
    save_figure(fig, path)
    return result
