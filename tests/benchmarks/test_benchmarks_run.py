"""Every script in benchmarks/ runs on tiny inputs, so none can rot unnoticed.

The scripts are discovered by listing the folder: a new one is covered as soon as it is added. Each
runs in this process (``main`` with ``sys.argv`` set) with the arguments of ``RECIPES`` (tiny
networks and a tiny hand-made run: ``benchmark_fixtures.write_tiny_run``), or ``--quick`` when it
has no recipe: the convention for benchmark scripts is a ``--quick`` mode that finishes in seconds
on tiny inputs. ``SKIPS`` lists the scripts that tiny inputs cannot exercise, with the reason.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

import pytest
import torch

from benchmark_fixtures import write_tiny_run

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted(p.name for p in (REPO / "benchmarks").glob("*.py"))


#: script -> function(tiny run) -> argv. Scripts not listed get ["--quick"].
RECIPES = {
    "bench_training.py": lambda t: ["--quick", "--batches", "1", "--results", str(t["run"])],
    "bench_inference.py": lambda t: ["--quick", "--run", str(t["run"])],
    "ablate_training.py": lambda t: ["--quick", "--config", *t["config"], "--results", str(t["run"]),
                                     "--experiments", "ours_dual", "--seeds", "1",
                                     "--variant", "default", "--variant", "pooled", "dice_reduction=pooled",
                                     "--out", str(t["run"].parent / "ablation.csv")],
    # no tiny mode of its own: the tiny run's config makes its trainings tiny (run from the run's parent)
    "bench_precision.py": lambda t: ["--config", *t["config"], "--experiments", "unet_iseg"],
    "bench_unet_cpu.py": lambda t: ["--steps", "1", "--warmup", "0", "--batch", "1", "--patch", "16",
                                    "--depth", "2", "--widths", "2"],
    "plot_abide_label_islands.py": lambda t: ["--before", t["prefix"], "--out", str(t["run"].parent / "islands.png")],
}
#: script -> why it is not run here
SKIPS: dict[str, str] = {
    "real_scan_check.py": "needs a real 1 mm whole-head scan and its BET mask (Debian's mricron-data, not in "
                          "the repository) and registers it to the MNI template (minutes)",
    "gpu_check.py": "its checks need a CUDA GPU, and its CPU part (--estimate) counts the FLOPs of the "
                    "paper-scale networks (minutes); a --quick mode would let it run here",
    "bench_skullstrip.py": "registers whole synthetic heads to the MNI template (ANTs): about a minute per "
                           "scan even for one subject per dataset; its extract_brain has its own tests",
}
#: script -> (module of the `bench` extra it needs for one part, the arguments that leave that part out):
#: without the extra (as in CI) the rest of the script still runs
NEEDS = {"bench_inference.py": ("monai", ["--skip-speed"])}


def _load(script: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{script[:-3]}", REPO / "benchmarks" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    return write_tiny_run(tmp_path_factory.mktemp("bench"))


def test_the_folder_is_discovered():
    assert {"bench_training.py", "bench_inference.py", "ablate_training.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_runs_on_tiny_inputs(script, tiny_run, monkeypatch, capsys):
    if script in SKIPS:
        pytest.skip(f"{script}: {SKIPS[script]}")
    argv = RECIPES.get(script, lambda t: ["--quick"])(tiny_run)
    if script in NEEDS and importlib.util.find_spec(NEEDS[script][0]) is None:
        argv += NEEDS[script][1]
    module = _load(script)
    assert hasattr(module, "main"), f"benchmarks/{script} has no main()"
    monkeypatch.setattr(sys, "argv", [script, *argv])
    monkeypatch.chdir(tiny_run["run"].parent.parent)  # scripts that read results/<run_name> find the tiny run
    threads = torch.get_num_threads()
    try:
        parameters = inspect.signature(module.main).parameters
        result = module.main(argv) if parameters else module.main()
    finally:
        torch.set_num_threads(threads)
    assert result in (None, 0), f"benchmarks/{script} returned {result!r}"
    assert capsys.readouterr().out.strip(), f"benchmarks/{script} printed nothing"
