"""Whole-volume inference: dnorm's default path against MONAI's `sliding_window_inference` (speed),
and its labels against float32's on every test volume of a finished run (agreement). Run on
demand; the speed part needs the `bench` extra (`pip install -c constraints.txt -e '.[bench]'`).

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184 \\
        .venv/bin/python benchmarks/bench_inference.py [--run results/default] [--repeats 3]

**Agreement** (`--run RUN`, default `results/default` when it has models; `--skip-agreement` to
leave it out): for EVERY `RUN/models/<experiment>/seed-<seed>/model.pt` and every test subject the
workflow evaluates it on (`dnorm.evaluation.plan`: the config's `test_datasets`, else the
experiment's datasets; subjects of the split `test` in `RUN/preprocessed/manifest.csv`), predicts
the subject as the evaluation does (`predict_in_brain_box`) at each stride with `precision="float32"`
(the reference), with the default path, and with the default path before its float32-bias fix
(`fused=False`: bfloat16 biases), and prints the share of brain voxels (input channel 0 > 0) whose
argmax equals float32's, per volume, then min and mean over volumes per model and overall, and
how much the default path changes the volume's mean tissue Dice (CSF, GM, WM) against its ground
truth from float32's (the evaluation's labels: argmax in the brain, background outside).

**Speed** (`--skip-speed` to leave it out): one model (`--model`, else the run's first
`ours_dual` model, else G + S freshly initialised at the default config's widths) on one volume
(`--volume`, a preprocessed NIfTI on the model's grid, else the model's first test subject, else a
synthetic brain-like volume of the default grid's size). Per stride, three ways to predict the same
volume with the same model and 32³ windows, each giving softmax(S(G(x))) averaged over the windows
covering each voxel:

- MONAI float32: `sliding_window_inference(x, (32,)*3, batch, WindowModel(networks),
  overlap=1 - stride/32, mode="constant")` with the networks as trained (float32, default layout),
  every window evaluated: the reference;
- dnorm float32: `predict_volume(..., precision="float32")`;
- dnorm default: `predict_volume(...)` with its defaults (bfloat16 autocast where the CPU has it,
  channels-last 3D, batch norm folded, fused convolutions with float32 biases, windows without
  brain skipped).

Window placement: for axes of at least 32 voxels MONAI and dnorm put the windows at 0, s, 2s, …
plus one ending at the volume's end (MONAI moves its last window back, dnorm adds one), the same
windows whenever `int(32·(1 - overlap))` equals the stride (8 and 16 here); on axes shorter than a
window MONAI pads both sides and dnorm pads the end, so results there differ. The columns
"max |Δp|" and "argmax agree" compare each run's class probabilities with MONAI float32's, over
the brain. Variants run round-robin and each one's fastest round is reported (on a shared machine
other jobs only ever add time, and one whole-volume run lasts long enough for a burst of them to
hit a single variant); ratios are MONAI float32's time over each variant's, same stride.

`--quick`: a tiny untrained model (16³ windows, width 2) on a small synthetic volume, one round,
stride 8; with `--run` the agreement loop too. Seconds, for tests; not a measurement.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from dnorm.inference.predict import (WindowModel, count_windows, default_pack, experiment_of, load_model,
                                     predict_volume, use_fused_convolutions)
from dnorm.training.device import autocast_dtype, use_channels_last
from dnorm.training.networks import N_CLASSES

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RUN = "results/default"  # relative to the repository root
DEFAULT_CONFIG = "config/config.yaml"
SHAPE = (92, 111, 94)  # the default study's preprocessed grid (2 mm)
QUICK_SHAPE = (24, 26, 22)
#: --quick: the networks of an untrained tiny model
QUICK_TRAINING = {
    "patch_size": 16,
    "generator": {"width": 2, "depth": 2, "max_width": 8},
    "segmenter": {"width": 2, "depth": 2, "max_width": 8},
    "discriminator": {"channels": [4, 8], "dropout": 0.25},
}
AGREEMENT_TARGET = 0.999


def shown(path: str | os.PathLike) -> str:
    """``path`` relative to the repository root when that is shorter (works on Python 3.11)."""
    absolute = os.path.abspath(path)
    relative = os.path.relpath(absolute, ROOT)
    return relative if len(relative) < len(absolute) else absolute


def fresh_model(config_path: str | Path = ROOT / DEFAULT_CONFIG, experiment_name: str = "ours_dual",
                training: dict | None = None):
    """``(networks, card)``: an untrained model of the config (G + S widths), or of ``training``
    merged over the config's training section."""
    from dnorm.config import load_config
    from dnorm.training.experiment import experiment_from_config
    from dnorm.training.networks import build_networks

    config = load_config(config_path)
    experiment = experiment_from_config(experiment_name, config)
    settings = config["training"] | (training or {})
    torch.manual_seed(0)
    networks = build_networks(experiment, settings).eval()
    return networks, {"experiment": experiment.to_dict(), "training": settings}


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


# --- a finished run ----------------------------------------------------------------------------------


def run_models(run: Path) -> list[Path]:
    """Every trained model of ``run``: ``models/<experiment>/seed-<seed>/model.pt``, sorted."""
    return [Path(p) for p in sorted(glob.glob(str(run / "models" / "*" / "seed-*" / "model.pt")))]


def model_subjects(card: dict, manifest, config: dict | None) -> list[tuple[str, str]]:
    """``(dataset, subject)`` the workflow evaluates a model on: the test subjects of the config's
    ``test_datasets`` for its experiment (:func:`dnorm.evaluation.plan.test_datasets`), or of the
    datasets it was trained on when the config does not name the experiment."""
    from dnorm.evaluation.plan import test_datasets

    experiment = experiment_of(card)
    if config is not None and experiment.name in config.get("experiments", {}):
        datasets = test_datasets(experiment.name, config)
    else:
        datasets = list(experiment.datasets)
    test = manifest[(manifest.split == "test") & manifest.dataset.isin(datasets)]
    return list(zip(test.dataset, test.subject.astype(str)))


def load_run_subject(manifest, dataset: str, subject: str, modalities) -> np.ndarray:
    from dnorm.evaluation.segment import load_subject, manifest_row

    volume, _ = load_subject(manifest_row(manifest, dataset, subject), modalities)
    return volume


def mean_tissue_dice(probabilities: np.ndarray, brain: np.ndarray, reference: np.ndarray) -> float:
    """Mean Dice over CSF, GM, WM of the labels the evaluation writes (argmax in the brain,
    background outside) against the ground truth ``reference``."""
    from dnorm.metrics.overlap import dice

    labels = np.where(brain, probabilities.argmax(axis=0), 0)
    return float(np.mean(list(dice(labels, reference).values())))


def agreement(run: Path, strides, batch_size: int, config: dict | None, max_volumes: int | None = None) -> list[dict]:
    """One row per model × test subject × stride: the share of brain voxels whose label under
    the default path (and under it without float32 biases) equals a float32 run's, the change
    of the default path's mean tissue Dice against the ground truth from float32's, and times."""
    from dnorm.inference.brain_box import predict_in_brain_box
    from dnorm.io import load_volume
    from dnorm.evaluation.segment import manifest_row
    from dnorm.manifest import read_manifest

    manifest = read_manifest(run / "preprocessed" / "manifest.csv")
    variants = {"default": {}, "bf16 biases": {"fused": False}}
    rows = []
    print(f"\nagreement with float32 labels on brain voxels, {run}: {len(run_models(run))} models "
          f"(fused convolutions here: {use_fused_convolutions(torch.device('cpu'), autocast_dtype(torch.device('cpu'), 'auto'))})")
    print(f"{'model':<36}{'subject':<16}{'stride':>6}{'default':>10}{'bf16 biases':>13}{'Δ Dice':>9}"
          f"{'s float32':>11}{'s default':>11}")
    for model_path in run_models(run):
        networks, card = load_model(model_path)
        experiment = experiment_of(card)
        name = f"{experiment.name}/{model_path.parent.name}"
        for dataset, subject in model_subjects(card, manifest, config)[:max_volumes]:
            volume = load_run_subject(manifest, dataset, subject, experiment.modalities)
            truth = load_volume(manifest_row(manifest, dataset, subject)["label"])[0]
            brain = volume[0] > 0
            for stride in strides:
                options = dict(stride=stride, batch_size=batch_size)
                began = time.perf_counter()
                reference = predict_in_brain_box(volume, brain, networks, card, precision="float32", **options)[0]
                seconds_float32 = time.perf_counter() - began
                labels = reference.argmax(axis=0)[brain]
                row = {"model": name, "dataset": dataset, "subject": subject, "stride": stride,
                       "brain_voxels": int(brain.sum()), "seconds_float32": seconds_float32,
                       "dice_float32": mean_tissue_dice(reference, brain, truth)}
                for variant, extra in variants.items():
                    began = time.perf_counter()
                    probabilities = predict_in_brain_box(volume, brain, networks, card, **options, **extra)[0]
                    row[f"seconds {variant}"] = time.perf_counter() - began
                    row[variant] = float((probabilities.argmax(axis=0)[brain] == labels).mean())
                    if variant == "default":
                        row["dice_change"] = mean_tissue_dice(probabilities, brain, truth) - row["dice_float32"]
                rows.append(row)
                print(f"{name:<36}{subject:<16}{stride:>6}{row['default']:>10.3%}{row['bf16 biases']:>13.3%}"
                      f"{row['dice_change']:>+9.4f}{seconds_float32:>11.2f}{row['seconds default']:>11.2f}", flush=True)
    if rows:
        summarize_agreement(rows)
    return rows


def summarize_agreement(rows: list[dict]) -> None:
    """Per model and stride: volumes, min and mean agreement of both variants; then overall."""
    print(f"\n{'model':<36}{'stride':>6}{'volumes':>8}{'min':>10}{'mean':>10}{'min bf16 b.':>13}{'mean bf16 b.':>14}")
    keys = sorted({(r["model"], r["stride"]) for r in rows})
    for model, stride in keys + [("all models", s) for s in sorted({r["stride"] for r in rows})]:
        chosen = [r for r in rows if r["stride"] == stride and model in ("all models", r["model"])]
        default = [r["default"] for r in chosen]
        before = [r["bf16 biases"] for r in chosen]
        print(f"{model:<36}{stride:>6}{len(chosen):>8}{min(default):>10.3%}{np.mean(default):>10.3%}"
              f"{min(before):>13.3%}{np.mean(before):>14.3%}")
    changes = np.array([r["dice_change"] for r in rows])
    print(f"mean tissue Dice, default path minus float32: largest |change| {np.abs(changes).max():.4f}, "
          f"mean {changes.mean():+.5f} over {len(rows)} volume(s)")
    below = [r for r in rows if r["default"] < AGREEMENT_TARGET]
    print(f"volumes below {AGREEMENT_TARGET:.1%} with the default path: {len(below)} of {len(rows)}"
          + "".join(f"\n  {r['model']} {r['subject']} stride {r['stride']}: {r['default']:.3%}" for r in below))


# --- speed against MONAI -----------------------------------------------------------------------------


def speed_inputs(run: Path | None, model_path: str | None, volume_path: str | None, quick: bool):
    """``(networks, card, volume, model description, volume description)``."""
    from dnorm.io import load_volume

    if model_path is None and run is not None:
        found = [p for p in run_models(run) if p.parent.parent.name == "ours_dual"] or run_models(run)
        model_path = str(found[0]) if found else None
    if model_path is not None:
        networks, card = load_model(model_path)
        model_name = shown(model_path)
    elif quick:
        networks, card = fresh_model(training=QUICK_TRAINING)
        model_name = "untrained tiny ours_dual (--quick)"
    else:
        networks, card = fresh_model()
        model_name = "untrained ours_dual at the default config's widths (no trained model found)"
    modalities = list(card["experiment"]["modalities"])
    if volume_path is not None:
        image, _ = load_volume(volume_path)
        return networks, card, image[None] if image.ndim == 3 else np.moveaxis(image, -1, 0), model_name, volume_path
    manifest_path = None if run is None else run / "preprocessed" / "manifest.csv"
    if manifest_path is not None and manifest_path.is_file():
        from dnorm.manifest import read_manifest

        manifest = read_manifest(manifest_path)
        subjects = model_subjects(card, manifest, None)
        if subjects:
            dataset, subject = subjects[0]
            return (networks, card, load_run_subject(manifest, dataset, subject, modalities), model_name,
                    f"{dataset}/{subject} ({shown(manifest_path)})")
    shape = QUICK_SHAPE if quick else SHAPE
    return networks, card, synthetic_volume(len(modalities), shape), model_name, "synthetic brain-like volume"


def speed(networks, card, volume, strides, batch_size: int, repeats: int) -> list[dict]:
    """The three variants, fastest of ``repeats`` interleaved rounds, per stride; prints a table."""
    from monai.inferers import sliding_window_inference  # the `bench` extra

    patch = int(card["training"]["patch_size"])
    channels = volume.shape[0]
    brain = volume[0] > 0
    x = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None]
    reference_model = WindowModel(networks).eval()

    def monai_run(stride: int) -> np.ndarray:
        with torch.inference_mode():
            out = sliding_window_inference(x, (patch,) * 3, batch_size, reference_model,
                                           overlap=1 - stride / patch, mode="constant")
        start = channels if "generator" in networks else 0
        return out[0, start : start + N_CLASSES].numpy()

    def dnorm_run(stride: int, **options) -> np.ndarray:
        return predict_volume(volume, networks, card, stride=stride, batch_size=batch_size, **options)[0]

    variants = {"MONAI float32": monai_run,
                "dnorm float32": lambda s: dnorm_run(s, precision="float32"),
                "dnorm default": dnorm_run}
    print(f"{'stride':>6} {'variant':<15}{'windows':>8}{'s/volume':>10}{'vs MONAI':>10}"
          f"{'max |Δp|':>10}{'argmax agree':>14}   (fastest of {repeats}; Δ and agreement on brain voxels)")
    rows = []
    for stride in strides:
        dnorm_windows = count_windows(volume.shape[1:], patch, stride, brain)
        windows = {"MONAI float32": count_windows(volume.shape[1:], patch, stride),
                   "dnorm float32": dnorm_windows, "dnorm default": dnorm_windows}
        outputs = {name: run(stride) for name, run in variants.items()}  # warm-up, and the results compared
        times: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(repeats):
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
            rows.append({"stride": stride, "variant": name, "seconds": seconds, "ratio": base / seconds,
                         "agreement": float(agree)})
            print(f"{stride:>6} {name:<15}{windows[name]:>8}{seconds:>10.2f}{base / seconds:>9.2f}x"
                  f"{delta:>10.2e}{agree:>13.3%}")
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="See the module docstring for what each part measures.")
    parser.add_argument("--run", help=f"a finished run's results folder (default: {DEFAULT_RUN} if it has models)")
    parser.add_argument("--config", default=str(ROOT / DEFAULT_CONFIG),
                        help="the run's config, for each experiment's test datasets (default: the shipped one)")
    parser.add_argument("--model", help="model.pt for the speed part (default: the run's first ours_dual model)")
    parser.add_argument("--volume", help="preprocessed NIfTI for the speed part (default: the model's first test subject)")
    parser.add_argument("--strides", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--batch-size", type=int, default=16, help="windows per call, MONAI and dnorm (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds, fastest reported (default 3)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--max-volumes", type=int, help="agreement: at most this many test subjects per model")
    parser.add_argument("--skip-speed", action="store_true", help="agreement only (no MONAI needed)")
    parser.add_argument("--skip-agreement", action="store_true", help="speed only")
    parser.add_argument("--quick", action="store_true", help="tiny model and volume, one round, stride 8 (tests)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.quick:
        args.repeats, args.batch_size = 1, min(args.batch_size, 4)
        if args.strides == [8, 16]:
            args.strides = [8]
    if args.threads:
        torch.set_num_threads(args.threads)
    run = Path(args.run) if args.run else None
    if run is None and not args.quick and run_models(ROOT / DEFAULT_RUN):
        run = ROOT / DEFAULT_RUN
    if run is not None and not (run / "preprocessed" / "manifest.csv").is_file():
        parser.error(f"--run {run}: no preprocessed/manifest.csv (the data part of the run is not finished)")
    device = torch.device("cpu")
    default_dtype = autocast_dtype(device, "auto")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads {torch.get_num_threads()}, "
          f"batch {args.batch_size}, repeats {args.repeats}, strides {args.strides}")

    if not args.skip_speed:
        import monai  # the `bench` extra

        networks, card, volume, model_name, volume_name = speed_inputs(run, args.model, args.volume, args.quick)
        brain = volume[0] > 0
        print(f"MONAI {monai.__version__}; model: {model_name}")
        print(f"volume: {volume_name}, {'×'.join(map(str, volume.shape[1:]))}, brain {brain.mean():.0%} of voxels")
        print(f"dnorm default: precision auto -> {default_dtype or torch.float32} (first conv and head float32), "
              f"channels_last {use_channels_last(device, 'auto')}, batch norm folded, "
              f"{default_pack(networks, device, default_dtype)} window(s) per grouped conv, fused convolutions "
              f"with float32 biases {use_fused_convolutions(device, default_dtype)}, brain mask")
        speed(networks, card, volume, args.strides, args.batch_size, args.repeats)

    if not args.skip_agreement:
        if run is None:
            print("\nagreement: no run with trained models (pass --run RUN)")
            return
        config = None
        if args.config and Path(args.config).is_file():
            from dnorm.config import load_config

            config = load_config(args.config)
        agreement(run, args.strides, args.batch_size, config, args.max_volumes)


if __name__ == "__main__":
    main()
