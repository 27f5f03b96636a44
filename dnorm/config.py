"""Study configuration: JSON-schema validation (unknown keys rejected, defaults filled) and the
cross-field checks a schema cannot express. The Snakefile validates with Snakemake's own
``validate`` against the same schema; the command line and tests use :func:`load_config`."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import jsonschema
import yaml

SYNTHETIC = "synthetic"


def schema_path() -> Path:
    """The schema shipped with the package (a link to ``config/schema.yaml`` in the repo)."""
    return Path(str(resources.files("dnorm") / "data" / "schema.yaml"))


def _validator_with_defaults():
    """A validator class that also fills ``default`` values, as Snakemake's ``set_default``."""
    base = jsonschema.validators.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    validate_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = subschema["default"]
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def validate_config(config: dict, source: str = "config") -> dict:
    """Validate ``config`` in place against the schema, fill defaults, run cross-field checks.

    Raises ``ValueError`` naming ``source`` and the offending key path.
    """
    with open(schema_path()) as handle:
        schema = yaml.safe_load(handle)
    validator = _validator_with_defaults()(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ValueError(f"{source}: invalid configuration at {where}: {error.message}")
    check_config(config, source)
    return config


def check_config(config: dict, source: str = "config") -> None:
    """Cross-field checks: split fractions sum to 1; a synthetic dataset has subjects, a grid
    and sites that define every modality it lists; any other source has an existing ``path``."""
    for name, dataset in config["datasets"].items():
        where = f"{source}: datasets.{name}"
        if abs(sum(dataset["split"]) - 1.0) > 1e-6:
            raise ValueError(f"{where}.split {dataset['split']} must sum to 1")
        if dataset["source"] != SYNTHETIC:
            if "path" not in dataset:
                raise ValueError(f"{where}: source {dataset['source']!r} needs 'path'")
            if not os.path.exists(dataset["path"]):
                raise ValueError(f"{where}.path {dataset['path']!r} does not exist")
            continue
        for key in ("subjects", "spacing", "sites"):
            if key not in dataset:
                raise ValueError(f"{where}: a synthetic dataset needs '{key}'")
        for site in dataset["sites"]:
            missing = [m for m in dataset["modalities"] if m not in site]
            if missing:
                raise ValueError(f"{where}.sites: site {site['name']!r} has no intensity means for {missing}")
        low, high = dataset.get("brain_scale", [1.0, 1.0])
        if low > high:
            raise ValueError(f"{where}.brain_scale {dataset['brain_scale']} must be [low, high]")
    from dnorm.training.experiment import experiment_from_config

    for name in config.get("experiments", {}):
        experiment_from_config(name, config)


def load_config(*paths: str | os.PathLike) -> dict:
    """Load YAML files (later ones override earlier ones, nested keys merged) and validate."""
    if not paths:
        raise ValueError("load_config needs at least one YAML file")
    merged: dict = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: configuration file not found")
        try:
            with open(path) as handle:
                loaded = yaml.safe_load(handle) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{path}: not valid YAML ({error})") from error
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
        merge_into(merged, loaded)
    return validate_config(merged, source=" + ".join(str(p) for p in paths))


def merge_into(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into ``base`` (dicts merged, anything else replaced),
    matching how Snakemake combines several ``--configfile`` files."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = value
    return base
