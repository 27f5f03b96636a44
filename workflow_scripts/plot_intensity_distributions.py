from dnorm.figures.intensity import plot_figure2
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    plot_figure2(
        snakemake.input.manifest,
        bins=snakemake.params.bins,
        datasets_png=snakemake.output.datasets,
        sites_png=snakemake.output.sites,
        histograms_csv=snakemake.output.histograms,
    )
