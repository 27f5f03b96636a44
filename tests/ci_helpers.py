"""What a test does when a tool or file it needs is missing: skip with the reason on a developer's
machine, fail loudly under ``CI=true`` (where ``.ci/run`` installs every tool), so CI never passes
without running a test."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether the tests run in CI (``CI=true``, as set by ``.ci/run`` and CI services)."""
    return os.environ.get("CI", "").lower() in ("true", "1")


def unavailable(reason: str) -> NoReturn:
    """Skip the calling test with ``reason``, or fail it under CI."""
    if in_ci():
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)
