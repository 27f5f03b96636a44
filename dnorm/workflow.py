"""Glue for ``workflow_scripts/``: send logging and any traceback to the rule's log file."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def logged(log_path: str | os.PathLike) -> Iterator[logging.Logger]:
    """Route the ``dnorm`` loggers (and warnings) to ``log_path`` for the block; log a failure's
    traceback there too before re-raising, so the rule's log explains why it failed."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    logger = logging.getLogger("dnorm.workflow")
    try:
        yield logger
    except Exception:
        logger.exception("rule failed")
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
