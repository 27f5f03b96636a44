from dnorm.evaluation.segment import segment_test_subject
from dnorm.workflow import logged

with logged(snakemake.log[0]):
    segment_test_subject(
        snakemake.input.model,
        snakemake.input.manifest,
        snakemake.wildcards.dataset,
        snakemake.wildcards.subject,
        labels_path=snakemake.output.labels,
        normalized_path=snakemake.output.normalized,
        probabilities_path=snakemake.output.get("probabilities"),
        stride=snakemake.params.stride,
        batch_size=snakemake.params.batch_size,
        gpus=snakemake.resources.gpu,
    )
