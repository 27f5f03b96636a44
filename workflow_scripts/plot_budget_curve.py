import pandas as pd

from dnorm.figures.budget import plot_budget_curve
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    plot_budget_curve(pd.read_csv(snakemake.input.table), snakemake.output.figure)
