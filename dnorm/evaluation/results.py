"""Write every results table (CSV) from the per-model metric CSVs of a run."""

from __future__ import annotations

import logging

import pandas as pd

from dnorm.evaluation import tables
from dnorm.evaluation.claims import claims
from dnorm.evaluation.plan import test_datasets
from dnorm.evaluation.summary import read_tables
from dnorm.io import atomic_path

log = logging.getLogger(__name__)


def results_tables(segmentation: pd.DataFrame, divergence: pd.DataFrame, bias: pd.DataFrame,
                   discriminator: pd.DataFrame, config: dict, probe: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Tables keyed by their file stem (see ``TABLES`` in rules/common.smk); the claims gain the
    invariance probe's row when its table (``probe``) is given and not empty."""
    tested_on = lambda name: test_datasets(name, config)  # noqa: E731
    probe = probe if probe is not None and len(probe) else None
    return {
        "claims": claims(segmentation, divergence, bias, discriminator, config, tested_on, probe=probe),
        "table2_cross_dataset": tables.table2(segmentation, config, tested_on),
        "table3_methods": tables.table3(segmentation, config),
        "table4_divergence": tables.table4(divergence, config),
        "table5_modalities": tables.table5(segmentation, config),
        "table6_bias": tables.table6(bias, config),
        "table7_lambda": tables.table7(segmentation, discriminator, config),
        "paired_tests": tables.paired_tests(segmentation, config),
    }


def write_results_tables(inputs: dict[str, list[str]], config: dict, outputs: dict[str, str]) -> None:
    """``inputs``: metric CSV paths by kind (segmentation, divergence, bias, discriminator);
    ``outputs``: CSV path per table name. Every table is written atomically."""
    frames = {kind: read_tables(inputs.get(kind, [])) for kind in ("segmentation", "divergence", "bias",
                                                                  "discriminator", "probe")}
    built = results_tables(frames["segmentation"], frames["divergence"], frames["bias"], frames["discriminator"],
                           config, probe=frames["probe"])
    unknown = sorted(set(outputs) - set(built))
    if unknown:
        raise ValueError(f"no table named {unknown}; known: {sorted(built)}")
    for name, path in outputs.items():
        with atomic_path(path) as tmp:
            built[name].to_csv(tmp, index=False)
        log.info("%s:\n%s", name, built[name].to_string(max_colwidth=60))
