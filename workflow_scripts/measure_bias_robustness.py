from dnorm.evaluation.bias import measure_bias_robustness
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    measure_bias_robustness(
        snakemake.input.model,
        snakemake.input.manifest,
        snakemake.params.subjects,
        snakemake.params.alphas,
        snakemake.wildcards.experiment,
        int(snakemake.wildcards.seed),
        correlations_csv=snakemake.output.correlations,
        profiles_csv=snakemake.output.profiles,
        examples_npz=snakemake.output.examples,
        stride=snakemake.params.stride,
        batch_size=snakemake.params.batch_size,
        gpus=snakemake.resources.gpu,
    )
