# Stage 1: the datasets, as a manifest CSV per dataset: synthetic, or imported (real data in its
# distributed layout, or a manifest of one's own data).


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
    # Subjects in parallel processes: nothing else can run before every dataset is drawn.
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/synthesize_dataset.py"


rule import_dataset:
    input:
        source=lambda wildcards: config["datasets"][wildcards.dataset]["path"],
    output:
        manifest=f"{RESULTS}/raw/{{dataset}}/manifest.csv",
    params:
        entry=lambda wildcards: config["datasets"][wildcards.dataset],
    log:
        f"{RESULTS}/logs/import_dataset/{{dataset}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/import_dataset/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=dataset_pattern(IMPORTED_DATASETS),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/import_dataset.py"
