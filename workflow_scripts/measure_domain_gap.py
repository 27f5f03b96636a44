from dnorm.domain_gap import write_domain_gap_tables
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    write_domain_gap_tables(snakemake.input.manifest, snakemake.output.summary, snakemake.output.subjects)
