# Two entry points for a fresh machine (Python 3.11, no GPU needed):
#   make study   install into .venv, run the whole study on the embedded default, write the report
#   make test    install into .venv (with test extras) and run the test suite
#   make gpu-check  on a CUDA machine: the tiny study on the GPU, throughput, paper-scale peak memory
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
# glibc otherwise returns large buffers to the OS on every op: about 1.5x slower 3D convolutions
# on CPU, with bit-identical outputs (measured; see README).
export GLIBC_TUNABLES ?= glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184

.PHONY: install study report test gpu-check

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint constraints.txt --editable '.[test]'
	touch $(STAMP)

# Device jobs (training, inference; `resources: gpu=1`): one per GPU on a CUDA workstation; on a
# CPU-only machine one 1-thread job per core, which beats one job on all cores (dnorm/local_jobs.py).
# On this command line, not in profiles/default, which every --profile (SLURM too) reads.
study: $(STAMP)
	args=$$($(BIN)/python -m dnorm.local_jobs $(CORES)) && $(BIN)/snakemake --cores $(CORES) $$args
	$(MAKE) report

report: $(STAMP)
	$(BIN)/snakemake --report results/default/report.html

test: $(STAMP)
	$(BIN)/python -m pytest

# Needs a CUDA build of PyTorch (README, "Paper scale on a cluster"); exits non-zero on a failed check.
gpu-check: $(STAMP)
	$(BIN)/python benchmarks/gpu_check.py
