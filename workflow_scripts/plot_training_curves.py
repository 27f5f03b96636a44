from dnorm.figures.training import plot_training_curves
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    plot_training_curves(dict(zip(snakemake.params.experiments, snakemake.input.histories)), snakemake.output.figure)
