"""Writing every results table from the per-model metric CSVs (dnorm.evaluation.results)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dnorm.evaluation.results import read_tables, results_tables, write_results_tables
from evaluation_builders import frame, paper_config, segmentation_rows, study

# rules/common.smk TABLES
TABLE_NAMES = ["claims", "table2_cross_dataset", "table3_methods", "table4_divergence", "table5_modalities",
               "table6_bias", "table7_lambda", "paired_tests"]
KINDS = ("segmentation", "divergence", "bias", "discriminator")


def write_metric_csvs(folder: Path, seeds=(0, 1)) -> dict[str, list[str]]:
    """One CSV per kind, experiment and seed, as the workflow writes them."""
    inputs: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for kind, table in zip(KINDS, study(seeds=seeds)):
        for (experiment, seed), part in table.groupby(["experiment", "seed"]):
            path = folder / experiment / f"seed-{seed}" / f"{kind}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            part.to_csv(path, index=False)
            inputs[kind].append(str(path))
    return inputs


def test_results_tables_are_the_workflow_tables():
    assert sorted(results_tables(*study(), paper_config())) == sorted(TABLE_NAMES)


def test_write_results_tables_writes_every_csv(tmp_path):
    inputs = write_metric_csvs(tmp_path / "metrics")
    outputs = {name: str(tmp_path / "tables" / f"{name}.csv") for name in TABLE_NAMES}
    write_results_tables(inputs, paper_config(), outputs)
    written = {name: pd.read_csv(path) for name, path in outputs.items()}
    assert all(len(table) > 0 and "note" not in table.columns for table in written.values())
    assert list(written["claims"].verdict) == ["held"] * 6
    table3 = written["table3_methods"].set_index(["setting", "method"])
    assert table3.loc[("dual", "Ours"), "mean DSC"] == "0.865 ± 0.000"
    assert table3.loc[("dual", "Ours"), "seeds"] == 2
    assert table3.loc[("multi", "Ours"), "mean MHD (mm) (paper)"] == 0.438
    assert list(written["table2_cross_dataset"]["train → test"]) == [
        "iSEG → iSEG", "iSEG → MRBrainS", "MRBrainS → MRBrainS", "MRBrainS → iSEG"]
    assert written["table4_divergence"]["ratio normalized / input"].tolist() == ["0.100 ± 0.000"] * 4
    assert len(written["table6_bias"]) == 5
    assert written["table7_lambda"]["λ"].tolist() == ["λ = 0.1", "λ = 1.5", "λ = 5"]
    assert len(written["paired_tests"]) == 7
    assert not list((tmp_path / "tables").glob(".*"))  # no temporary file left behind


def test_unknown_output_name_is_rejected_before_writing(tmp_path):
    inputs = write_metric_csvs(tmp_path / "metrics", seeds=(0,))
    outputs = {"table3_methods": str(tmp_path / "t3.csv"), "table9_extra": str(tmp_path / "t9.csv")}
    with pytest.raises(ValueError, match="table9_extra"):
        write_results_tables(inputs, paper_config(), outputs)
    assert not (tmp_path / "t3.csv").exists() and not (tmp_path / "t9.csv").exists()


def test_a_config_without_experiments_writes_notes(tmp_path):
    outputs = {name: str(tmp_path / f"{name}.csv") for name in TABLE_NAMES}
    write_results_tables({}, paper_config({}), outputs)
    claims = pd.read_csv(outputs["claims"])
    assert list(claims.verdict) == ["not evaluated"] * 6
    for name in TABLE_NAMES[1:]:
        assert list(pd.read_csv(outputs[name]).columns) == ["note"], name


def test_read_tables_keeps_subjects_as_strings(tmp_path):
    path = tmp_path / "segmentation.csv"
    frame(segmentation_rows("ours_dual", "iseg", 0.8, subjects=("007", "010"))).to_csv(path, index=False)
    table = read_tables([path, path])
    assert len(table) == 12 and set(table.subject) == {"007", "010"}
    assert read_tables([]).empty
