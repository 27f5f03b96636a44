"""One warm-up for the experiments whose warm-ups compute the same thing.

G's warm-up (auto-encoder, with S on the raw inputs: :meth:`Trainer.warmup_step`) depends on the
datasets, the modalities, the training settings and the seed, not on the method, λ or the bias
augmentation: the Pre-processor and every Ours variant of a setting warm up identically (S and G
are built, and seeded, before D; each epoch's batches come from a permutation drawn first; the
warm-up trains on the un-augmented patches). The study therefore runs each distinct warm-up once
(rule ``warm_up_generator``) and starts those experiments from it: on the default study, 3
warm-ups instead of 8, about 3 minutes of CPU each. Tests check that training from the shared
warm-up is bit-identical to warming up alone. Where D trains during the warm-up
(``warmup_discriminator``), Ours warm-ups differ and are not shared.
"""

from __future__ import annotations

from dnorm.training.experiment import Experiment


def warmup_identity(experiment: Experiment, seed: int) -> dict:
    """What makes two warm-ups (with the same training settings) compute the same thing."""
    return {"datasets": list(experiment.datasets), "modalities": list(experiment.modalities), "seed": int(seed)}


def warmup_key(experiment: Experiment, training: dict) -> str | None:
    """A file-name-safe name of ``experiment``'s warm-up, or None when it has no shareable one
    (no generator, no warm-up epochs, or D trains during the warm-up)."""
    if not experiment.uses_generator or int(training["generator_warmup_epochs"]) == 0:
        return None
    if experiment.uses_discriminator and training["warmup_discriminator"]:
        return None
    return f"{'+'.join(experiment.datasets)}_{'+'.join(experiment.modalities)}"


def warmup_experiment(experiment: Experiment, training: dict) -> Experiment:
    """The experiment a shared warm-up trains: G + S (no D) on ``experiment``'s data."""
    key = warmup_key(experiment, training)
    if key is None:
        raise ValueError(f"{experiment.name} has no shareable warm-up")
    return Experiment(name=f"warmup_{key}", method="preprocessor", datasets=experiment.datasets,
                      modalities=experiment.modalities)
