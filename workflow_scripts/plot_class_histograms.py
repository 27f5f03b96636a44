from dnorm.evaluation.figures import per_method_files, plot_histograms
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    subjects = snakemake.params.subjects
    plot_histograms(
        snakemake.input.manifest,
        subjects,
        per_method_files(snakemake.params.methods, subjects, snakemake.input.normalized),
        snakemake.output.figure,
        bins=snakemake.params.bins,
    )
