from dnorm.evaluation.figures import per_method_files, plot_normalization_examples
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    subjects = snakemake.params.subjects
    plot_normalization_examples(
        snakemake.input.manifest,
        subjects,
        per_method_files(snakemake.params.methods, subjects, snakemake.input.normalized),
        snakemake.output.fig1,
        snakemake.output.fig6,
        seed=snakemake.params.seed,
    )
