# Stage 1: the datasets, as a manifest CSV per dataset (synthetic here; real data: ingest).


rule synthesize_dataset:
    output:
        manifest=f"{RESULTS}/raw/{{dataset}}/manifest.csv",
    params:
        dataset=lambda wildcards: config["datasets"][wildcards.dataset],
        synth=config["synth"],
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/synthesize_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/synthesize_dataset/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern(SYNTHETIC_DATASETS),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/synthesize_dataset.py"
