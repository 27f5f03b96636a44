"""dnorm: task-driven adversarial normalization of multi-site brain MRI (DeepNormalize).

Submodules are imported lazily so ``import dnorm`` stays cheap (no torch at import time).
"""

__version__ = "0.1.0"
