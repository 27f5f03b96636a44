from dnorm.training.run import warm_up_generator
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    warm_up_generator(
        snakemake.params.experiment,
        snakemake.params.training,
        snakemake.params.seed,
        manifest_path=snakemake.input.manifest,
        patch_tables=snakemake.input.patches,
        warmup_path=snakemake.output.warmup,
        checkpoint_path=snakemake.params.checkpoint,
        gpus=snakemake.resources.gpu,
        threads=snakemake.threads,
        preprocess=snakemake.params.preprocess,
    )
