from dnorm.evaluation.probe import probe_dataset_invariance
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    probe_dataset_invariance(
        {"Pre-processor": snakemake.input.preprocessor, "Ours": snakemake.input.ours},
        snakemake.input.manifest,
        snakemake.input.patches,
        count=snakemake.params.patches_per_dataset,
        seed=snakemake.params.seed,
        setting=snakemake.wildcards.setting,
        model_seed=int(snakemake.wildcards.seed),
        out_csv=snakemake.output.probe,
        gpus=snakemake.resources.gpu,
        batch_size=snakemake.params.batch_size,
    )
