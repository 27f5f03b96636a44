from dnorm.evaluation.probe import write_probe_table
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    write_probe_table(list(snakemake.input.probe), snakemake.params.config, snakemake.output.table)
