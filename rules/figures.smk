# Figures of the paper, each with a caption in the report.


rule plot_intensity_distributions:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
    output:
        datasets=report(
            f"{RESULTS}/figures/fig2_intensity_distributions.png",
            caption="report/fig2_intensity_distributions.rst",
            category="1. Data",
            labels={"figure": "Fig. 2 per-class intensities"},
        ),
        sites=report(
            f"{RESULTS}/figures/fig2b_site_distributions.png",
            caption="report/fig2b_site_distributions.rst",
            category="1. Data",
            labels={"figure": "Fig. 2b per-site intensities"},
        ),
        histograms=f"{RESULTS}/tables/fig2_histograms.csv",
    params:
        bins=config["figures"]["histogram_bins"],
    log:
        f"{RESULTS}/logs/plot_intensity_distributions.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_intensity_distributions.py"


rule plot_segmentation_examples:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
        labels=figure_predictions("labels"),
    output:
        figure=figure_report("fig5_segmentations", "Fig. 5 segmentations"),
    params:
        methods=FIGURE_METHODS,
        subjects=lambda wildcards: figure_subjects(),
    log:
        f"{RESULTS}/logs/plot_segmentation_examples.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_segmentation_examples.py"


rule plot_normalization_examples:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
        normalized=figure_predictions("normalized", generators_only=True),
    output:
        fig1=figure_report("fig1_input_vs_normalized", "Fig. 1 inputs vs normalized"),
        fig6=figure_report("fig6_patches", "Fig. 6 patches"),
    params:
        methods=FIGURE_GENERATORS,
        subjects=lambda wildcards: figure_subjects(),
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/plot_normalization_examples.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_normalization_examples.py"


rule plot_class_histograms:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
        normalized=figure_predictions("normalized", generators_only=True),
    output:
        figure=figure_report("fig7_class_histograms", "Fig. 7 per-class histograms"),
    params:
        methods=FIGURE_GENERATORS,
        subjects=lambda wildcards: figure_subjects(),
        bins=config["figures"]["histogram_bins"],
    log:
        f"{RESULTS}/logs/plot_class_histograms.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_class_histograms.py"


rule plot_bias_robustness:
    input:
        profiles=expand(f"{METRICS_DIR}/bias_profiles.csv", experiment=BIAS_EXPERIMENTS[:1], seed=SEEDS[0]),
        examples=expand(f"{METRICS_DIR}/bias_examples.npz", experiment=BIAS_EXPERIMENTS[:1], seed=SEEDS[0]),
    output:
        fig4=figure_report("fig4_bias_examples", "Fig. 4 bias field"),
        fig8=figure_report("fig8_bias_profiles", "Fig. 8 intensity along y"),
    log:
        f"{RESULTS}/logs/plot_bias_robustness.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_bias_robustness.py"


rule plot_confusion_matrices:
    input:
        confusion=[f"{RESULTS}/metrics/{row.experiment}/seed-{SEEDS[0]}/discriminator.csv" for row in LAMBDA_ROWS],
    output:
        figure=figure_report("fig9_confusion_matrices", "Fig. 9 discriminator confusion"),
    params:
        labels=[row.label for row in LAMBDA_ROWS],
    log:
        f"{RESULTS}/logs/plot_confusion_matrices.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_confusion_matrices.py"


rule plot_budget_curve:
    input:
        table=f"{RESULTS}/tables/budget_curve.csv",
    output:
        figure=figure_report("budget_curve", "Budget curve"),
    log:
        f"{RESULTS}/logs/plot_budget_curve.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_budget_curve.py"
