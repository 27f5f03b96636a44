"""Invariance probe (beyond the paper): can a fresh classifier still tell which dataset a patch
comes from?

The paper's objective only asks G's outputs, pooled over datasets, to look real to D; it never
asks them to hide their dataset (issue 11). This probe measures that after the fact: for one
setting (its Pre-processor and Ours models), a small classifier, newly initialized with a fixed
seed, is trained for a fixed number of steps to predict the source dataset of patches of the
training subjects, and is tested on patches of the test subjects, for four kinds of input
(:data:`KINDS`):

- ``input``: the raw [0, 1] patches the generators see;
- ``z-scored``: the same patches after the Standardization baseline's per-volume z-score over
  brain voxels (:class:`dnorm.training.data.PatchSet` with ``standardize=True``);
- ``Pre-processor`` and ``Ours``: G(x) of each model.

The patches are those of the discriminator's evaluation (Table 7,
:func:`dnorm.evaluation.discriminator.evaluation_patches`): ``count`` centres per dataset from
the training patch tables, and ``count`` per dataset newly drawn from the test subjects' brain
voxels. Chance is 1/K for K balanced datasets. The probe reads contrast, noise and blur, but also
the share of brain in a patch (head size: an infant brain is not an adult's), which no intensity
normalization can remove, so normalized outputs are judged by how much closer to chance they
bring the probe than the raw inputs do, not by whether they reach it.

The classifier (:class:`ProbeNet`) is a linear model over two fixed descriptors of each patch:
its intensity histogram and the histogram of its local contrast (noise, blur); see its docstring
for why not a CNN. Every kind is rescaled by one mean and standard deviation over all its training
patches (shared by every dataset, so no dataset cue is removed) so that the same bins and optimizer
settings suit [0, 1] inputs, z-scores and G's outputs. It trains in well under a second per kind.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from dnorm.evaluation import paper
from dnorm.evaluation.discriminator import evaluation_patches
from dnorm.evaluation.summary import formatted
from dnorm.evaluation.tables import empty_table
from dnorm.inference.predict import experiment_of, inference_networks, load_model
from dnorm.io import atomic_path
from dnorm.manifest import read_manifest
from dnorm.training.data import PatchSet
from dnorm.training.device import select_device, to_memory_format, use_channels_last
from dnorm.training.experiment import experiment_from_config
from dnorm.evaluation.checks import check_metric_table

log = logging.getLogger(__name__)

GENERATORS = ("Pre-processor", "Ours")  # the models a setting's probe takes, by Table 3 label
KINDS = ("input", "z-scored", *GENERATORS)
SPLITS = ("train", "test")
COLUMNS = ["setting", "seed", "kind", "split", "accuracy", "chance", "patches"]

# The probe's fixed schedule (not a config key: it is part of the measuring instrument, like a
# histogram's bins, and must be the same for every kind and run to make accuracies comparable).
STEPS = 200
BATCH_SIZE = 32
LEARNING_RATE = 0.05
BINS = 16
INTENSITY_RANGE = 3.0  # standardized units
CONTRAST_RANGE = 1.5


def _histogram(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """``N×C×V`` values → ``N×C×(len(edges)+1)`` fractions of values per bin (values outside the
    edges fall in the end bins)."""
    index = torch.bucketize(values.contiguous(), edges)
    counts = torch.zeros(*values.shape[:2], len(edges) + 1, device=values.device, dtype=values.dtype)
    return counts.scatter_add_(2, index, torch.ones_like(values)) / values.shape[2]


class ProbeNet(nn.Module):
    """Dataset classifier: ``N×C×p×p×p`` patches → ``N×K`` logits, a linear layer over two fixed
    descriptors of each channel (inputs standardized first, see :func:`probe_accuracies`):

    - intensity: the histogram of the patch's voxel values, ``bins`` bins on ±:data:`INTENSITY_RANGE`;
    - texture: the histogram of local contrast, each voxel minus the mean of its 3×3×3
      neighbourhood, ``bins`` bins on ±:data:`CONTRAST_RANGE` (noise level, blur, resolution).

    Why not a CNN: on small training sets (two or three subjects per dataset) a 3D CNN fitted the
    patches' position and tissue mix and missed plain contrast differences (78 % on held-out
    subjects of two datasets with different contrasts, where these histograms give 100 %); a linear
    model on fixed descriptors cannot memorize anatomy, trains in a second, and reads exactly the
    cues intensity normalization is meant to remove (the intensity histogram is what Table 4's JSD
    compares). Background voxels count too, so the share of brain in a patch is visible as well."""

    def __init__(self, channels: int, classes: int, bins: int = BINS) -> None:
        super().__init__()
        if channels < 1 or classes < 2 or bins < 2:
            raise ValueError(f"a probe needs ≥ 1 channel, ≥ 2 classes and ≥ 2 bins; got channels={channels}, "
                             f"classes={classes}, bins={bins}")
        self.register_buffer("intensity_edges", torch.linspace(-INTENSITY_RANGE, INTENSITY_RANGE, bins + 1)[1:-1])
        self.register_buffer("contrast_edges", torch.linspace(-CONTRAST_RANGE, CONTRAST_RANGE, bins + 1)[1:-1])
        self.head = nn.Linear(2 * channels * bins, classes)

    def descriptors(self, x: torch.Tensor) -> torch.Tensor:
        """``N×(2·C·bins)``: intensity then local-contrast histograms of every channel."""
        x = x.detach().float()
        contrast = x - nn.functional.avg_pool3d(x, 3, stride=1, padding=1, count_include_pad=False)
        return torch.cat([_histogram(x.flatten(2), self.intensity_edges).flatten(1),
                          _histogram(contrast.flatten(2), self.contrast_edges).flatten(1)], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.descriptors(x))


def _check_set(images: torch.Tensor, domains: torch.Tensor, what: str) -> None:
    if images.ndim != 5 or domains.ndim != 1 or len(images) != len(domains) or len(images) == 0:
        raise ValueError(f"{what}: expected N×C×p×p×p images and N domain indices with N > 0, got shapes "
                         f"{tuple(images.shape)} and {tuple(domains.shape)}")


def _batches(n: int, batch_size: int, steps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """``steps`` batches of indices, walking through fresh permutations of ``range(n)``."""
    order = np.empty(0, dtype=np.int64)
    for _ in range(steps):
        while len(order) < min(batch_size, n):
            order = np.concatenate([order, rng.permutation(n)])
        yield order[:batch_size]
        order = order[batch_size:]


def probe_accuracies(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                     classes: int, seed: int, steps: int = STEPS, batch_size: int = BATCH_SIZE,
                     lr: float = LEARNING_RATE, bins: int = BINS) -> dict[str, float]:
    """Train a fresh :class:`ProbeNet` on ``train`` and return its accuracy (fraction correct)
    on ``train`` and ``test``: ``{"train": a, "test": b}``.

    ``train``, ``test``: ``(images N×C×p×p×p float32, domains N int64 in [0, classes))`` on one
    device. Both are rescaled by the mean and standard deviation of ``train``'s images (one pair
    for every dataset). Initialization and batch order depend only on ``seed``: the same inputs
    give the same accuracies (on the CPU), and the global random state is left as it was."""
    _check_set(*train, "probe training set")
    _check_set(*test, "probe test set")
    for name, (_, domains) in (("train", train), ("test", test)):
        if int(domains.min()) < 0 or int(domains.max()) >= classes:
            raise ValueError(f"probe {name} set: domain indices must lie in [0, {classes}), got "
                             f"{sorted(set(domains.tolist()))}")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"probe steps and batch size must be ≥ 1, got steps={steps}, batch_size={batch_size}")
    device = train[0].device
    mean, std = train[0].mean(), train[0].std().clamp_min(1e-6)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ProbeNet(train[0].shape[1], classes, bins).to(device)
    # The descriptors are fixed: compute them once, then fit the linear head on them.
    with torch.inference_mode():
        features = {split: torch.cat([model.descriptors((images[i:i + batch_size] - mean) / std)
                                      for i in range(0, len(images), batch_size)])
                    for split, (images, _) in (("train", train), ("test", test))}
    domains = {"train": train[1], "test": test[1]}
    optimizer = torch.optim.Adam(model.head.parameters(), lr=lr)
    for indices in _batches(len(features["train"]), batch_size, steps, np.random.default_rng(seed)):
        index = torch.from_numpy(indices).to(device)
        loss = nn.functional.cross_entropy(model.head(features["train"][index]), domains["train"][index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    with torch.inference_mode():
        return {split: float((model.head(features[split]).argmax(1) == domains[split]).float().mean())
                for split in SPLITS}


# Reading patches and running the generators -------------------------------------------------


def _patch_tensors(patches: PatchSet) -> tuple[torch.Tensor, torch.Tensor]:
    """Every patch of ``patches`` in table order: ``(N×C×p×p×p float32, N int64 domains)``."""
    batch = patches.batch(np.arange(len(patches)))
    return batch.image, batch.domain


@torch.inference_mode()
def _generated(generator: nn.Module, images: torch.Tensor, device: torch.device, batch_size: int) -> torch.Tensor:
    """G(x) of ``images`` (N×C×p×p×p), float32, on ``device``: G's inference copy (batch norm
    folded, channels-last 3D on CPU, :func:`dnorm.inference.predict.inference_networks`), which
    matches the plain float32 G to rounding and runs about twice as fast on CPU."""
    channels_last = use_channels_last(device, "auto")
    fast = inference_networks(nn.ModuleDict({"generator": generator}), channels_last)["generator"].to(device)
    return torch.cat([fast(to_memory_format(images[i:i + batch_size].to(device), channels_last)).float().contiguous()
                      for i in range(0, len(images), batch_size)])


def _load_generators(model_paths: Mapping[str, str | os.PathLike]) -> tuple[dict[str, nn.Module], dict]:
    """The generator of each model in ``model_paths`` (keys :data:`GENERATORS`) and the card of
    the first. Raises ``ValueError`` naming the file when a model lacks a generator or when the
    models disagree on datasets, modalities or patch size."""
    missing = [label for label in GENERATORS if label not in model_paths]
    if missing:
        raise ValueError(f"the invariance probe needs a model for each of {list(GENERATORS)}; missing {missing}")
    generators, reference, first = {}, None, None
    for label in GENERATORS:
        path = model_paths[label]
        networks, card = load_model(path)
        experiment = experiment_of(card)
        if "generator" not in networks:
            raise ValueError(f"{path}: experiment {experiment.name!r} ({label}) has no generator")
        shape = (tuple(experiment.datasets), tuple(experiment.modalities), card["training"]["patch_size"])
        if reference is None:
            reference, first = shape, card
        elif shape != reference:
            raise ValueError(f"{path}: datasets, modalities and patch size {shape} differ from those of "
                             f"{model_paths[GENERATORS[0]]} {reference}; the probe compares models of one setting")
        generators[label] = networks["generator"]
    return generators, first


def probe_dataset_invariance(model_paths: Mapping[str, str | os.PathLike], manifest_path, patch_tables,
                             count: int, seed: int, setting: str, model_seed: int, out_csv: str | os.PathLike,
                             gpus: int = 1, batch_size: int = 16, steps: int = STEPS) -> pd.DataFrame:
    """Write the probe's accuracy per kind of input and split (:data:`COLUMNS`) for one setting.

    ``model_paths``: ``model.pt`` of the setting's Pre-processor and Ours (keys
    :data:`GENERATORS`, same datasets and modalities); ``patch_tables``: the datasets' training
    patch tables; ``count``: patches per dataset and split; ``seed``: draws the test centres and
    seeds every probe; ``model_seed``: the training seed of the models (recorded);
    ``batch_size``: patches per G forward."""
    generators, card = _load_generators(model_paths)
    experiment = experiment_of(card)
    datasets, patch_size = list(experiment.datasets), card["training"]["patch_size"]
    device = select_device(gpus)
    manifest = read_manifest(manifest_path)
    inputs: dict[str, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}
    for split, centres in evaluation_patches(manifest, patch_tables, datasets, count, seed).items():
        for kind, standardize in (("input", False), ("z-scored", True)):
            patches = PatchSet(manifest, centres, datasets, experiment.modalities, patch_size, standardize=standardize)
            images, domains = _patch_tensors(patches)
            inputs.setdefault(kind, {})[split] = (images.to(device), domains.to(device))
    chance = 1 / len(datasets)
    rows = []
    for kind in KINDS:
        if kind in generators:
            sets = {split: (_generated(generators[kind], images, device, batch_size), domains)
                    for split, (images, domains) in inputs["input"].items()}
        else:
            sets = inputs[kind]
        accuracy = probe_accuracies(sets["train"], sets["test"], len(datasets), seed, steps=steps)
        for split in SPLITS:
            rows.append({"setting": setting, "seed": model_seed, "kind": kind, "split": split,
                         "accuracy": accuracy[split], "chance": chance, "patches": len(sets[split][1])})
        log.info("%s seed %s, %s: probe accuracy train %.3f, test %.3f (chance %.3f)", setting, model_seed, kind,
                 accuracy["train"], accuracy["test"], chance)
    table = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


# Reading the tables back (pure pandas) --------------------------------------------------------


def probe_settings(config: dict) -> dict[str, dict[str, str]]:
    """The settings the probe runs on: each Table 3 setting (:func:`dnorm.evaluation.paper.table3_rows`)
    with both a Pre-processor and an Ours experiment, mapped to ``{label: experiment}`` for
    :data:`GENERATORS` (``rules/common.smk`` makes the same selection without importing torch)."""
    settings: dict[str, dict[str, str]] = {}
    for row in paper.table3_rows(config):
        settings.setdefault(row.setting, {})[row.label] = row.experiment
    return {s: {label: methods[label] for label in GENERATORS} for s, methods in settings.items()
            if set(GENERATORS) <= set(methods)}


def check_table(frame: pd.DataFrame, source: str = "probe table") -> pd.DataFrame:
    """``frame`` if it has :data:`COLUMNS` and known kinds and splits; ``ValueError`` naming
    ``source`` otherwise."""
    return check_metric_table(frame, COLUMNS, {"kind": KINDS, "split": SPLITS}, source, 'probe_dataset_invariance')


def seed_accuracies(frame: pd.DataFrame, setting: str, kind: str, split: str = "test") -> pd.Series:
    """Probe accuracy per seed (index: seed) of one setting, kind and split; empty when absent."""
    if frame.empty:
        return pd.Series(dtype=float)
    chosen = check_table(frame)
    chosen = chosen[(chosen.setting == setting) & (chosen.kind == kind) & (chosen.split == split)]
    return chosen.groupby("seed").accuracy.mean()


TIE = 1e-9  # distances to chance closer than this are equal (0.95 and 0.05 are as far from 0.5)


def closer_to_chance(normalized: float, raw: float, chance: float) -> bool | None:
    """Whether ``normalized`` accuracy lies strictly closer to ``chance`` than ``raw`` does, on
    either side of it (a tie, up to :data:`TIE`: False); None when any value is undefined."""
    if not all(np.isfinite(v) for v in (normalized, raw, chance)):
        return None
    return bool(abs(normalized - chance) < abs(raw - chance) - TIE)


def probe_table(probe: pd.DataFrame, config: dict) -> pd.DataFrame:
    """One row per setting of :func:`probe_settings` and kind of input: the probe's accuracy (%)
    on the training subjects' and on the test subjects' patches (mean ± sd over training seeds,
    "n/a" when missing) and chance (1/K, %, from the setting's datasets)."""
    settings = probe_settings(config)
    if not settings:
        return empty_table("trains both Pre-processor and Ours on the same datasets")
    out = []
    for setting, methods in settings.items():
        datasets = experiment_from_config(methods["Ours"], config).datasets
        for kind in KINDS:
            accuracy = {split: 100 * seed_accuracies(probe, setting, kind, split) for split in SPLITS}
            out.append({"setting": setting, "input": kind,
                        "experiment": methods.get(kind, ""), "seeds": len(accuracy["test"]),
                        "probe accuracy, training subjects %": formatted(accuracy["train"], 1),
                        "probe accuracy, test subjects %": formatted(accuracy["test"], 1),
                        "chance %": round(100 / len(datasets), 1)})
    return pd.DataFrame(out)


def write_probe_table(paths, config: dict, out_csv: str | os.PathLike) -> pd.DataFrame:
    """Read the per-setting probe CSVs at ``paths`` and write :func:`probe_table` to ``out_csv``."""
    frames = [check_table(pd.read_csv(path), str(path)) for path in paths]
    table = probe_table(pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS), config)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    log.info("invariance probe:\n%s", table.to_string())
    return table
