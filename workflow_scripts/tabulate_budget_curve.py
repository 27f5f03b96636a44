from dnorm.evaluation.budget import write_budget_curve_table
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    write_budget_curve_table(snakemake.params.models, snakemake.input.histories, snakemake.input.segmentation,
                             snakemake.params.config, snakemake.output.table)
