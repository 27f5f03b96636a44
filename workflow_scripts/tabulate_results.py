from dnorm.evaluation.results import write_results_tables
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    write_results_tables(
        {kind: list(snakemake.input[kind]) for kind in ("segmentation", "divergence", "bias", "discriminator", "probe")},
        snakemake.params.config,
        dict(snakemake.output.items()),
    )
