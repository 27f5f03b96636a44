# dnorm: task-driven adversarial normalization of multi-site brain MRI (Delisle et al. 2022).
# This file only wires the stages together; logic lives in dnorm/, rules in rules/.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schema.yaml", set_default=True)


report: "rules/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/preprocess.smk"
include: "rules/training.smk"
include: "rules/figures.smk"
include: "rules/evaluation.smk"


rule all:
    input:
        all_targets(),
    default_target: True
