"""Whole-volume inference from patch models: sliding windows and per-voxel averaging.

- :func:`window_starts`, :func:`iter_windows` (``windows.py``): where the windows go.
- :func:`patch_average` (``patch_average.py``): run a patch model over a ``C×X×Y×Z`` volume and
  average the outputs of every window covering each voxel.
"""

from __future__ import annotations

# Imported eagerly: the function shares its submodule's name, and binding it here (after the
# submodule import) makes ``dnorm.inference.patch_average`` the function, not the module.
from dnorm.inference.patch_average import patch_average
from dnorm.inference.windows import iter_windows, window_starts

__all__ = ["patch_average", "window_starts", "iter_windows"]
