from dnorm.evaluation.figures import plot_discriminator
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    plot_discriminator(dict(zip(snakemake.params.labels, snakemake.input.confusion)), snakemake.output.figure)
