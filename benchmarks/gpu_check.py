"""`make gpu-check`: does this CUDA machine run the study on its GPU, how fast, and does paper scale fit?

    python benchmarks/gpu_check.py              # on a CUDA machine: all three checks below
    python benchmarks/gpu_check.py --estimate   # anywhere (CPU): FLOPs and memory estimates only

1. The tiny study (config/tiny.yaml) through Snakemake with ``DNORM_DEVICE=cuda``, in a scratch
   copy of the workflow: every model card must say ``cuda`` and an autocast dtype (bfloat16 on
   compute capability >= 8.0, float16 on 7.x); prints the training throughput from the histories.
2. One training iteration of each paper experiment (config/paper.yaml, batch 72, synthetic
   patches): ``torch.cuda.max_memory_allocated`` and the time per iteration, hence per epoch.
3. FLOPs of one iteration (``torch.utils.flop_counter.FlopCounterMode`` on the ``meta`` device,
   no memory or GPU needed) and the expected hours per experiment at an assumed throughput.

Exits non-zero when a check fails. Not yet run on a GPU by the authors of this script (written
on a CPU-only machine): report what it prints.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dnorm.config import merge_into  # noqa: E402
from dnorm.training.data import Batch, Draw  # noqa: E402
from dnorm.training.experiment import experiment_from_config  # noqa: E402
from dnorm.training.networks import build_networks, normalize  # noqa: E402
from dnorm.training.sampling import iterations_per_epoch  # noqa: E402

#: assumed sustained share of a GPU's dense peak for these 3D U-Nets (an assumption, not a
#: measurement: cuDNN 3D convolutions with 32³ patches typically reach 30-40 % of peak)
ASSUMED_EFFICIENCY = 0.35
#: dense tensor-core peaks (TFLOP/s) from the vendors' data sheets, in the precision `auto` picks
GPU_PEAKS = {"A100 (bf16)": 312.0, "H100 SXM (bf16)": 989.0, "V100 (fp16)": 125.0, "T4 (fp16)": 65.0}


def paper_config() -> dict:
    """config/config.yaml + config/paper.yaml merged (no validation: the data paths need not exist)."""
    config: dict = {}
    for name in ("config.yaml", "paper.yaml"):
        merge_into(config, yaml.safe_load((REPO / "config" / name).read_text()))
    return config


def synthetic_batch(experiment, training: dict, batch: int, device, generator=None) -> Batch:
    """Random patches of the right shapes (values do not matter for FLOPs, memory or time)."""
    p, channels = training["patch_size"], len(experiment.modalities)
    image = torch.rand(batch, channels, p, p, p, generator=generator).to(device)
    labels = torch.randint(0, 4, (batch, p, p, p), generator=generator).to(device)
    domain = torch.randint(0, len(experiment.datasets), (batch,), generator=generator).to(device)
    return Batch(image=image, labels=labels, domain=domain)


def synthetic_draw(experiment, training: dict, batch: int, device, generator=None) -> Draw:
    steps = training["discriminator_steps"] if experiment.uses_discriminator else 0
    return Draw(task=synthetic_batch(experiment, training, batch, device, generator),
                discriminator=tuple(synthetic_batch(experiment, training, batch, device, generator)
                                    for _ in range(steps)))


# --------------------------------------------------------------------------- FLOPs and memory estimates
def iteration_flops(experiment, training: dict, batch: int) -> dict[str, float]:
    """FLOPs of one joint iteration of Algorithm 1 (D updates + S/G update, forward and backward),
    one warm-up iteration and one validation batch, counted on the ``meta`` device. The losses
    are replaced by means (their cost is negligible next to the convolutions)."""
    torch.manual_seed(0)
    networks = build_networks(experiment, training).to("meta")
    p, channels = training["patch_size"], len(experiment.modalities)
    x = lambda n: torch.empty(n, channels, p, p, p, device="meta")  # noqa: E731
    steps = training["discriminator_steps"] if experiment.uses_discriminator else 0
    counts = {}
    with FlopCounterMode(display=False) as counter:
        if steps:
            d = networks["discriminator"]
            with torch.no_grad():
                generated = normalize(networks, x(steps * batch))
            for fake in generated.split(batch):
                d(torch.cat([x(batch), fake])).float().mean().backward()
        generated = normalize(networks, x(batch))
        loss = networks["segmenter"](generated).float().mean()
        if steps:
            networks["discriminator"].eval().requires_grad_(False)
            loss = loss + networks["discriminator"](generated).float().mean()
        loss.backward()
    counts["iteration"] = counter.get_total_flops()
    if "generator" in networks:
        networks.train().requires_grad_(True)
        with FlopCounterMode(display=False) as counter:
            image = x(batch)
            loss = (networks["generator"](image).float().mean() + networks["segmenter"](image).float().mean())
            loss.backward()
        counts["warmup_iteration"] = counter.get_total_flops()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        image = x(batch)
        generated = normalize(networks, image)
        networks["segmenter"](generated)
        if steps:
            networks["discriminator"](image), networks["discriminator"](generated)
    counts["validation_batch"] = counter.get_total_flops()
    return counts


def activation_bytes(experiment, training: dict, batch: int, dtype: torch.dtype) -> int:
    """Bytes autograd saves for the backward of the S/G update (G, S and D forward at once: the
    largest graph of an iteration), on the ``meta`` device with networks and inputs in ``dtype``
    (bfloat16 approximates autocast, which also keeps a few reductions in float32)."""
    networks = build_networks(experiment, training).to(device="meta", dtype=dtype)
    p, channels = training["patch_size"], len(experiment.modalities)
    seen, total = set(), 0

    def pack(tensor):
        nonlocal total
        if id(tensor) not in seen and not isinstance(tensor, torch.nn.Parameter):
            seen.add(id(tensor))
            total += tensor.numel() * tensor.element_size()
        return tensor

    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: (kept.append(t), pack(t))[1], lambda t: t):
        image = torch.empty(batch, channels, p, p, p, device="meta", dtype=dtype)
        generated = normalize(networks, image)
        loss = networks["segmenter"](generated).float().mean()
        if experiment.uses_discriminator:
            loss = loss + networks["discriminator"].eval()(generated).float().mean()
    return total


def parameter_count(experiment, training: dict) -> int:
    networks = build_networks(experiment, training).to("meta")
    return sum(p.numel() for p in networks.parameters())


def estimates(config: dict) -> list[dict]:
    """Per paper experiment: FLOPs, expected hours at the assumed throughputs, memory estimates."""
    training, rows = config["training"], []
    batch = training["batch_size"]
    for name in config["experiments"]:
        experiment = experiment_from_config(name, config)
        flops = iteration_flops(experiment, training, batch)
        epochs = experiment.epochs or training["epochs"]
        n_train = training["train_patches_per_dataset"] * len(experiment.datasets)
        n_val = training["val_patches_per_dataset"] * len(experiment.datasets)
        per_epoch = (iterations_per_epoch(n_train, batch) * flops["iteration"]
                     + iterations_per_epoch(n_val, batch) * flops["validation_batch"])
        warmup = training["generator_warmup_epochs"] * iterations_per_epoch(n_train, batch) * flops.get("warmup_iteration", 0)
        total = epochs * per_epoch + warmup
        parameters = parameter_count(experiment, training)
        states = 16 * parameters  # float32 weights, gradients, Adam's two moments
        row = {"experiment": name, "epochs": epochs, "parameters": parameters,
               "tflop_per_iteration": flops["iteration"] / 1e12, "pflop_total": total / 1e15,
               "activations_gib_float32": activation_bytes(experiment, training, batch, torch.float32) / 2**30,
               "activations_gib_bfloat16": activation_bytes(experiment, training, batch, torch.bfloat16) / 2**30,
               "states_gib": states / 2**30}
        for gpu, peak in GPU_PEAKS.items():
            row[f"hours {gpu}"] = total / (peak * 1e12 * ASSUMED_EFFICIENCY) / 3600
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- measured on a device
def measure_step(experiment, training: dict, batch: int, device: torch.device, repeats: int = 3) -> dict:
    """Peak memory (CUDA) and seconds of one joint iteration (after one to warm cuDNN up) of a
    real :class:`~dnorm.training.trainer.Trainer` on synthetic patches."""
    from dnorm.training.stats import EpochStats
    from dnorm.training.trainer import Trainer

    class Sized:  # the trainer only asks the training set for its size here
        def __len__(self):
            return training["train_patches_per_dataset"] * len(experiment.datasets)

    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(experiment, training | {"batch_size": batch}, 0, device, Sized(), None,
                          Path(scratch) / "ck.pt")
        generator = torch.Generator().manual_seed(0)
        draws = [synthetic_draw(experiment, training, batch, "cpu", generator) for _ in range(2)]
        trainer.train_step(draws[0], EpochStats())  # cuDNN benchmark, allocator warm-up
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        began = time.perf_counter()
        for _ in range(repeats):
            trainer.train_step(draws[1], EpochStats())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - began) / repeats
        peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {"seconds_per_iteration": seconds, "peak_gib": None if peak is None else peak / 2**30,
            "autocast": str(trainer.dtype), "grad_scaler": trainer.task_scaler.is_enabled()}


def tiny_study(device_setting: str = "cuda", cores: str = "all") -> list[dict]:
    """The tiny study's models through Snakemake in a scratch copy of the workflow; their cards."""
    config = {}
    for name in ("config.yaml", "tiny.yaml"):
        merge_into(config, yaml.safe_load((REPO / "config" / name).read_text()))
    with tempfile.TemporaryDirectory(prefix="dnorm-gpu-check-") as scratch:
        root = Path(scratch)
        for name in ("Snakefile", "rules", "workflow_scripts", "config", "envs", "profiles"):
            (root / name).symlink_to(REPO / name)
        targets = [f"results/tiny/models/{name}/seed-{config['seed']}/model_card.json" for name in config["experiments"]]
        env = dict(os.environ, DNORM_DEVICE=device_setting, PYTHONPATH=str(REPO))
        command = [sys.executable, "-m", "snakemake", "--configfile", "config/tiny.yaml", "--cores", cores,
                   "--resources", "gpu=1", *targets]
        began = time.perf_counter()
        result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"the tiny study failed:\n{result.stderr[-4000:]}")
        print(f"tiny study: {len(targets)} models in {time.perf_counter() - began:.0f} s")
        cards = []
        for target in targets:
            card = json.loads((root / target).read_text())
            history = (root / target).with_name("history.csv").read_text().splitlines()
            header, last = history[0].split(","), history[-1].split(",")
            card["patches_per_second"] = float(last[header.index("patches_per_second")])
            cards.append(card)
    return cards


def check_cards(cards: list[dict]) -> list[str]:
    """Problems: a model trained off the GPU or without autocast."""
    problems = []
    for card in cards:
        name = card["experiment"]["name"]
        if not card["device"].startswith("cuda"):
            problems.append(f"{name} trained on {card['device']}, not on CUDA")
        if card["autocast"] not in ("torch.bfloat16", "torch.float16"):
            problems.append(f"{name} trained with autocast {card['autocast']} (expected bfloat16 or float16)")
    return problems


def print_estimates(rows: list[dict]) -> None:
    print(f"\nEstimates for config/paper.yaml (FLOPs counted on the meta device; hours assume "
          f"{ASSUMED_EFFICIENCY:.0%} of the dense peak, an assumption):")
    for row in rows:
        hours = ", ".join(f"{k[6:]} {v:.1f} h" for k, v in row.items() if k.startswith("hours "))
        print(f"  {row['experiment']}: {row['parameters'] / 1e6:.1f} M parameters, "
              f"{row['tflop_per_iteration']:.2f} TFLOP per iteration, {row['pflop_total']:.0f} PFLOP in "
              f"{row['epochs']} epochs; {hours}; saved activations {row['activations_gib_float32']:.1f} GiB "
              f"float32 / {row['activations_gib_bfloat16']:.1f} GiB bf16 + {row['states_gib']:.2f} GiB "
              f"weights, gradients, Adam")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--estimate", action="store_true", help="FLOPs and memory estimates only (CPU is fine)")
    parser.add_argument("--skip-study", action="store_true", help="skip the tiny Snakemake study")
    parser.add_argument("--batch", type=int, help="batch size of the step measurement (default: paper's)")
    args = parser.parse_args(argv)
    config = paper_config()
    rows = estimates(config)
    print_estimates(rows)
    if args.estimate:
        return 0
    if not torch.cuda.is_available():
        print(f"\nCUDA is not available to PyTorch {torch.__version__} (CUDA build {torch.version.cuda}): "
              f"install a CUDA build (README, 'Paper scale on a cluster')", file=sys.stderr)
        return 2
    device = torch.device("cuda", 0)
    capability = torch.cuda.get_device_capability(device)
    print(f"\n{torch.cuda.get_device_name(device)}, compute capability {capability[0]}.{capability[1]}, "
          f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}), arch list {torch.cuda.get_arch_list()}")
    problems = []
    if not args.skip_study:
        cards = tiny_study()
        for card in cards:
            print(f"  {card['experiment']['name']}: device {card['device']}, autocast {card['autocast']}, "
                  f"{card['patches_per_second']:.0f} training patches/s (last epoch)")
        problems += check_cards(cards)
    training, batch = config["training"], args.batch or config["training"]["batch_size"]
    print(f"\nOne training iteration at batch {batch} (paper networks, synthetic patches):")
    for name in config["experiments"]:
        experiment = experiment_from_config(name, config)
        measured = measure_step(experiment, training, batch, device)
        n_train = training["train_patches_per_dataset"] * len(experiment.datasets)
        epoch_hours = measured["seconds_per_iteration"] * iterations_per_epoch(n_train, batch) / 3600
        epochs = experiment.epochs or training["epochs"]
        print(f"  {name}: peak {measured['peak_gib']:.1f} GiB (torch.cuda.max_memory_allocated), "
              f"{measured['seconds_per_iteration']:.3f} s per iteration ({batch / measured['seconds_per_iteration']:.0f} "
              f"patches/s), autocast {measured['autocast']}, grad scaler {measured['grad_scaler']}: "
              f"~{epoch_hours:.2f} h per epoch without validation, ~{epoch_hours * epochs:.1f} h for {epochs} epochs")
        total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30
        if measured["peak_gib"] > 0.9 * total_gib:
            problems.append(f"{name}: peak {measured['peak_gib']:.1f} GiB is within 10 % of the GPU's {total_gib:.0f} GiB")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    print("\ngpu-check " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
