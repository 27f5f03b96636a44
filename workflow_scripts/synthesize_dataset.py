from dnorm.synth.benchmark import synthesize_dataset
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    synthesize_dataset(
        snakemake.wildcards.dataset,
        snakemake.params.dataset,
        snakemake.params.synth,
        snakemake.params.seed,
        out_dir=snakemake.output.manifest.rsplit("/", 1)[0],
        workers=snakemake.threads,
    )
