"""Table 7 and Fig. 9: how well the trained discriminator tells datasets and generated patches apart.

On training patches (the first ``n`` centres per dataset of the experiment's patch tables) and on
test patches (``n`` centres per dataset drawn from the test subjects' brain voxels with the
config's seed), D classifies each real patch x (target: its dataset) and each generated patch G(x)
(target: the "generated" class K). The paper's accuracy is the share of all of them D gets right.

D is run in two modes on the same patches, each batch being real patches and their G(x)
concatenated in one forward (as the trainer updates D's BatchNorm):

- ``eval`` (reported): BatchNorm with its running statistics, dropout off, as at inference;
- ``train``: BatchNorm with the statistics of each mixed batch (dropout still off), to show how
  much the verdict depends on the normalization statistics.

The table is long-form (:data:`COLUMNS`): per split, mode, confusion row (``kind`` real or
generated, ``dataset``) and predicted class, the patch ``count`` and the sum of D's softmax
P(generated) over those patches (``p_generated_sum``, so means pool correctly over cells and seeds).
"""

from __future__ import annotations

import copy
import logging
import os

import numpy as np
import pandas as pd
import torch
from torch import nn

from dnorm.inference.predict import experiment_of, load_model
from dnorm.io import atomic_path
from dnorm.manifest import read_manifest
from dnorm.metrics import confusion_accuracy, confusion_matrix, generated_probability
from dnorm.training.data import PatchSet
from dnorm.training.device import select_device
from dnorm.training.patches import sample_centres
from dnorm.evaluation.checks import check_metric_table

log = logging.getLogger(__name__)

COLUMNS = ["experiment", "seed", "split", "mode", "dataset", "kind", "predicted", "count", "p_generated_sum"]
MODES = ("eval", "train")
REPORTED_MODE = "eval"
GENERATED = "generated"
KINDS = ("real", GENERATED)
ACCURACY_COLUMNS = ["accuracy", "accuracy_real", "accuracy_generated", "p_generated_real", "p_generated_generated"]


def evaluation_patches(manifest: pd.DataFrame, patch_tables, datasets, count: int, seed: int) -> dict[str, pd.DataFrame]:
    """Patch centres per split: ``train`` from the training patch tables, ``test`` newly drawn."""
    train = pd.concat([pd.read_csv(p, dtype={"subject": str}) for p in patch_tables], ignore_index=True)
    train = train[train.split == "train"].groupby("dataset", sort=False).head(count)
    test = pd.concat([sample_centres(manifest, d, "test", count, seed) for d in datasets], ignore_index=True)
    return {"train": train, "test": test}


def with_batch_statistics(discriminator: nn.Module) -> nn.Module:
    """A copy of ``discriminator`` whose BatchNorm layers normalize with each batch's own
    statistics (train mode) while dropout stays off; the original is left untouched."""
    batch_mode = copy.deepcopy(discriminator).eval()
    for module in batch_mode.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.train()  # updates only the copy's running statistics
    return batch_mode


@torch.inference_mode()
def discriminator_outputs(networks: nn.ModuleDict, patches: PatchSet, device: torch.device, batch_size: int,
                          seed: int) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per mode of :data:`MODES`: ``(domain, is_generated, logits)`` over every real patch x and
    its G(x) (shapes (2N,), (2N,), (2N, K+1)). Batches are drawn in a shuffled order (``seed``),
    so each mixes datasets as in training; x and G(x) go through D in one forward."""
    discriminators = {"eval": networks["discriminator"].eval(),
                      "train": with_batch_statistics(networks["discriminator"])}
    outputs: dict[str, list[tuple]] = {mode: [] for mode in MODES}
    for batch in patches.batches(batch_size, np.random.default_rng(seed)):
        image = batch.image.to(device)
        mixed = torch.cat([image, networks["generator"](image)])
        domain = np.tile(batch.domain.numpy(), 2)
        generated = np.repeat([False, True], len(image))
        for mode, discriminator in discriminators.items():
            outputs[mode].append((domain, generated, discriminator(mixed).float().cpu().numpy()))
    return {mode: tuple(np.concatenate(parts) for parts in zip(*batches)) for mode, batches in outputs.items()}


def _long_rows(counts: np.ndarray, p_sums: np.ndarray, datasets: list[str], **keys) -> list[dict]:
    """One row per cell of a (2K × (K+1)) confusion matrix and its P(generated) sums."""
    classes = [*datasets, GENERATED]
    return [{**keys, "dataset": datasets[row % len(datasets)], "kind": KINDS[row // len(datasets)],
             "predicted": classes[column], "count": int(counts[row, column]),
             "p_generated_sum": float(p_sums[row, column])}
            for row in range(counts.shape[0]) for column in range(counts.shape[1])]


def evaluate_discriminator(model_path, manifest_path, patch_tables, count: int, seed: int, experiment_name: str,
                           model_seed: int, out_csv: str | os.PathLike, gpus: int = 1,
                           batch_size: int | None = None) -> pd.DataFrame:
    """Write D's confusion counts and P(generated) sums on training and test patches, in both
    modes (:data:`COLUMNS`). ``batch_size``: real patches per forward (default: the model card's
    training batch size, so batch statistics match training's)."""
    networks, card = load_model(model_path)
    experiment = experiment_of(card)
    if "discriminator" not in networks:
        raise ValueError(f"{model_path}: experiment {experiment.name!r} has no discriminator")
    batch_size = batch_size or card["training"].get("batch_size")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"{model_path}: batch size for D's batch statistics must be an integer >= 2, got "
                         f"{batch_size!r}")
    device = select_device(gpus)
    networks.to(device)
    manifest = read_manifest(manifest_path)
    datasets = list(experiment.datasets)
    rows = []
    for split, centres in evaluation_patches(manifest, patch_tables, datasets, count, seed).items():
        patches = PatchSet(manifest, centres, datasets, experiment.modalities, card["training"]["patch_size"])
        for mode, (domain, generated, logits) in discriminator_outputs(networks, patches, device, batch_size,
                                                                       seed).items():
            predicted = logits.argmax(axis=1)
            counts = confusion_matrix(domain, generated, predicted, len(datasets), normalize=None)
            p_sums = confusion_matrix(domain, generated, predicted, len(datasets), normalize=None,
                                      weights=generated_probability(logits))
            rows += _long_rows(counts, p_sums, datasets, experiment=experiment_name, seed=model_seed,
                               split=split, mode=mode)
            log.info("%s %s, %s mode: %s", experiment_name, split, mode, confusion_accuracy(counts))
    table = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


# Reading the tables back (pure pandas/NumPy) -------------------------------------------------


def check_table(frame: pd.DataFrame, source: str = "discriminator table") -> pd.DataFrame:
    """``frame`` if it has :data:`COLUMNS` and known modes and kinds; ``ValueError`` naming
    ``source`` otherwise (e.g. a table written before the modes were recorded)."""
    return check_metric_table(frame, COLUMNS, {"mode": MODES, "kind": KINDS}, source, 'evaluate_discriminator')


def _matrices(group: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Datasets (in order of appearance), and the (2K × (K+1)) count and P(generated)-sum
    matrices of one group of long-form rows."""
    datasets = list(dict.fromkeys(group.dataset))
    classes = [*datasets, GENERATED]
    unknown = sorted(set(group.predicted) - set(classes))
    if unknown:
        raise ValueError(f"discriminator table: predicted class(es) {unknown} are neither datasets {datasets} "
                         f"nor {GENERATED!r}")
    rows = group.dataset.map(datasets.index).to_numpy() + len(datasets) * (group.kind == GENERATED).to_numpy()
    columns = group.predicted.map(classes.index).to_numpy()
    counts = np.zeros((2 * len(datasets), len(classes)), dtype=np.int64)
    p_sums = np.zeros(counts.shape)
    np.add.at(counts, (rows, columns), group["count"].to_numpy(dtype=np.int64))
    np.add.at(p_sums, (rows, columns), group["p_generated_sum"].to_numpy(dtype=float))
    return datasets, counts, p_sums


def discriminator_accuracies(frame: pd.DataFrame) -> pd.DataFrame:
    """Per experiment, seed, split and mode: the paper's ``accuracy`` (all patches),
    ``accuracy_real`` (dataset accuracy on real patches), ``accuracy_generated`` (share of G(x)
    called generated), all in %, and ``p_generated_real`` / ``p_generated_generated``: D's mean
    P(generated) on real and on generated patches (NaN for a group without patches)."""
    keys = ["experiment", "seed", "split", "mode"]
    if frame.empty:
        return pd.DataFrame(columns=keys + ACCURACY_COLUMNS)
    out = []
    for key, group in check_table(frame).groupby(keys, sort=True):
        _, counts, p_sums = _matrices(group)
        scores = confusion_accuracy(counts)
        half = counts.shape[0] // 2
        p_means = [p_sums[rows].sum() / counts[rows].sum() if counts[rows].sum() else np.nan
                   for rows in (slice(0, half), slice(half, None))]
        out.append({**dict(zip(keys, key)), **{name: 100 * scores[name] for name in ACCURACY_COLUMNS[:3]},
                    "p_generated_real": p_means[0], "p_generated_generated": p_means[1]})
    return pd.DataFrame(out, columns=keys + ACCURACY_COLUMNS)


def confusion_matrices(frame: pd.DataFrame, mode: str = REPORTED_MODE
                       ) -> tuple[dict[str, np.ndarray], list[str], list[str]]:
    """Fig. 9 panels of one experiment's table (summed over its seeds): per split, the
    (2K × (K+1)) confusion matrix normalized by the number of samples (it sums to 1), with its
    row names ("real <d>", then "generated <d>") and column names (datasets, then "generated")."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
    chosen = check_table(frame)[frame["mode"] == mode]
    if chosen.empty:
        raise ValueError(f"discriminator table: no rows in mode {mode!r}")
    matrices, datasets = {}, []
    for split, group in chosen.groupby("split", sort=False):
        datasets, counts, _ = _matrices(group)
        matrices[split] = counts / counts.sum() if counts.sum() else np.full(counts.shape, np.nan)
    rows = [f"real {d}" for d in datasets] + [f"{GENERATED} {d}" for d in datasets]
    return matrices, rows, [*datasets, GENERATED]
