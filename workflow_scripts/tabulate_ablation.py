from dnorm.evaluation.ablation import write_ablation_table
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    write_ablation_table(snakemake.input.cells, snakemake.params.variants, snakemake.output.table)
