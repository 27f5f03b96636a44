"""Whole-volume inference time of dnorm's default path against MONAI's `sliding_window_inference`
(run on demand; needs the `bench` extra: `pip install -e '.[bench]'`).

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184 \\
        .venv/bin/python benchmarks/bench_inference.py [--model PATH] [--volume PATH] [--repeats 3]

Model: `--model`, else the first `results/default/models/ours_dual/*/model.pt`, else G + S freshly
initialised at the default config's widths (untrained: the agreement columns then mean little).
Volume: `--volume` (a preprocessed NIfTI on the model's grid), else the first test subject of
`results/default/preprocessed/manifest.csv`, else a synthetic brain-like volume of the same size.

Per stride, three ways to predict the same volume with the same model and 32³ windows, each giving
softmax(S(G(x))) averaged over the windows covering each voxel:

- MONAI float32: `sliding_window_inference(x, (32,)*3, batch, WindowModel(networks),
  overlap=1 - stride/32, mode="constant")` with the networks as trained (float32, default layout),
  every window evaluated: the reference;
- dnorm float32: `predict_volume(..., precision="float32")`;
- dnorm default: `predict_volume(...)` with its defaults (bfloat16 autocast where the CPU has it,
  channels-last 3D, batch norm folded, windows without brain skipped).

Window placement: for axes of at least 32 voxels MONAI and dnorm put the windows at 0, s, 2s, …
plus one ending at the volume's end (MONAI moves its last window back, dnorm adds one), the same
windows whenever `int(32·(1 - overlap))` equals the stride (8 and 16 here); on axes shorter than a
window MONAI pads both sides and dnorm pads the end, so results there differ. The columns
"max |Δp|" and "argmax agree" compare each run's class probabilities with MONAI float32's, over
the brain (input channel 0 > 0). Variants run round-robin and each one's fastest round is reported
(on a shared machine other jobs only ever add time, and one whole-volume run lasts long enough for a
burst of them to hit a single variant); ratios are MONAI float32's time over each variant's, same
stride.
"""

from __future__ import annotations

import argparse
import csv
import glob
import platform
import time
from pathlib import Path

import numpy as np
import torch

from dnorm.inference.predict import WindowModel, count_windows, default_pack, load_model, predict_volume
from dnorm.training.device import autocast_dtype, use_channels_last
from dnorm.training.networks import N_CLASSES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = "results/default/models/ours_dual/*/model.pt"  # relative to the repository root
DEFAULT_MANIFEST = "results/default/preprocessed/manifest.csv"
DEFAULT_CONFIG = "config/config.yaml"
SHAPE = (92, 111, 94)  # the default study's preprocessed grid (2 mm)


def fresh_model(config_path: str | Path = ROOT / DEFAULT_CONFIG, experiment_name: str = "ours_dual"):
    """``(networks, card)``: an untrained model of the default config (G + S widths)."""
    from dnorm.config import load_config
    from dnorm.training.experiment import experiment_from_config
    from dnorm.training.networks import build_networks

    config = load_config(config_path)
    experiment = experiment_from_config(experiment_name, config)
    torch.manual_seed(0)
    networks = build_networks(experiment, config["training"]).eval()
    return networks, {"experiment": experiment.to_dict(), "training": config["training"]}


def synthetic_volume(channels: int, shape=SHAPE, seed: int = 0) -> np.ndarray:
    """``C×X×Y×Z`` in [0, 1]: an ellipsoidal "brain" (CSF rim and ventricles, GM shell, WM core,
    smooth noise) on a zero background, like a preprocessed volume."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1.15, 1.15, n) for n in shape], indexing="ij"))
    radius = np.sqrt((grid**2).sum(axis=0))
    ventricles = (grid[0] / 0.15) ** 2 + (grid[1] / 0.35) ** 2 + (grid[2] / 0.25) ** 2 < 1
    tissue = np.select([radius > 1.0, radius > 0.95, radius > 0.8, ventricles], [0.0, 0.25, 0.55, 0.25], 0.8)
    noise = torch.nn.functional.avg_pool3d(torch.from_numpy(rng.standard_normal((1, *shape), np.float32)),
                                           5, stride=1, padding=2)[0].numpy()
    image = np.clip(tissue * (1 + 0.5 * noise) + 0.02 * rng.standard_normal(shape), 0.01, 1.0) * (radius <= 1.0)
    return np.repeat(image[None].astype(np.float32), channels, axis=0)


def load_inputs(model_path: str | None, volume_path: str | None):
    """``(networks, card, volume, model description, volume description)``."""
    if model_path is None:
        found = sorted(glob.glob(str(ROOT / DEFAULT_MODELS)))
        model_path = found[0] if found else None
    if model_path is not None:
        networks, card = load_model(model_path)
        model_name = str(Path(model_path).resolve().relative_to(ROOT, walk_up=True))
    else:
        networks, card = fresh_model()
        model_name = "untrained ours_dual at the default config's widths (no trained model found)"
    modalities = list(card["experiment"]["modalities"])

    from dnorm.io import load_volume

    if volume_path is not None:
        image, _ = load_volume(volume_path)
        return networks, card, image[None] if image.ndim == 3 else np.moveaxis(image, -1, 0), model_name, volume_path
    manifest = ROOT / DEFAULT_MANIFEST
    if manifest.is_file():
        with open(manifest, newline="") as handle:
            rows = [row for row in csv.DictReader(handle)
                    if row["split"] == "test" and all(row.get(m) for m in modalities)]
        if rows:
            row = rows[0]
            volume = np.stack([load_volume(manifest.parent / row[m])[0] for m in modalities])
            return networks, card, volume, model_name, f"{row['dataset']}/{row['subject']} ({DEFAULT_MANIFEST})"
    return networks, card, synthetic_volume(len(modalities)), model_name, "synthetic brain-like volume"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help=f"model.pt (default: {DEFAULT_MODELS}, else an untrained one)")
    parser.add_argument("--volume", help="preprocessed NIfTI (default: the first test subject, else synthetic)")
    parser.add_argument("--strides", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--batch-size", type=int, default=16, help="windows per call, MONAI and dnorm (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds, fastest reported (default 3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    from monai.inferers import sliding_window_inference  # the `bench` extra
    import monai

    if args.threads:
        torch.set_num_threads(args.threads)
    networks, card, volume, model_name, volume_name = load_inputs(args.model, args.volume)
    patch = int(card["training"]["patch_size"])
    channels = volume.shape[0]
    brain = volume[0] > 0
    device = torch.device("cpu")
    default_dtype = autocast_dtype(device, "auto")
    print(f"torch {torch.__version__}, MONAI {monai.__version__}, {platform.processor() or platform.machine()}, "
          f"threads {torch.get_num_threads()}, batch {args.batch_size}, repeats {args.repeats}")
    print(f"model: {model_name}")
    print(f"volume: {volume_name}, {'×'.join(map(str, volume.shape[1:]))}, brain {brain.mean():.0%} of voxels")
    print(f"dnorm default: precision auto -> {default_dtype or torch.float32} (first conv and head float32), "
          f"channels_last {use_channels_last(device, 'auto')}, batch norm folded, "
          f"{default_pack(networks, device, default_dtype)} window(s) per grouped conv, brain mask")

    x = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None]
    reference_model = WindowModel(networks).eval()

    def monai_run(stride: int) -> np.ndarray:
        with torch.inference_mode():
            out = sliding_window_inference(x, (patch,) * 3, args.batch_size, reference_model,
                                           overlap=1 - stride / patch, mode="constant")
        return out[0, channels : channels + N_CLASSES].numpy()

    def dnorm_run(stride: int, **options) -> np.ndarray:
        return predict_volume(volume, networks, card, stride=stride, batch_size=args.batch_size, **options)[0]

    variants = {"MONAI float32": monai_run,
                "dnorm float32": lambda s: dnorm_run(s, precision="float32"),
                "dnorm default": dnorm_run}
    print(f"{'stride':>6} {'variant':<15}{'windows':>8}{'s/volume':>10}{'vs MONAI':>10}"
          f"{'max |Δp|':>10}{'argmax agree':>14}   (fastest of {args.repeats}; Δ and agreement on brain voxels)")
    for stride in args.strides:
        dnorm_windows = count_windows(volume.shape[1:], patch, stride, brain)
        windows = {"MONAI float32": count_windows(volume.shape[1:], patch, stride),
                   "dnorm float32": dnorm_windows, "dnorm default": dnorm_windows}
        outputs = {name: run(stride) for name, run in variants.items()}  # warm-up, and the results compared
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, run in variants.items():
                began = time.perf_counter()
                run(stride)
                times[name].append(time.perf_counter() - began)
        reference = outputs["MONAI float32"]
        reference_labels = reference.argmax(axis=0)[brain]
        base = min(times["MONAI float32"])
        for name in variants:
            seconds = min(times[name])
            delta = np.abs(outputs[name] - reference)[:, brain].max()
            agree = (outputs[name].argmax(axis=0)[brain] == reference_labels).mean()
            print(f"{stride:>6} {name:<15}{windows[name]:>8}{seconds:>10.2f}{base / seconds:>9.2f}x"
                  f"{delta:>10.2e}{agree:>13.3%}")


if __name__ == "__main__":
    main()
