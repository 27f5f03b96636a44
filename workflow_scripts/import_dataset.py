from dnorm.datasets import import_dataset
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    import_dataset(
        snakemake.wildcards.dataset,
        snakemake.params.entry,
        out_dir=snakemake.output.manifest.rsplit("/", 1)[0],
    )
