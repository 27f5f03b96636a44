"""Table 7 and Fig. 9: how well the trained discriminator tells datasets and generated patches apart.

On training patches (the first ``n`` centres per dataset of the experiment's patch tables) and on
test patches (``n`` centres per dataset drawn from the test subjects' brain voxels with the
config's seed), D classifies each real patch x (target: its dataset) and each generated patch G(x)
(target: the "generated" class K). The counts of every (row, predicted class) pair are written in
long form; :func:`dnorm.metrics.confusion_matrix` rows are "real <dataset>" then "generated <dataset>".
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import torch

from dnorm.inference.predict import experiment_of, load_model
from dnorm.io import atomic_path
from dnorm.manifest import read_manifest
from dnorm.metrics import confusion_matrix
from dnorm.training.data import PatchSet
from dnorm.training.device import select_device
from dnorm.training.patches import sample_centres

COLUMNS = ["experiment", "seed", "split", "dataset", "kind", "predicted", "count"]


def evaluation_patches(manifest: pd.DataFrame, patch_tables, datasets, count: int, seed: int) -> dict[str, pd.DataFrame]:
    """Patch centres per split: ``train`` from the training patch tables, ``test`` newly drawn."""
    train = pd.concat([pd.read_csv(p, dtype={"subject": str}) for p in patch_tables], ignore_index=True)
    train = train[train.split == "train"].groupby("dataset", sort=False).head(count)
    test = pd.concat([sample_centres(manifest, d, "test", count, seed) for d in datasets], ignore_index=True)
    return {"train": train, "test": test}


@torch.inference_mode()
def predictions(networks, patches: PatchSet, device, batch_size: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(domain, is_generated, predicted)`` vectors over real and generated patches."""
    domains, generated, predicted = [], [], []
    for batch in patches.batches(batch_size):
        image = batch.image.to(device)
        for is_generated, x in ((False, image), (True, networks["generator"](image))):
            predicted.append(networks["discriminator"](x).argmax(dim=1).cpu().numpy())
            domains.append(batch.domain.numpy())
            generated.append(np.full(len(image), is_generated))
    return np.concatenate(domains), np.concatenate(generated), np.concatenate(predicted)


def evaluate_discriminator(model_path, manifest_path, patch_tables, count: int, seed: int, experiment_name: str,
                           model_seed: int, out_csv: str | os.PathLike, gpus: int = 1) -> pd.DataFrame:
    """Write the discriminator's confusion counts on training and test patches (:data:`COLUMNS`)."""
    networks, card = load_model(model_path)
    experiment = experiment_of(card)
    if "discriminator" not in networks:
        raise ValueError(f"{model_path}: experiment {experiment.name!r} has no discriminator")
    device = select_device(gpus)
    networks.to(device)
    manifest = read_manifest(manifest_path)
    classes = [*experiment.datasets, "generated"]
    rows = []
    for split, centres in evaluation_patches(manifest, patch_tables, experiment.datasets, count, seed).items():
        patches = PatchSet(manifest, centres, experiment.datasets, experiment.modalities,
                           card["training"]["patch_size"])
        counts = confusion_matrix(*predictions(networks, patches, device), n_domains=len(experiment.datasets),
                                  normalize=None)
        for index, row_counts in enumerate(counts):
            kind = "generated" if index >= len(experiment.datasets) else "real"
            dataset = experiment.datasets[index % len(experiment.datasets)]
            rows += [{"experiment": experiment_name, "seed": model_seed, "split": split, "dataset": dataset,
                      "kind": kind, "predicted": classes[c], "count": int(n)} for c, n in enumerate(row_counts)]
    table = pd.DataFrame(rows, columns=COLUMNS)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table
