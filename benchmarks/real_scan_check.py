"""dnorm on a real whole-head T1-weighted scan it did not make: brain extraction and segmentation,
each against an independent reference.

    apt-get install -y mricron-data      # Colin27 ("ch2"), shipped with MRIcron
    OMP_NUM_THREADS=1 ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS=1 \\
        .venv/bin/python benchmarks/real_scan_check.py [--model PATH ...] [--out /tmp/real_scan_check]

Scan: ``/usr/share/mricron/templates/ch2.nii.gz`` of Debian's ``mricron-data``: Colin Holmes's
T1-weighted head, 1 mm, the average of 27 scans of that one subject (Holmes et al. 1998), with
skull, scalp and neck. It lies in MNI space, which flatters a template registration, so brain
extraction is also run on a copy whose header is moved (rotated 15° about x, 10° about z, shifted
20 mm): same voxels, another position in the world.

References, made without dnorm:

- brain mask: ``ch2bet.nii.gz`` of the same package (FSL BET's extraction of ch2, non-zero voxels);
- tissue classes: ANTs Atropos (``ants.atropos``, k-means initialisation, 3 classes, MRF 0.1)
  on ch2 inside the BET mask; its classes, in increasing T1 intensity, are CSF, GM, WM.

dnorm: ``extract_brain`` (template registration), then
:func:`dnorm.apply.apply_model` with each trained model (labels 0 BG, 1 CSF, 2 GM, 3 WM) on the
extracted brain with its mask: what ``dnorm segment MODEL ch2.nii.gz OUT --skull-strip``
does in one command (printed below). Agreement per class is Dice over the whole volume (mask
differences count) and inside both brain masks (tissue classification only).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dnorm.preprocess.skullstrip import extract_brain  # noqa: E402

SCAN = Path("/usr/share/mricron/templates/ch2.nii.gz")
BET = Path("/usr/share/mricron/templates/ch2bet.nii.gz")
CLASSES = ("CSF", "GM", "WM")
#: Models tried by default, first found of each: multi-dataset T1 models first.
PREFERRED = ("ours_multi", "standardization_multi", "preprocessor_multi", "unet_multi", "standardization_dual",
             "ours_dual", "preprocessor_dual")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return float(2.0 * np.logical_and(a, b).sum() / total) if total else float("nan")


def moved(image: nib.Nifti1Image) -> nib.Nifti1Image:
    """``image`` with its header moved in the world (rotation 15° about x, 10° about z, shift)."""
    def rotation(axis: int, degrees: float) -> np.ndarray:
        a, (i, j) = np.deg2rad(degrees), [k for k in range(3) if k != axis]
        matrix = np.eye(4)
        matrix[[i, i, j, j], [i, j, i, j]] = [np.cos(a), -np.sin(a), np.sin(a), np.cos(a)]
        return matrix
    shift = np.eye(4)
    shift[:3, 3] = (12.0, -20.0, 8.0)
    return nib.Nifti1Image(np.asanyarray(image.dataobj), shift @ rotation(2, 10) @ rotation(0, 15) @ image.affine)


def default_models(results: list[Path]) -> list[Path]:
    found = []
    for name in PREFERRED:
        for folder in results:
            paths = sorted(glob.glob(str(folder / "models" / name / "seed-*" / "model.pt")))
            if paths:
                found.append(Path(paths[0]))
                break
    return found


def atropos_classes(t1: nib.Nifti1Image, mask: np.ndarray) -> np.ndarray:
    """Atropos' 3-class segmentation (0 outside ``mask``, 1-3 by increasing intensity)."""
    import ants

    from dnorm.preprocess.skullstrip import to_ants

    image = to_ants(np.asarray(t1.get_fdata(), np.float32), t1.affine)
    region = image.new_image_like(mask.astype(np.float32))
    result = ants.atropos(a=image, x=region, i="kmeans[3]", m="[0.1,1x1x1]", c="[5,0]")
    return np.rint(result["segmentation"].numpy()).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scan", type=Path, default=SCAN)
    parser.add_argument("--bet", type=Path, default=BET, help="independent brain extraction of the scan")
    parser.add_argument("--model", type=Path, action="append",
                        help="trained model.pt (repeatable); default: the first found of each of "
                             f"{', '.join(PREFERRED)} under --results")
    parser.add_argument("--results", type=Path, action="append",
                        help="study results folder(s) searched for models (default: results/default)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/real_scan_check"))
    args = parser.parse_args()
    if not args.scan.is_file():
        raise SystemExit(f"{args.scan}: not found; install Debian's mricron-data (apt-get install -y mricron-data)")
    args.out.mkdir(parents=True, exist_ok=True)
    scan = nib.load(str(args.scan))
    bet = np.asarray(nib.load(str(args.bet)).dataobj) > 0
    print(f"scan {args.scan} {scan.shape} voxel {tuple(float(z) for z in scan.header.get_zooms()[:3])} mm")

    # 1. Brain extraction, against BET, as shipped (MNI position) and moved in the world.
    masks = {}
    for position, image in (("as shipped", scan), ("moved header", moved(scan))):
        start = time.perf_counter()
        brain, mask = extract_brain(image, source=args.scan)
        seconds = time.perf_counter() - start
        masks[position] = np.asarray(mask.dataobj) > 0
        print(f"brain mask ({position}): Dice vs BET {dice(masks[position], bet):.3f}, volume "
              f"{masks[position].sum() / 1000:.0f} ml (BET {bet.sum() / 1000:.0f} ml), {seconds:.1f} s")
        if position == "as shipped":
            brain_path, mask_path = args.out / "ch2_t1.nii.gz", args.out / "ch2_brainmask.nii.gz"
            nib.save(brain, str(brain_path))
            nib.save(mask, str(mask_path))
    mask = masks["as shipped"]

    # 2. Independent tissue classes: Atropos inside the BET mask.
    start = time.perf_counter()
    reference = atropos_classes(scan, bet)
    nib.save(nib.Nifti1Image(reference, scan.affine), str(args.out / "ch2_atropos.nii.gz"))
    fractions = [float((reference == c).sum() / bet.sum()) for c in (1, 2, 3)]
    print(f"Atropos (3 classes in the BET mask, {time.perf_counter() - start:.0f} s): CSF/GM/WM fractions "
          + "/".join(f"{f:.2f}" for f in fractions))

    # 3. dnorm's segmentation of the extracted brain with each model.
    from dnorm.apply import apply_model

    models = args.model or default_models(args.results or [ROOT / "results" / "default"])
    if not models:
        print("no trained model found: give --model PATH (e.g. results/default/models/ours_multi/seed-*/model.pt)")
        return
    both = mask & bet
    print(f"{'model':<24} {'where':<14} " + " ".join(f"{c:>5}" for c in CLASSES) + "   fractions CSF/GM/WM")
    for model in models:
        name = model.parent.parent.name
        out = args.out / name
        start = time.perf_counter()
        written = apply_model(model, brain_path, out, mask_path=mask_path, progress=False, device="cpu")
        seconds = time.perf_counter() - start
        labels = np.asarray(nib.load(str(written["labels"])).dataobj)
        own = [float((labels == c).sum() / max(int((labels > 0).sum()), 1)) for c in (1, 2, 3)]
        whole = [dice(labels == c, reference == c) for c in (1, 2, 3)]
        inside = [dice((labels == c) & both, (reference == c) & both) for c in (1, 2, 3)]
        print(f"{name:<24} {'whole volume':<14} " + " ".join(f"{d:5.3f}" for d in whole)
              + "   " + "/".join(f"{f:.2f}" for f in own) + f"   ({seconds:.0f} s)")
        print(f"{'':<24} {'in both masks':<14} " + " ".join(f"{d:5.3f}" for d in inside))
        print(f"{'':<24} reproduce: dnorm segment {model} {args.scan} {out} --skull-strip --device cpu")


if __name__ == "__main__":
    main()
