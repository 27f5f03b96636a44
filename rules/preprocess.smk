# Stage 2: resampling, skull stripping, cropping (per dataset), then one common shape,
# [0, 1] scaling and the splits (over all datasets).


rule preprocess_dataset:
    input:
        manifest=f"{RESULTS}/raw/{{dataset}}/manifest.csv",
    output:
        manifest=f"{RESULTS}/cropped/{{dataset}}/manifest.csv",
    params:
        spacing=config["preprocess"]["spacing"],
        skull_stripped=lambda wildcards: config["datasets"][wildcards.dataset].get("skull_stripped", True),
    log:
        f"{RESULTS}/logs/preprocess_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/preprocess_dataset/{{dataset}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/preprocess_dataset.py"


# A checkpoint: the evaluation rules read the test subjects from its manifest.
checkpoint harmonize_datasets:
    input:
        manifests=cropped_manifests,
    output:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
    params:
        splits={name: d["split"] for name, d in config["datasets"].items()},
        seed=config["seed"],
        clip_percentile=config["preprocess"]["clip_percentile"],
        min_shape=config["preprocess"]["min_shape"],
    log:
        f"{RESULTS}/logs/harmonize_datasets.log",
    benchmark:
        f"{RESULTS}/benchmarks/harmonize_datasets.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/harmonize_datasets.py"


rule measure_domain_gap:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
    output:
        summary=report(
            f"{RESULTS}/tables/domain_gap.csv",
            caption="report/domain_gap.rst",
            category="1. Data",
            labels={"table": "domain gap"},
        ),
        subjects=f"{RESULTS}/tables/domain_gap_subjects.csv",
    log:
        f"{RESULTS}/logs/measure_domain_gap.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/measure_domain_gap.py"
