# Shared paths and target functions. Outputs live under results/<run_name>/ so that runs with
# different configs never mix (and a report only sees its own run).
import re
from argparse import Namespace

import dnorm.config
from dnorm.evaluation import paper
from dnorm.evaluation.budget import budget_experiments
from dnorm.evaluation.plan import test_datasets, test_subjects, training_seeds
from dnorm.evaluation.selection import select_experiments
from dnorm.manifest import read_manifest
from dnorm.training.ablation import ablation_cells, ablation_variants, shares_warmup
from dnorm.training.experiment import experiment_from_config
from dnorm.training.warmup import warmup_experiment, warmup_key

try:
    dnorm.config.check_config(config, " + ".join(CONFIG_FILES))
    # The whole workflow reads config["experiments"]: restrict it once, here.
    config["experiments"] = select_experiments(config, " + ".join(CONFIG_FILES))
except ValueError as error:  # one line naming the files, no traceback
    raise WorkflowError(str(error)) from None

RESULTS = f"results/{config['run_name']}"
DATASETS = sorted(config["datasets"])
SYNTHETIC_DATASETS = [d for d in DATASETS if config["datasets"][d]["source"] == "synthetic"]
IMPORTED_DATASETS = [d for d in DATASETS if d not in SYNTHETIC_DATASETS]
EXPERIMENTS = sorted(config["experiments"])
EXPERIMENT_PATTERN = "|".join(re.escape(e) for e in EXPERIMENTS) or "(?!)"
SEEDS = training_seeds(config)
MODEL_DIR = f"{RESULTS}/models/{{experiment}}/seed-{{seed}}"
METRICS_DIR = f"{RESULTS}/metrics/{{experiment}}/seed-{{seed}}"
PREDICTION = f"{RESULTS}/predictions/{{experiment}}/seed-{{seed}}/{{dataset}}/{{subject}}"
EVALUATION = config["evaluation"]
# Tables 4 and 7 (and the claims) read only the study's budget: other budgets are segmented and
# scored for the budget curve, nothing more.
PAPER_EXPERIMENTS = [e for e in EXPERIMENTS if experiment_from_config(e, config).budget == 1]
GENERATOR_EXPERIMENTS = [e for e in PAPER_EXPERIMENTS if experiment_from_config(e, config).uses_generator]
DISCRIMINATOR_EXPERIMENTS = [e for e in PAPER_EXPERIMENTS if experiment_from_config(e, config).uses_discriminator]
BIAS_EXPERIMENTS = paper.table6_experiments(config)
BUDGET_EXPERIMENTS = budget_experiments(config)  # on a budget curve (config/budget.yaml)
for _name in EXPERIMENTS:
    test_datasets(_name, config)  # fail at start-up on a bad test_datasets entry


def dataset_pattern(names):
    """Wildcard constraint matching exactly ``names`` (a never-matching one if empty)."""
    return "|".join(names) if names else "(?!)"


def cropped_manifests(wildcards):
    return expand(f"{RESULTS}/cropped/{{dataset}}/manifest.csv", dataset=DATASETS)


def dnorm_experiment(name):
    return experiment_from_config(name, config)


def experiment_patch_tables(wildcards):
    datasets = dnorm_experiment(wildcards.experiment).datasets
    return [f"{RESULTS}/patches/{dataset}.csv" for dataset in datasets]


# Shared warm-ups (dnorm/training/warmup.py): key -> the G + S experiment that runs it.
WARMUPS = {}
for _name in EXPERIMENTS:
    _key = warmup_key(dnorm_experiment(_name), config["training"])
    if _key is not None:
        WARMUPS.setdefault(_key, warmup_experiment(dnorm_experiment(_name), config["training"]))
WARMUP_PATTERN = "|".join(re.escape(k) for k in WARMUPS) or "(?!)"
WARMUP_FILE = f"{RESULTS}/warmups/{{warmup}}/seed-{{seed}}/warmup.pt"


def experiment_warmup(wildcards):
    """The shared warm-up an experiment starts from, or none."""
    key = warmup_key(dnorm_experiment(wildcards.experiment), config["training"])
    return [] if key is None else WARMUP_FILE.format(warmup=key, seed=wildcards.seed)


# Scheduling: among ready jobs Snakemake starts the highest priority first. Warm-ups gate most
# trainings, and the longest trainings should start first so that no long job runs alone at the
# end (on 2 CPU cores one late Ours training kept a core idle for ~10 min).
WARMUP_PRIORITY = 1000


def training_priority(wildcards):
    """A training's rough cost: Ours > Pre-processor > S alone, times datasets and budget."""
    experiment = dnorm_experiment(wildcards.experiment)
    weight = {"ours": 3, "preprocessor": 2}.get(experiment.method, 1)
    return int(10 * weight * len(experiment.datasets) * len(experiment.modalities) * experiment.budget)


# Ablation (config/ablation.yaml): one job per experiment × variant × seed, its validation Dice
# in a one-row CSV (dnorm/training/ablation.py).
try:
    ABLATION_CELLS = ablation_cells(config)
except ValueError as error:  # an ablation experiment left out by experiments_enabled
    raise WorkflowError(f"{' + '.join(CONFIG_FILES)}: ablation.experiments: {error}") from None
ABLATION_VARIANTS = ablation_variants(config)
ABLATION_ROW = f"{RESULTS}/ablation/{{experiment}}/{{variant}}/seed-{{seed}}.csv"


def ablation_inputs(wildcards):
    """The cell's data; for the default variant at a study seed, the study's own training (its
    history is the cell); else the shared warm-up where the variant keeps it."""
    inputs = {"manifest": f"{RESULTS}/preprocessed/manifest.csv", "patches": experiment_patch_tables(wildcards)}
    overrides = ABLATION_VARIANTS[wildcards.variant]
    if not overrides and int(wildcards.seed) in SEEDS:
        inputs["history"] = f"{MODEL_DIR}/history.csv".format(**wildcards)
    elif shares_warmup(overrides):
        inputs["warmup"] = experiment_warmup(wildcards)
    return inputs


def warmup_patch_tables(wildcards):
    return [f"{RESULTS}/patches/{dataset}.csv" for dataset in WARMUPS[wildcards.warmup].datasets]


def evaluation_subjects(experiment):
    """(dataset, subject) pairs an experiment is tested on, from the harmonized manifest."""
    manifest = read_manifest(checkpoints.harmonize_datasets.get().output.manifest, check_files=False)
    return test_subjects(manifest, test_datasets(experiment, config))


def subject_predictions(kind):
    """Input function: one prediction file of ``kind`` (labels, normalized) per test subject."""

    def files(wildcards):
        return [PREDICTION.format(experiment=wildcards.experiment, seed=wildcards.seed, dataset=d, subject=s)
                + f"_{kind}.nii.gz" for d, s in evaluation_subjects(wildcards.experiment)]

    return files


def per_model(path, experiments):
    """``path`` (with {experiment} and {seed}) for every experiment and seed."""
    return expand(path, experiment=experiments, seed=SEEDS)


# Results tables (tables/<name>.csv) and their titles in the report.
TABLES = {
    "claims": "Claims C1-C6 of the paper (and P1, beyond it): verdicts",  # sorts first: the report orders entries by label
    "table2_cross_dataset": "Table 2: cross-dataset Dice",
    "table3_methods": "Table 3: Dice and MHD per method",
    "table4_divergence": "Table 4: JSD of intensity distributions",
    "table5_modalities": "Table 5: T1 vs T1 + T2",
    "table6_bias": "Table 6: Pearson bias",
    "table7_lambda": "Table 7: lambda and discriminator accuracy",
    "paired_tests": "Paired tests between methods",
}


def evaluation_targets():
    return expand(f"{RESULTS}/tables/{{name}}.csv", name=TABLES) + probe_targets() + budget_targets() + ablation_targets()


def ablation_targets():
    return [f"{RESULTS}/tables/ablation.csv"] if ABLATION_CELLS else []


def budget_targets():
    if not BUDGET_EXPERIMENTS:
        return []
    return [f"{RESULTS}/tables/budget_curve.csv", f"{RESULTS}/figures/budget_curve.png"]


def budget_models():
    """(experiment, seed) of every budget-curve model, in one order for inputs and params."""
    return [(experiment, seed) for experiment in BUDGET_EXPERIMENTS for seed in SEEDS]


# Invariance probe (beyond the paper): per Table 3 setting with both a Pre-processor and an Ours
# model, the same selection as dnorm.evaluation.probe.probe_settings (not imported here: it loads
# torch, which every job's parse would pay for).
PROBED_METHODS = ("Pre-processor", "Ours")
PROBE_SETTINGS = {}
for _row in paper.table3_rows(config):
    PROBE_SETTINGS.setdefault(_row.setting, {})[_row.label] = _row.experiment
PROBE_SETTINGS = {setting: {m: methods[m] for m in PROBED_METHODS} for setting, methods in PROBE_SETTINGS.items()
                  if set(PROBED_METHODS) <= set(methods)}
PROBE_METRICS = f"{RESULTS}/metrics/probe/{{setting}}/seed-{{seed}}.csv"


def probe_inputs(wildcards):
    """The setting's Pre-processor and Ours models (this training seed) and its datasets' patch tables."""
    methods = PROBE_SETTINGS[wildcards.setting]
    model = f"{MODEL_DIR}/model.pt"
    return {
        "preprocessor": model.format(experiment=methods["Pre-processor"], seed=wildcards.seed),
        "ours": model.format(experiment=methods["Ours"], seed=wildcards.seed),
        "patches": experiment_patch_tables(Namespace(experiment=methods["Ours"])),
    }


def probe_targets():
    return [f"{RESULTS}/tables/table_probe.csv"] if PROBE_SETTINGS else []


def all_targets():
    return [
        f"{RESULTS}/tables/domain_gap.csv",
        f"{RESULTS}/figures/fig2_intensity_distributions.png",
        f"{RESULTS}/figures/fig2b_site_distributions.png",
        *per_model(f"{MODEL_DIR}/model.pt", EXPERIMENTS),
        f"{RESULTS}/figures/training_curves.png",
        *evaluation_targets(),
        *figure_targets(),
    ]


# Figures 1 and 4-9: which experiments they show (first training seed).
FIGURE_SETTING, FIGURE_METHODS = paper.figure_methods(config)
LAMBDA_ROWS = paper.table7_rows(config)


FIGURE_GENERATORS = {m: e for m, e in FIGURE_METHODS.items() if m in ("Pre-processor", "Ours")}


def figure_predictions(kind, generators_only=False):
    """Input function: ``kind`` prediction files of every figure method's test subjects."""
    methods = FIGURE_GENERATORS if generators_only else FIGURE_METHODS

    def files(wildcards):
        return [path for experiment in methods.values()
                for path in subject_predictions(kind)(Namespace(experiment=experiment, seed=SEEDS[0]))]

    return files


def figure_subjects():
    """Test subjects of the figures' setting (the same for each of its methods)."""
    return evaluation_subjects(next(iter(FIGURE_METHODS.values())))


def figure_targets():
    figures = []
    if FIGURE_METHODS:
        figures.append("fig5_segmentations.png")
        if FIGURE_GENERATORS:
            figures += ["fig1_input_vs_normalized.png", "fig6_patches.png", "fig7_class_histograms.png"]
    if BIAS_EXPERIMENTS:
        figures += ["fig4_bias_examples.png", "fig8_bias_profiles.png"]
    if LAMBDA_ROWS:
        figures.append("fig9_confusion_matrices.png")
    return [f"{RESULTS}/figures/{name}" for name in figures]


def figure_report(name, label):
    """A results figure (figures/<name>.png) in the report, captioned by report/<name>.rst."""
    return report(f"{RESULTS}/figures/{name}.png", caption=f"report/{name}.rst", category="4. Figures",
                  labels={"figure": label})
