"""Which experiments of the config a run trains and evaluates.

Snakemake merges a ``--configfile`` into ``config/config.yaml`` key by key, so a layered config
cannot remove the default experiments; it names the ones to run in ``experiments_enabled``
(default: every experiment), e.g. ``config/seeds.yaml``.
"""

from __future__ import annotations


def select_experiments(config: dict, source: str = "config") -> dict:
    """The ``experiments`` entries named by ``experiments_enabled`` (all when the key is absent),
    in that key's order.

    Raises:
        ValueError: naming ``source`` and the unknown names when ``experiments_enabled`` lists
            an experiment the config does not define.
    """
    experiments = config.get("experiments", {})
    enabled = config.get("experiments_enabled")
    if enabled is None:
        return dict(experiments)
    unknown = [name for name in enabled if name not in experiments]
    if unknown:
        raise ValueError(f"{source}: experiments_enabled names {unknown}, which are not in experiments "
                         f"({sorted(experiments)})")
    return {name: experiments[name] for name in enabled}
