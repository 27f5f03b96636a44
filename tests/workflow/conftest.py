"""Fixtures for workflow tests: one tiny end-to-end run in a scratch copy of the workflow."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflow_helpers import link_workflow, snakemake


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """A scratch copy of the workflow (links to the repo's files), so results stay out of the repo."""
    return link_workflow(tmp_path_factory.mktemp("workflow"))


@pytest.fixture(scope="session")
def tiny_run(workdir) -> Path:
    result = snakemake(workdir, "--configfile", "config/tiny.yaml", "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    return workdir / "results" / "tiny"
