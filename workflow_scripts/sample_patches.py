from dnorm.manifest import read_manifest
from dnorm.training.patches import write_patch_table
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    write_patch_table(
        read_manifest(snakemake.input.manifest),
        snakemake.wildcards.dataset,
        counts=snakemake.params.counts,
        seed=snakemake.params.seed,
        path=snakemake.output.patches,
    )
