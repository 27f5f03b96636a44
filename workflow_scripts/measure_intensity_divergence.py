from dnorm.evaluation.divergence import measure_divergence
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    measure_divergence(
        snakemake.input.manifest,
        snakemake.params.subjects,
        snakemake.input.normalized,
        snakemake.wildcards.experiment,
        int(snakemake.wildcards.seed),
        snakemake.params.bins,
        snakemake.output.divergence,
    )
