from dnorm.evaluation.discriminator import evaluate_discriminator
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    evaluate_discriminator(
        snakemake.input.model,
        snakemake.input.manifest,
        snakemake.input.patches,
        count=snakemake.params.patches_per_dataset,
        seed=snakemake.params.seed,
        experiment_name=snakemake.wildcards.experiment,
        model_seed=int(snakemake.wildcards.seed),
        out_csv=snakemake.output.confusion,
        gpus=snakemake.resources.gpu,
    )
