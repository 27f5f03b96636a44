# Stage 3: patch centres (once per dataset, shared by every experiment), then one training job
# per experiment. Checkpoints live outside the declared outputs, so a killed job resumes.


rule sample_patches:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
    output:
        patches=f"{RESULTS}/patches/{{dataset}}.csv",
    params:
        counts={
            "train": config["training"]["train_patches_per_dataset"],
            "val": config["training"]["val_patches_per_dataset"],
        },
        seed=config["seed"],
    log:
        f"{RESULTS}/logs/sample_patches/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/sample_patches.py"


# G's warm-up, once for all the experiments that warm up identically (Pre-processor and the Ours
# variants of one setting); train_model starts them from it.
rule warm_up_generator:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
        patches=warmup_patch_tables,
    output:
        warmup=WARMUP_FILE,
    params:
        experiment=lambda wildcards: WARMUPS[wildcards.warmup],
        training=config["training"],
        preprocess=config["preprocess"],
        seed=lambda wildcards: int(wildcards.seed),
        checkpoint=lambda wildcards: f"{RESULTS}/checkpoints/warmups/{wildcards.warmup}/seed-{wildcards.seed}/last.pt",
    log:
        f"{RESULTS}/logs/warm_up_generator/{{warmup}}/seed-{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/warm_up_generator/{{warmup}}/seed-{{seed}}.tsv"
    wildcard_constraints:
        warmup=WARMUP_PATTERN,
        seed=r"\d+",
    priority: WARMUP_PRIORITY
    threads: 4  # capped to --cores locally; profiles may set-threads
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/warm_up_generator.py"


rule train_model:
    input:
        manifest=f"{RESULTS}/preprocessed/manifest.csv",
        patches=experiment_patch_tables,
        warmup=experiment_warmup,
    output:
        model=f"{MODEL_DIR}/model.pt",
        history=f"{MODEL_DIR}/history.csv",
        card=f"{MODEL_DIR}/model_card.json",
    params:
        experiment=lambda wildcards: dnorm_experiment(wildcards.experiment),
        training=config["training"],
        preprocess=config["preprocess"],
        seed=lambda wildcards: int(wildcards.seed),
        checkpoint=lambda wildcards: f"{RESULTS}/checkpoints/{wildcards.experiment}/seed-{wildcards.seed}/last.pt",
    log:
        f"{RESULTS}/logs/train_model/{{experiment}}/seed-{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_model/{{experiment}}/seed-{{seed}}.tsv"
    wildcard_constraints:
        experiment=EXPERIMENT_PATTERN,
        seed=r"\d+",
    priority: training_priority
    threads: 4  # capped to --cores locally; profiles may set-threads
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/train_model.py"


# One ablation cell: a training with the variant's settings, kept only as its validation Dice.
rule train_ablation_cell:
    input:
        unpack(ablation_inputs),
    output:
        row=ABLATION_ROW,
    params:
        experiment=lambda wildcards: dnorm_experiment(wildcards.experiment),
        overrides=lambda wildcards: ABLATION_VARIANTS[wildcards.variant],
        training=config["training"],
        preprocess=config["preprocess"],
        checkpoint=lambda wildcards: (f"{RESULTS}/checkpoints/ablation/{wildcards.experiment}/{wildcards.variant}/"
                                      f"seed-{wildcards.seed}/last.pt"),
    log:
        f"{RESULTS}/logs/train_ablation_cell/{{experiment}}/{{variant}}/seed-{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_ablation_cell/{{experiment}}/{{variant}}/seed-{{seed}}.tsv"
    wildcard_constraints:
        experiment=EXPERIMENT_PATTERN,
        variant="|".join(re.escape(v) for v in ABLATION_VARIANTS),
        seed=r"\d+",
    priority: training_priority
    threads: 4  # capped to --cores locally; profiles may set-threads
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/train_ablation_cell.py"


rule plot_training_curves:
    input:
        histories=expand(f"{MODEL_DIR}/history.csv", experiment=EXPERIMENTS, seed=SEEDS[0]),
    output:
        figure=report(
            f"{RESULTS}/figures/training_curves.png",
            caption="report/training_curves.rst",
            category="2. Training",
            labels={"figure": "training curves"},
        ),
    params:
        experiments=EXPERIMENTS,
    log:
        f"{RESULTS}/logs/plot_training_curves.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../envs/dnorm.yaml"
    script:
        "../workflow_scripts/plot_training_curves.py"
