from dnorm.preprocess.pipeline import harmonize_datasets
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    harmonize_datasets(
        snakemake.input.manifests,
        splits=snakemake.params.splits,
        seed=snakemake.params.seed,
        clip_percentile=snakemake.params.clip_percentile,
        min_shape=snakemake.params.min_shape,
        out_dir=snakemake.output.manifest.rsplit("/", 1)[0],
    )
