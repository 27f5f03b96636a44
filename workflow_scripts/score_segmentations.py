from dnorm.evaluation.scores import score_experiment
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    score_experiment(
        snakemake.input.manifest,
        dict(zip(snakemake.params.subjects, snakemake.input.labels)),
        snakemake.wildcards.experiment,
        int(snakemake.wildcards.seed),
        snakemake.output.scores,
    )
