"""Experiments are data: a config entry names a method, its datasets and options."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: unet: S alone on raw inputs; standardization: per-volume z-score, then S;
#: preprocessor: G + S without D (lambda 0, Drozdzal et al. 2018); ours: G + S + D.
METHODS = ("unet", "standardization", "preprocessor", "ours")


@dataclass(frozen=True)
class Experiment:
    name: str
    method: str
    datasets: tuple[str, ...]
    modalities: tuple[str, ...] = ("t1",)
    adversarial_weight: float = 0.0  # lambda of Eq. (3)
    bias_augmentation: bool = False
    epochs: int | None = None  # None: the training section's epochs
    budget: float = 1.0  # multiple of the joint-training epochs (budget curve); 1 in the paper's tables

    def joint_epochs(self, training: dict) -> int:
        """Joint-training epochs: ``epochs`` (or the training section's) times ``budget``. The
        warm-up is not scaled: it runs to a reconstruction target, shared across budgets."""
        base = self.epochs if self.epochs is not None else int(training["epochs"])
        scaled = base * self.budget
        if scaled < 1 or abs(scaled - round(scaled)) > 1e-9:
            raise ValueError(f"config experiments.{self.name}.budget {self.budget:g} × {base} epochs = {scaled:g} "
                             "is not a whole number of epochs ≥ 1")
        return int(round(scaled))

    @property
    def uses_generator(self) -> bool:
        return self.method in ("preprocessor", "ours")

    @property
    def uses_discriminator(self) -> bool:
        """lambda = 0 trains no discriminator: it would have no effect on G or S."""
        return self.method == "ours" and self.adversarial_weight > 0

    @property
    def standardize(self) -> bool:
        return self.method == "standardization"

    def to_dict(self) -> dict:
        return asdict(self)


def experiment_from_config(name: str, config: dict) -> Experiment:
    """Build experiment ``name`` from ``config["experiments"]``, checking it against the
    datasets the config defines. Raises ``ValueError`` naming the experiment."""
    experiments = config.get("experiments", {})
    if name not in experiments:
        raise ValueError(f"config: no experiment {name!r}; defined: {sorted(experiments)}")
    entry = experiments[name]
    where = f"config experiments.{name}"
    if entry["method"] not in METHODS:
        raise ValueError(f"{where}.method {entry['method']!r} is not one of {METHODS}")
    unknown = [d for d in entry["datasets"] if d not in config["datasets"]]
    if unknown:
        raise ValueError(f"{where}.datasets {unknown} are not datasets of the config")
    modalities = tuple(entry.get("modalities", ["t1"]))
    if "t2" in modalities:
        lacking = [d for d in entry["datasets"] if len(config["datasets"][d].get("modalities", ["t1"])) < 2]
        if lacking:
            raise ValueError(f"{where} asks for a second modality but datasets {lacking} have only one")
    weight = float(entry.get("lambda", 1.5 if entry["method"] == "ours" else 0.0))
    if entry["method"] != "ours" and weight != 0:
        raise ValueError(f"{where}.lambda must be 0 for method {entry['method']!r} (it has no discriminator)")
    experiment = Experiment(name=name, method=entry["method"], datasets=tuple(entry["datasets"]),
                            modalities=modalities, adversarial_weight=weight,
                            bias_augmentation=bool(entry.get("bias_augmentation", False)),
                            epochs=entry.get("epochs"), budget=float(entry.get("budget", 1.0)))
    if "training" in config:
        experiment.joint_epochs(config["training"])  # a budget that is no whole number of epochs fails here
    return experiment
