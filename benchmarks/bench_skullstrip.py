"""Brain extraction (`dnorm.preprocess.skullstrip.extract_brain`) on the embedded benchmark's raw,
whole-head images: Dice of the extracted brain mask against the label mask (labels > 0: CSF, GM,
WM, including the extra-cerebral CSF shell) and seconds per scan.

    OMP_NUM_THREADS=1 ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 \\
        .venv/bin/python benchmarks/bench_skullstrip.py [--raw results/default/raw] [--per-dataset 4] [--affine-only]

Scans: the first `--per-dataset` subjects of each dataset (iseg, mrbrains, abide) under `--raw`
(`<raw>/<dataset>/manifest.csv`, written by the workflow's `synthesize_dataset`). Without such a
folder they are synthesized first, from config/config.yaml's dataset entries (only the first
`--per-dataset` subjects), into a temporary folder. The time per scan is `extract_brain` alone (reading
the voxels, registration, warping the mask); loading the template (once per process, cached) is
timed separately.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dnorm.config import load_config  # noqa: E402
from dnorm.manifest import read_manifest  # noqa: E402
from dnorm.preprocess.skullstrip import extract_brain, template_images  # noqa: E402

DATASETS = ("iseg", "mrbrains", "abide")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))


def raw_manifests(raw: Path | None, per_dataset: int) -> dict[str, Path]:
    """Manifest per dataset: from ``raw`` when all three are there, else synthesized now."""
    if raw is not None and all((raw / d / "manifest.csv").is_file() for d in DATASETS):
        return {d: raw / d / "manifest.csv" for d in DATASETS}
    from dnorm.synth.benchmark import synthesize_dataset

    config = load_config(ROOT / "config" / "config.yaml")
    out = Path(tempfile.mkdtemp(prefix="bench_skullstrip_"))
    print(f"no raw data under {raw}; synthesizing {per_dataset} subjects per dataset into {out}", flush=True)
    manifests = {}
    for name in DATASETS:
        entry = copy.deepcopy(config["datasets"][name]) | {"subjects": per_dataset}
        manifests[name] = synthesize_dataset(name, entry, config["synth"], config["seed"], out / name)
    return manifests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--raw", type=Path, default=ROOT / "results" / "default" / "raw")
    parser.add_argument("--per-dataset", type=int, default=4)
    parser.add_argument("--affine-only", action="store_true", help="no SyN refinement")
    args = parser.parse_args()
    manifests = raw_manifests(args.raw, args.per_dataset)
    start = time.perf_counter()
    template_images()
    print(f"template load (once per process): {time.perf_counter() - start:.1f} s")
    print(f"ITK threads: {os.environ['ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS']}, "
          f"registration: {'Affine' if args.affine_only else 'Affine + SyN'}")
    print(f"{'scan':<16} {'grid':<14} {'Dice':>6} {'vol ratio':>9} {'seconds':>8}")
    rows = []
    for name, manifest in manifests.items():
        table = read_manifest(manifest).head(args.per_dataset)
        for _, row in table.iterrows():
            image = nib.load(row.t1)
            truth = np.asarray(nib.load(row.label).dataobj) > 0
            start = time.perf_counter()
            _, mask = extract_brain(image, deformable=not args.affine_only)
            seconds = time.perf_counter() - start
            found = np.asarray(mask.dataobj) > 0
            score = dice(found, truth)
            rows.append((name, score, seconds))
            grid = "x".join(str(s) for s in image.shape)
            print(f"{row.subject:<16} {grid:<14} {score:6.3f} {found.sum() / truth.sum():9.3f} {seconds:8.1f}",
                  flush=True)
    scores = np.array([r[1] for r in rows])
    times = np.array([r[2] for r in rows])
    for name in DATASETS:
        own = [r for r in rows if r[0] == name]
        print(f"{name:<9} Dice min {min(r[1] for r in own):.3f} mean {np.mean([r[1] for r in own]):.3f}, "
              f"{np.mean([r[2] for r in own]):.1f} s per scan")
    print(f"all {len(rows)} scans: Dice min {scores.min():.3f} mean {scores.mean():.3f}; "
          f"seconds per scan mean {times.mean():.1f} (min {times.min():.1f}, max {times.max():.1f})")


if __name__ == "__main__":
    main()
