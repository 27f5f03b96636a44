"""CPU training-step throughput of small U-Nets: float32 vs bfloat16 autocast, ± channels_last_3d.

Run on demand (not a test), e.g.::

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184 \\
        .venv/bin/python benchmarks/bench_unet_cpu.py --steps 5

One step = forward + weighted Dice loss + backward + Adam on a batch of N×1×32³ patches with the
segmenter configuration (4 classes). Ratios are against the float32 run of the same width measured
in the same process; variants run round-robin and the median step time is reported, since
the machine may be shared. A bare Conv3d(16→16, k3) forward + backward is timed as a reference.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from dnorm.losses import weighted_dice_loss
from dnorm.models import build_segmenter, count_parameters


VARIANTS = (("float32", False, False), ("bf16 autocast", True, False),
            ("float32 + channels_last_3d", False, True), ("bf16 + channels_last_3d", True, True))


def unet_step(width: int, depth: int, batch: int, patch: int, bf16: bool, channels_last: bool):
    """Return (one training step as a closure, parameter count)."""
    torch.manual_seed(0)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = build_segmenter(1, 4, width=width, depth=depth).to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-3)
    x = torch.rand(batch, 1, patch, patch, patch).contiguous(memory_format=memory_format)
    y = torch.randint(0, 4, (batch, patch, patch, patch))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        weighted_dice_loss(logits, y).backward()
        optimizer.step()

    return step, count_parameters(model)


def conv_step(batch: int, patch: int, bf16: bool, channels_last: bool):
    """Return a bare Conv3d(16→16, k3) forward + backward as a closure."""
    torch.manual_seed(0)
    memory_format = torch.channels_last_3d if channels_last else torch.contiguous_format
    conv = torch.nn.Conv3d(16, 16, 3, padding=1, bias=False).to(memory_format=memory_format)
    x = torch.rand(batch, 16, patch, patch, patch).contiguous(memory_format=memory_format).requires_grad_()

    def step() -> None:
        conv.zero_grad(set_to_none=True)
        x.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = conv(x)
        out.float().sum().backward()

    return step


def time_interleaved(steps: dict, n_steps: int, warmup: int) -> dict[str, float]:
    """Median seconds per step of each closure, run round-robin so that load from other
    processes on a shared machine hits every variant alike."""
    for fn in steps.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(n_steps):
        for name, fn in steps.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def _report(label: str, seconds: dict[str, float], batch: int) -> None:
    base = seconds["float32"]
    for name, value in seconds.items():
        print(f"{label:<28}{name:<30}{value:>9.3f}{batch / value:>11.1f}{base / value:>8.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--patch", type=int, default=32)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--widths", type=int, nargs="+", default=[8, 16])
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error(f"--steps must be >= 1 and --warmup >= 0, got {args.steps}, {args.warmup}")

    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"threads {torch.get_num_threads()}, batch {args.batch}×1×{args.patch}³, "
          f"steps {args.steps} (+{args.warmup} warm-up)")
    print(f"{'model':<28}{'variant':<30}{'s/step':>9}{'patches/s':>11}{'vs fp32':>9}   (median of steps)")
    for width in args.widths:
        steps, n_params = {}, 0
        for name, bf16, channels_last in VARIANTS:
            steps[name], n_params = unet_step(width, args.depth, args.batch, args.patch, bf16, channels_last)
        seconds = time_interleaved(steps, args.steps, args.warmup)
        _report(f"U-Net w{width} d{args.depth} ({n_params / 1e6:.2f} M)", seconds, args.batch)
        del steps
    steps = {name: conv_step(args.batch, args.patch, bf16, cl) for name, bf16, cl in VARIANTS}
    _report("Conv3d 16→16 k3 fwd+bwd", time_interleaved(steps, args.steps, args.warmup), args.batch)


if __name__ == "__main__":
    main()
