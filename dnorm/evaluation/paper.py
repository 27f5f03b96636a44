"""The paper's reported numbers (SPEC section 6) and which experiments reproduce which table row.

Experiments are config entries, so table rows are found from their attributes, not their names:
a user's own experiment that matches a row's settings joins that row, and settings the paper did
not run appear without paper values.
"""

from __future__ import annotations

from dataclasses import dataclass

from dnorm.training.experiment import Experiment, experiment_from_config

CLASS_NAMES = ("CSF", "GM", "WM")
DATASET_LABELS = {"iseg": "iSEG", "mrbrains": "MRBrainS", "abide": "ABIDE"}
METHOD_LABELS = {"unet": "U-Net", "standardization": "Standardization", "preprocessor": "Pre-processor",
                 "ours": "Ours"}
PAPER_LAMBDA = 1.5  # the adversarial weight of the paper's main results (Tables 3-5)

# Table 2: Dice CSF, GM, WM, mean; keyed by (train dataset, test dataset).
TABLE2 = {
    ("iseg", "iseg"): (0.920, 0.857, 0.828, 0.868),
    ("mrbrains", "mrbrains"): (0.861, 0.789, 0.839, 0.830),
    ("iseg", "mrbrains"): (0.401, 0.354, 0.519, 0.425),
    ("mrbrains", "iseg"): (0.293, 0.082, 0.563, 0.313),
}
# Tables 3 and 5: (DSC, MHD) for CSF, GM, WM, mean; keyed by (setting, row).
TABLE3 = {
    ("dual", "Standardization"): ((0.897, 0.792), (0.836, 0.498), (0.790, 0.734), (0.841, 0.675)),
    ("dual", "Pre-processor"): ((0.919, 0.227), (0.860, 0.517), (0.831, 0.702), (0.870, 0.482)),
    ("dual", "Ours"): ((0.912, 0.245), (0.853, 0.492), (0.836, 0.595), (0.867, 0.444)),
    ("multi", "Standardization"): ((0.860, 0.264), (0.881, 0.684), (0.856, 0.812), (0.866, 0.587)),
    ("multi", "Pre-processor"): ((0.922, 0.251), (0.895, 0.392), (0.870, 0.530), (0.896, 0.390)),
    ("multi", "Ours"): ((0.913, 0.293), (0.887, 0.422), (0.870, 0.598), (0.890, 0.438)),
}
TABLE5 = {
    "T1": ((0.912, 0.245), (0.853, 0.492), (0.836, 0.595), (0.867, 0.444)),
    "T1 + T2": ((0.910, 0.165), (0.889, 0.431), (0.862, 0.493), (0.887, 0.363)),
}
# Table 4: generalized JSD of the datasets' intensity distributions (the paper's own code and bins).
TABLE4 = {"dual": {"input": 2.0839, "Pre-processor": 0.2793, "Ours": 0.2788},
          "multi": {"input": 12.2212, "Pre-processor": 0.4185, "Ours": 0.4180}}
# Table 6: Pearson rho (intensity vs y) keyed by alpha (0.0 = original images), then dataset:
# (degraded input, normalized output).
TABLE6 = {
    0.0: {"mrbrains": (-0.0199, None), "iseg": (0.0271, None)},
    0.3: {"mrbrains": (0.0982, 0.0534), "iseg": (0.2560, 0.1192)},
    0.5: {"mrbrains": (0.1963, 0.1422), "iseg": (0.4264, 0.2430)},
    0.7: {"mrbrains": (0.3103, 0.2393), "iseg": (0.5914, 0.4599)},
    0.9: {"mrbrains": (0.4368, 0.3649), "iseg": (0.7316, 0.5928)},
}
# Table 7: lambda -> (mean DSC, D accuracy on training patches %, on test patches %).
TABLE7 = {0.1: (0.875, 98.95, 34.49), 1.5: (0.866, 44.10, 32.58), 5.0: (0.851, 44.07, 28.58)}


def setting_of(datasets) -> str:
    """``dual`` (iSEG + MRBrainS), ``multi`` (+ ABIDE), else the datasets joined by ``+``."""
    names = frozenset(datasets)
    if names == {"iseg", "mrbrains"}:
        return "dual"
    if names == {"iseg", "mrbrains", "abide"}:
        return "multi"
    return "+".join(sorted(names))


def dataset_label(name: str) -> str:
    return DATASET_LABELS.get(name, name)


@dataclass(frozen=True)
class Row:
    """One table row reproduced by one experiment."""

    table: str
    label: str  # the row's name in the table (e.g. "Pre-processor", "iSEG → MRBrainS", "λ = 0.1")
    experiment: str
    setting: str = ""
    test_dataset: str = ""  # Table 2 only: the dataset whose test subjects score the row
    paper: tuple | None = None


def _experiments(config: dict) -> list[Experiment]:
    """The config's experiments at the study's budget; other budgets belong to the budget curve
    (:mod:`dnorm.evaluation.budget`), not to the paper's tables."""
    experiments = [experiment_from_config(name, config) for name in sorted(config.get("experiments", {}))]
    return [e for e in experiments if e.budget == 1]


def _is_main(experiment: Experiment) -> bool:
    """T1 only, no bias augmentation, the paper's lambda for Ours: the Table 3 configuration."""
    plain = experiment.modalities == ("t1",) and not experiment.bias_augmentation
    return plain and (experiment.method != "ours" or experiment.adversarial_weight == PAPER_LAMBDA)


def table2_rows(config: dict, test_datasets) -> list[Row]:
    """Single-dataset U-Nets, one row per test dataset (``test_datasets(name) -> list``)."""
    rows = []
    for e in _experiments(config):
        if e.method != "unet" or len(e.datasets) != 1:
            continue
        for test in test_datasets(e.name):
            key = (e.datasets[0], test)
            rows.append(Row("table2", f"{dataset_label(key[0])} → {dataset_label(test)}", e.name,
                            test_dataset=test, paper=TABLE2.get(key) if _is_main(e) else None))
    return rows


def table3_rows(config: dict) -> list[Row]:
    """Standardization, Pre-processor and Ours trained on several datasets, Table 3 settings;
    a U-Net trained on several datasets (no normalization, not in the paper) joins its setting
    as the first row, without paper values."""
    rows = []
    for e in _experiments(config):
        if len(e.datasets) > 1 and _is_main(e):
            setting, label = setting_of(e.datasets), METHOD_LABELS[e.method]
            rows.append(Row("table3", label, e.name, setting=setting, paper=TABLE3.get((setting, label))))
    order = {label: i for i, label in enumerate(METHOD_LABELS.values())}
    return sorted(rows, key=lambda r: (r.setting != "dual", r.setting != "multi", r.setting, order[r.label]))


def table5_rows(config: dict) -> list[Row]:
    """Ours with T1 (the Table 3 model) and with T1 + T2, in the dual setting."""
    rows = []
    for e in _experiments(config):
        if e.method != "ours" or setting_of(e.datasets) != "dual" or e.bias_augmentation:
            continue
        if e.adversarial_weight != PAPER_LAMBDA:
            continue
        label = " + ".join(m.upper() for m in sorted(e.modalities))  # T1, T1 + T2; T2 alone has no paper row
        rows.append(Row("table5", label, e.name, setting="dual", paper=TABLE5.get(label)))
    return sorted(rows, key=lambda r: r.label)


def table6_experiments(config: dict) -> list[str]:
    """Generator-based experiments trained with the bias-field augmentation."""
    return [e.name for e in _experiments(config) if e.bias_augmentation and e.uses_generator]


def table7_rows(config: dict) -> list[Row]:
    """Ours in the dual setting on T1 without bias augmentation, one row per lambda."""
    rows = [Row("table7", f"λ = {e.adversarial_weight:g}", e.name, setting="dual",
                paper=TABLE7.get(e.adversarial_weight))
            for e in _experiments(config)
            if e.uses_discriminator and setting_of(e.datasets) == "dual" and e.modalities == ("t1",)
            and not e.bias_augmentation]
    return sorted(rows, key=lambda r: experiment_from_config(r.experiment, config).adversarial_weight)


def figure_methods(config: dict) -> tuple[str, dict[str, str]]:
    """The Table 3 setting shown in Figs. 1, 5–7 (the one with the most datasets, ``multi`` in
    the paper's design) and its experiments by method label; ``("", {})`` if there is none."""
    settings: dict[str, dict[str, str]] = {}
    for r in table3_rows(config):
        settings.setdefault(r.setting, {})[r.label] = r.experiment
    if not settings:
        return "", {}
    setting = max(settings, key=lambda s: (len(s.split("+")) if "+" in s else {"dual": 2, "multi": 3}.get(s, 1),
                                           len(settings[s])))
    return setting, settings[setting]
