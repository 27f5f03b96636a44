"""Tables 2–7 of the paper: reproduced values (mean ± sd over seeds) beside the paper's.

Every builder takes the per-model metric tables (concatenated over experiments and seeds) and
the config (to find which experiment reproduces which row, :mod:`dnorm.evaluation.paper`), and
returns a readable DataFrame: one row per table row, reproduced cells as text, paper cells as
numbers (empty where the paper has no such row). A table no experiment of the config matches
has a single ``note`` column saying so.
"""

from __future__ import annotations

import pandas as pd

from dnorm.evaluation import paper
from dnorm.evaluation.discriminator import REPORTED_MODE, discriminator_accuracies
from dnorm.evaluation.paper import CLASS_NAMES, Row
from dnorm.evaluation.summary import formatted, mean_sd, per_seed, per_subject_mean_dice, paired_test

COLUMNS4 = (*CLASS_NAMES, "mean")


def seed_mean_dice(segmentation: pd.DataFrame, experiment: str, datasets=None) -> pd.Series:
    """Mean Dice (over CSF, GM, WM and test subjects) per seed of ``experiment`` on ``datasets``;
    an empty series when there is no such score (so a missing model reads as missing, not as
    an error)."""
    if segmentation.empty or not (segmentation.experiment == experiment).any():
        return pd.Series(dtype=float)
    rows = segmentation if datasets is None else segmentation[segmentation.dataset.isin(list(datasets))]
    if not (rows.experiment == experiment).any():
        return pd.Series(dtype=float)
    return per_seed(rows, experiment)[("dice", "mean")].rename("dice")


def empty_table(what: str) -> pd.DataFrame:
    return pd.DataFrame({"note": [f"no experiment of the config {what}"]})


def _score_cells(scores: pd.DataFrame, row: Row, metrics=("dice", "mhd"), paper_index=None) -> dict:
    """Reproduced and paper cells for CSF, GM, WM and mean of ``metrics``."""
    names = {"dice": "DSC", "mhd": "MHD (mm)"}
    cells = {}
    for index, column in enumerate(COLUMNS4):
        for m, metric in enumerate(metrics):
            cells[f"{column} {names[metric]}"] = formatted(scores[(metric, column)])
            value = None
            if row.paper is not None:
                value = row.paper[index] if paper_index is None else row.paper[index][m]
            cells[f"{column} {names[metric]} (paper)"] = value
    return cells


def table2(segmentation: pd.DataFrame, config: dict, test_datasets) -> pd.DataFrame:
    """Cross-dataset Dice of the single-dataset U-Nets."""
    rows = paper.table2_rows(config, test_datasets)
    if not rows:
        return empty_table("trains a U-Net on a single dataset")
    return pd.DataFrame([{"train → test": r.label, "experiment": r.experiment,
                          **_score_cells(per_seed(segmentation, r.experiment, [r.test_dataset]), r, ("dice",))}
                         for r in rows])


def _method_table(segmentation: pd.DataFrame, rows: list[Row], first: str) -> pd.DataFrame:
    return pd.DataFrame([{"setting": r.setting, first: r.label, "experiment": r.experiment,
                          "seeds": len(per_seed(segmentation, r.experiment)),
                          **_score_cells(per_seed(segmentation, r.experiment), r, paper_index=True)}
                         for r in rows])


def table3(segmentation: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Dice and MHD of Standardization, Pre-processor and Ours per training setting."""
    rows = paper.table3_rows(config)
    return _method_table(segmentation, rows, "method") if rows else empty_table(
        "trains Standardization, Pre-processor or Ours on several datasets")


def table5(segmentation: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Ours on T1 against Ours on T1 + T2 (dual setting)."""
    rows = paper.table5_rows(config)
    return _method_table(segmentation, rows, "modalities") if rows else empty_table(
        "trains Ours on iSEG + MRBrainS with λ = 1.5")


def table4(divergence: pd.DataFrame, config: dict) -> pd.DataFrame:
    """JSD between datasets of the input images and of Pre-processor's and Ours' outputs, with
    the ratio normalized / input (comparable with the paper's, unlike absolute values)."""
    rows = [r for r in paper.table3_rows(config) if r.label in ("Pre-processor", "Ours")]
    if not rows or divergence.empty:
        return empty_table("trains Pre-processor or Ours on several datasets")
    brain = divergence[divergence.region == "brain"]
    out = []
    for r in rows:
        mine = brain[brain.experiment == r.experiment]
        inputs = mine[mine.image == "input"].set_index("seed").jsd
        outputs = mine[mine.image == "normalized"].set_index("seed").jsd
        published = paper.TABLE4.get(r.setting, {})
        paper_ratio = (published[r.label] / published["input"]) if published else None
        out.append({"setting": r.setting, "method": r.label, "experiment": r.experiment,
                    "input JSD": formatted(inputs, 4), "normalized JSD": formatted(outputs, 4),
                    "ratio normalized / input": formatted(outputs / inputs, 3),
                    "input JSD (paper)": published.get("input"), "normalized JSD (paper)": published.get(r.label),
                    "ratio (paper)": None if paper_ratio is None else round(paper_ratio, 3)})
    return pd.DataFrame(out)


def table6(bias: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Pearson ρ (intensity vs y) of degraded inputs and G's outputs per α and dataset."""
    if bias.empty:
        return empty_table("trains a generator with bias augmentation")
    out = []
    for (experiment, alpha), group in bias.groupby(["experiment", "alpha"], sort=True):
        row = {"experiment": experiment, "α": "original" if alpha == 0 else f"{alpha:g}"}
        for dataset, per_dataset in group.groupby("dataset", sort=False):
            seeds = per_dataset.groupby("seed")[["rho_degraded", "rho_normalized", "rho_slice_degraded",
                                                  "rho_slice_normalized"]].mean()
            published = paper.TABLE6.get(round(float(alpha), 3), {}).get(dataset, (None, None))
            label = paper.dataset_label(dataset)
            row |= {f"{label} ρ degraded": formatted(seeds.rho_degraded, 4),
                    f"{label} ρ normalized": formatted(seeds.rho_normalized, 4),
                    f"{label} ρ degraded (paper)": published[0], f"{label} ρ normalized (paper)": published[1],
                    f"{label} slice ρ degraded": formatted(seeds.rho_slice_degraded, 4),
                    f"{label} slice ρ normalized": formatted(seeds.rho_slice_normalized, 4)}
        out.append(row)
    return pd.DataFrame(out)


def table7(segmentation: pd.DataFrame, discriminator: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Mean Dice and the discriminator's accuracy (%) on training and test patches per λ.

    "D accuracy" is the paper's: the share of all patches, real (target: their dataset) and
    generated (target: "generated"), D classifies right, with BatchNorm running statistics (eval
    mode). Beside it: the same with each batch's statistics (train mode), D's dataset accuracy
    on real patches, its accuracy on generated patches and its mean P(generated) on real and on
    generated patches, which show how D errs (mean ± sd over seeds)."""
    rows = paper.table7_rows(config)
    if not rows:
        return empty_table("trains Ours with a discriminator on iSEG + MRBrainS")
    accuracy = discriminator_accuracies(discriminator)
    out = []
    for r in rows:
        dice = seed_mean_dice(segmentation, r.experiment)
        cells = {"λ": r.label, "experiment": r.experiment, "seeds": len(dice), "mean DSC": formatted(dice),
                 "mean DSC (paper)": r.paper[0] if r.paper else None}
        for split, paper_index in (("train", 1), ("test", 2)):
            mine = accuracy[(accuracy.experiment == r.experiment) & (accuracy.split == split)]
            reported, batch = (mine[mine["mode"] == mode] for mode in (REPORTED_MODE, "train"))
            cells |= {f"D accuracy {split} %": formatted(reported.accuracy, 1),
                      f"D accuracy {split} % (paper)": r.paper[paper_index] if r.paper else None,
                      f"D accuracy {split} %, batch statistics": formatted(batch.accuracy, 1),
                      f"D dataset accuracy on real, {split} %": formatted(reported.accuracy_real, 1),
                      f"D accuracy on generated, {split} %": formatted(reported.accuracy_generated, 1),
                      f"mean P(generated) on real, {split}": formatted(reported.p_generated_real, 3),
                      f"mean P(generated) on generated, {split}": formatted(reported.p_generated_generated, 3)}
        out.append(cells)
    return pd.DataFrame(out)


def paired_tests(segmentation: pd.DataFrame, config: dict) -> pd.DataFrame:
    """Wilcoxon signed-rank tests of mean Dice between the methods of each Table 3 setting and
    between T1 and T1 + T2 (Table 5): over test subjects (averaged over seeds) and over
    (test subject, seed) pairs (:mod:`dnorm.evaluation.summary`)."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for r in paper.table3_rows(config):
        groups.setdefault(("Table 3", r.setting), []).append(r)
    if len(paper.table5_rows(config)) > 1:
        groups[("Table 5", "dual")] = paper.table5_rows(config)
    out = []
    for (table, setting), rows in groups.items():
        for i, a in enumerate(rows):
            for b in rows[i + 1:]:
                result = paired_test(per_subject_mean_dice(segmentation, b.experiment),
                                     per_subject_mean_dice(segmentation, a.experiment))
                by_seed = paired_test(per_subject_mean_dice(segmentation, b.experiment, by_seed=True),
                                      per_subject_mean_dice(segmentation, a.experiment, by_seed=True))
                out.append({"table": table, "setting": setting, "comparison": f"{b.label} − {a.label}",
                            "test subjects": result["n"], "mean Dice difference": round(result["mean_difference"], 4),
                            "Wilcoxon p": result["p_value"], "subject × seed pairs": by_seed["n"],
                            "Wilcoxon p (subject × seed)": by_seed["p_value"]})
    return pd.DataFrame(out) if out else empty_table("has two methods to compare")


__all__ = ["discriminator_accuracies", "mean_sd", "paired_tests", "seed_mean_dice", "table2", "table3", "table4", "table5",
           "table6", "table7"]
