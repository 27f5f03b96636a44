"""Running Snakemake from tests (a unique module name: pytest puts test folders on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def snakemake(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env, capture_output=True,
                          text=True, timeout=timeout)


def link_workflow(root: Path) -> Path:
    """Make ``root`` a scratch copy of the workflow (links to the repo's files), so results stay
    out of the repo; returns ``root``."""
    for name in ("Snakefile", "rules", "workflow_scripts", "config", "envs", "profiles"):
        (root / name).symlink_to(REPO / name)
    return root
