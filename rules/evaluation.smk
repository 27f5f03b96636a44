# Stage 4: every trained model (experiment × seed) predicts its test subjects (one job each),
# then per-model metrics, then Tables 2-7 and the paper's claims from the metric CSVs.


rule segment_test_subject:
    input:
        model=f"{MODEL_DIR}/model.pt",
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
    output:
        labels=f"{PREDICTION}_labels.nii.gz",
        normalized=f"{PREDICTION}_normalized.nii.gz",
        **({"probabilities": f"{PREDICTION}_probabilities.nii.gz"} if EVALUATION["write_probabilities"] else {}),
    params:
        stride=EVALUATION["stride"],
        batch_size=EVALUATION["batch_size"],
    log:
        f"{RESULTS}/logs/segment_test_subject/{{experiment}}/seed-{{seed}}/{{dataset}}/{{subject}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/segment_test_subject/{{experiment}}/seed-{{seed}}/{{dataset}}/{{subject}}.tsv"
    wildcard_constraints:
        experiment=EXPERIMENT_PATTERN,
        seed=r"\d+",
        dataset=r"[^/]+",
        subject=r"[^/]+",
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/segment_test_subject.py"


rule score_segmentations:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
        labels=subject_predictions("labels"),
    output:
        scores=f"{METRICS_DIR}/segmentation.csv",
    params:
        subjects=lambda wildcards: evaluation_subjects(wildcards.experiment),
    log:
        f"{RESULTS}/logs/score_segmentations/{{experiment}}/seed-{{seed}}.log",
    wildcard_constraints:
        experiment=EXPERIMENT_PATTERN,
        seed=r"\d+",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/score_segmentations.py"


rule measure_intensity_divergence:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
        normalized=subject_predictions("normalized"),
    output:
        divergence=f"{METRICS_DIR}/divergence.csv",
    params:
        subjects=lambda wildcards: evaluation_subjects(wildcards.experiment),
        bins=config["figures"]["histogram_bins"],
    log:
        f"{RESULTS}/logs/measure_intensity_divergence/{{experiment}}/seed-{{seed}}.log",
    wildcard_constraints:
        experiment="|".join(GENERATOR_EXPERIMENTS) or "(?!)",
        seed=r"\d+",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/measure_intensity_divergence.py"


rule measure_bias_robustness:
    input:
        model=f"{MODEL_DIR}/model.pt",
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
    output:
        correlations=f"{METRICS_DIR}/bias.csv",
        profiles=f"{METRICS_DIR}/bias_profiles.csv",
        examples=f"{METRICS_DIR}/bias_examples.npz",
    params:
        subjects=lambda wildcards: evaluation_subjects(wildcards.experiment),
        alphas=EVALUATION["bias_alphas"],
        stride=EVALUATION["stride"],
        batch_size=EVALUATION["batch_size"],
    log:
        f"{RESULTS}/logs/measure_bias_robustness/{{experiment}}/seed-{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/measure_bias_robustness/{{experiment}}/seed-{{seed}}.tsv"
    wildcard_constraints:
        experiment="|".join(BIAS_EXPERIMENTS) or "(?!)",
        seed=r"\d+",
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/measure_bias_robustness.py"


rule evaluate_discriminator:
    input:
        model=f"{MODEL_DIR}/model.pt",
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
        patches=experiment_patch_tables,
    output:
        confusion=f"{METRICS_DIR}/discriminator.csv",
    params:
        patches_per_dataset=EVALUATION["discriminator_patches"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/evaluate_discriminator/{{experiment}}/seed-{{seed}}.log",
    wildcard_constraints:
        experiment="|".join(DISCRIMINATOR_EXPERIMENTS) or "(?!)",
        seed=r"\d+",
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/evaluate_discriminator.py"


rule probe_dataset_invariance:
    input:
        unpack(probe_inputs),
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
    output:
        probe=PROBE_METRICS,
    params:
        patches_per_dataset=EVALUATION["discriminator_patches"],
        seed=config["seed"],
        batch_size=EVALUATION["batch_size"],
    log:
        f"{RESULTS}/logs/probe_dataset_invariance/{{setting}}/seed-{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/probe_dataset_invariance/{{setting}}/seed-{{seed}}.tsv"
    wildcard_constraints:
        setting=dataset_pattern([re.escape(s) for s in PROBE_SETTINGS]),
        seed=r"\d+",
    threads: 2
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/probe_dataset_invariance.py"


rule tabulate_probe:
    input:
        probe=expand(PROBE_METRICS, setting=PROBE_SETTINGS, seed=SEEDS),
    output:
        table=report(f"{RESULTS}/tables/table_probe.csv", caption="report/table_probe.rst", category="3. Results",
                     labels={"table": "Table P (beyond the paper): invariance probe"}),
    params:
        config=config,
    log:
        f"{RESULTS}/logs/tabulate_probe.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/tabulate_probe.py"


rule tabulate_results:
    input:
        segmentation=per_model(f"{METRICS_DIR}/segmentation.csv", EXPERIMENTS),
        divergence=per_model(f"{METRICS_DIR}/divergence.csv", GENERATOR_EXPERIMENTS),
        bias=per_model(f"{METRICS_DIR}/bias.csv", BIAS_EXPERIMENTS),
        discriminator=per_model(f"{METRICS_DIR}/discriminator.csv", DISCRIMINATOR_EXPERIMENTS),
        probe=expand(PROBE_METRICS, setting=PROBE_SETTINGS, seed=SEEDS),
    output:
        **{name: report(f"{RESULTS}/tables/{name}.csv", caption=f"report/{name}.rst", category="3. Results",
                        labels={"table": title})
           for name, title in TABLES.items()},
    params:
        config=config,
    log:
        f"{RESULTS}/logs/tabulate_results.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/tabulate_results.py"


rule tabulate_budget_curve:
    input:
        histories=[f"{MODEL_DIR}/history.csv".format(experiment=e, seed=s) for e, s in budget_models()],
        segmentation=[f"{METRICS_DIR}/segmentation.csv".format(experiment=e, seed=s) for e, s in budget_models()],
    output:
        table=report(f"{RESULTS}/tables/budget_curve.csv", caption="report/budget_curve_table.rst",
                     category="3. Results", labels={"table": "Budget curve: Dice against training budget"}),
    params:
        models=budget_models(),
        config=config,
    log:
        f"{RESULTS}/logs/tabulate_budget_curve.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/tabulate_budget_curve.py"


rule tabulate_ablation:
    input:
        cells=[ABLATION_ROW.format(experiment=c.experiment, variant=c.variant, seed=c.seed) for c in ABLATION_CELLS],
    output:
        table=report(f"{RESULTS}/tables/ablation.csv", caption="report/ablation_table.rst",
                     category="2. Training", labels={"table": "Ablation: training variants on validation"}),
    params:
        variants=list(ABLATION_VARIANTS),
    log:
        f"{RESULTS}/logs/tabulate_ablation.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/tabulate_ablation.py"
