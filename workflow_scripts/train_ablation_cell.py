import pandas as pd

from dnorm.training.ablation import AblationCell, ablation_row, write_ablation_row
from dnorm.training.run import train_ablation_cell
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    cell = AblationCell(snakemake.wildcards.experiment, snakemake.wildcards.variant, int(snakemake.wildcards.seed))
    if snakemake.input.get("history"):  # the default variant at a study seed: the study's training is the cell
        history = pd.read_csv(snakemake.input.history)
        write_ablation_row(ablation_row(cell, snakemake.params.overrides, history), snakemake.output.row)
    else:
        train_ablation_cell(
            cell,
            snakemake.params.experiment,
            snakemake.params.training,
            snakemake.params.overrides,
            manifest_path=snakemake.input.manifest,
            patch_tables=snakemake.input.patches,
            row_path=snakemake.output.row,
            checkpoint_path=snakemake.params.checkpoint,
            gpus=snakemake.resources.gpu,
            threads=snakemake.threads,
            preprocess=snakemake.params.preprocess,
            warmup_path=snakemake.input.get("warmup") or None,
        )
