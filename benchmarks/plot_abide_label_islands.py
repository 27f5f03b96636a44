"""Where the far voxels of the synthetic ABIDE-like reference labels were (issue 11).

Renders, for one subject, axial and coronal views of the preprocessed T1 with its reference labels
and every label voxel farther than ``--threshold-mm`` from the brain's main component ringed in
yellow (projected through the volume), and prints per class the largest distance of a reference
voxel from that class's main component and from the brain's.

Before the fix (labels of a run made with the old label noise) and, optionally, after it (the same
subject regenerated and preprocessed with the current code) as a second row. The committed figure
(a test subject of the default run's split) was made with::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/plot_abide_label_islands.py \\
        --before results/default/preprocessed/abide/abide_003 --regenerate \\
        --out benchmarks/figures/abide_label_islands.png

Each prefix names ``<prefix>_t1.nii[.gz]`` and ``<prefix>_label.nii[.gz]``. ``--regenerate``
synthesizes subjects 1..N of the ABIDE-like dataset with the current code and
``config/config.yaml`` into a scratch folder and preprocesses them (about 15 s per subject on
one core) for the "after" row; ``--after PREFIX`` uses existing files instead.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from dnorm.figures.label_islands import island_distances, plot_label_islands
from dnorm.io import load_labels, load_volume, spacing_of


def existing(prefix: str, suffix: str) -> str:
    for ending in (".nii", ".nii.gz"):
        path = Path(f"{prefix}_{suffix}{ending}")
        if path.exists():
            return str(path)
    raise FileNotFoundError(f"neither {prefix}_{suffix}.nii nor .nii.gz exists")


def load_row(prefix: str, title: str) -> dict:
    labels, affine = load_labels(existing(prefix, "label"))
    image, _ = load_volume(existing(prefix, "t1"))
    image = image / max(float(np.percentile(image[labels > 0], 99.5)), 1e-6)
    return dict(title=title, image=image, labels=labels, spacing=spacing_of(affine))


def regenerate(subject: str, out_dir: Path) -> str:
    """Synthesize the ABIDE-like dataset's subject ``subject`` (e.g. abide_001) alone with the
    current code and preprocess it; return its prefix."""
    from dnorm.config import load_config
    from dnorm.preprocess.pipeline import preprocess_dataset
    from dnorm.synth import benchmark

    config = load_config(Path(__file__).resolve().parents[1] / "config" / "config.yaml")
    dataset = dict(config["datasets"]["abide"])
    index = int(subject.rsplit("_", 1)[1])
    # Subjects are seeded by index, so synthesizing the first ``index`` gives this one unchanged;
    # keep only the last by synthesizing ``index`` subjects into a scratch folder.
    dataset["subjects"] = index
    manifest = benchmark.synthesize_dataset("abide", dataset, config["synth"], config["seed"], out_dir / "raw")
    preprocess_dataset(manifest, config["preprocess"]["spacing"], out_dir / "cropped")
    return str(out_dir / "cropped" / subject)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="prefix of the subject's files made with the old labels")
    parser.add_argument("--after", help="prefix of the same subject made with the current code")
    parser.add_argument("--regenerate", action="store_true", help="make the 'after' row with the current code")
    parser.add_argument("--threshold-mm", type=float, default=10.0)
    parser.add_argument("--out", default="benchmarks/figures/abide_label_islands.png")
    args = parser.parse_args()
    subject = Path(args.before).name
    rows = [load_row(args.before, f"{subject} before the fix")]
    with tempfile.TemporaryDirectory() as scratch:
        after = regenerate(subject, Path(scratch)) if args.regenerate and not args.after else args.after
        if after:
            rows.append(load_row(after, f"{subject} after the fix"))
        report = {}
        for row in rows:
            found = island_distances(row["labels"], row["spacing"])
            report[row["title"]] = {"brain_components": found["brain_components"]} | {
                name: {key: round(value, 1) if isinstance(value, float) else value for key, value in numbers.items()}
                for name, numbers in found["classes"].items()
            }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        result = plot_label_islands(rows, args.threshold_mm, args.out)
    print(json.dumps(report | {"figure": result}, indent=1))


if __name__ == "__main__":
    main()
