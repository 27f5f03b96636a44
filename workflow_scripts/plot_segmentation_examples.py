from dnorm.evaluation.figures import per_method_files, plot_segmentation_examples
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    subjects = snakemake.params.subjects
    plot_segmentation_examples(
        snakemake.input.manifest,
        subjects,
        per_method_files(snakemake.params.methods, subjects, snakemake.input.labels),
        snakemake.output.figure,
    )
