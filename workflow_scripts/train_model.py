from dnorm.training.run import train_experiment
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    train_experiment(
        snakemake.params.experiment,
        snakemake.params.training,
        snakemake.params.seed,
        manifest_path=snakemake.input.manifest,
        patch_tables=snakemake.input.patches,
        model_path=snakemake.output.model,
        history_path=snakemake.output.history,
        card_path=snakemake.output.card,
        checkpoint_path=snakemake.params.checkpoint,
        gpus=snakemake.resources.gpu,
        threads=snakemake.threads,
        preprocess=snakemake.params.preprocess,
        warmup_path=snakemake.input.warmup or None,
    )
