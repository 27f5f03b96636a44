# dnorm: task-driven adversarial normalization of multi-site brain MRI (Delisle et al. 2022).
# This file only wires the stages together; logic lives in dnorm/, rules in rules/.
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

import dnorm.config

min_version("9.0")


configfile: "config/config.yaml"


# A schema error in one line naming the file and key (Snakemake's own message dumps the whole
# schema). Files lowest precedence first: config/config.yaml, then the --configfile ones.
CONFIG_FILES = [str(f) for f in (*workflow.configfiles[len(workflow.overwrite_configfiles):],
                                 *workflow.overwrite_configfiles)]
try:
    dnorm.config.check_schema(config, CONFIG_FILES)
except ValueError as error:
    raise WorkflowError(str(error)) from None
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
