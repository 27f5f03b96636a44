from dnorm.preprocess.pipeline import preprocess_dataset
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    preprocess_dataset(
        snakemake.input.manifest,
        snakemake.params.spacing,
        out_dir=snakemake.output.manifest.rsplit("/", 1)[0],
        skull_stripped=snakemake.params.skull_stripped,
        threads=snakemake.threads,
    )
