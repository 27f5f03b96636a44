from dnorm.evaluation.figures import plot_bias
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    plot_bias(snakemake.input.profiles[0], snakemake.input.examples[0], snakemake.output.fig4, snakemake.output.fig8)
