"""Study configuration: JSON-schema validation (unknown keys rejected, defaults filled) and the
cross-field checks a schema cannot express. The Snakefile validates with Snakemake's own
``validate`` against the same schema; the command line and tests use :func:`load_config`."""

from __future__ import annotations

import copy
import difflib
import os
from collections.abc import Sequence
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


def validate_config(config: dict, source: str = "config", files: Sequence[str | os.PathLike] = ()) -> dict:
    """Validate ``config`` in place against the schema, fill defaults, run cross-field checks.

    ``files``: the YAML files ``config`` was merged from, lowest precedence first; a schema error
    names the last of them that sets the offending key, else ``source``.

    Raises ``ValueError`` naming the file (or ``source``) and the offending key path, in one line.
    """
    _raise_schema_error(config, source, files)
    check_config(config, source)
    return config


def check_schema(config: dict, files: Sequence[str | os.PathLike] = (), source: str = "config") -> None:
    """Check a copy of ``config`` against the schema (``config`` is left as it is).

    For the Snakefile, before Snakemake's own ``validate``, whose message dumps the whole schema
    and config: raises a one-line ``ValueError`` naming the file (see :func:`validate_config`).
    """
    _raise_schema_error(copy.deepcopy(config), source, files)


def _raise_schema_error(config: dict, source: str, files: Sequence[str | os.PathLike]) -> None:
    """Validate ``config`` in place (defaults filled) and raise the best-matching error, if any."""
    with open(schema_path()) as handle:
        schema = yaml.safe_load(handle)
    validator = _validator_with_defaults()(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(error.schema.get("properties", {}))
        key = next(k for k in error.instance if k not in allowed)
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"allowed here: {', '.join(allowed)}"
        path.append(key)
        message = f"unknown key {'.'.join(map(str, path))!r}; {hint}"
    else:
        where = ".".join(str(p) for p in path) or "(top level)"
        detail = error.message if len(error.message) <= 300 else error.message[:300] + "…"
        message = f"invalid configuration at {where}: {detail}"
    raise ValueError(f"{_file_setting(files, path) or source}: {message}")


def _file_setting(files: Sequence[str | os.PathLike], path: list) -> str | None:
    """The last of ``files`` (lowest precedence first) whose YAML sets the key ``path``, if any."""
    found = None
    for file in files:
        try:
            with open(file) as handle:
                node = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            continue
        for key in path:
            if isinstance(node, dict) and key in node:
                node = node[key]
            elif isinstance(node, list) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                break
        else:
            found = str(file)
    return found


def yaml_error(path: str | os.PathLike, error: yaml.YAMLError) -> ValueError:
    """A YAML syntax error as one line naming the file, line and column (1-based) and the problem."""
    mark = getattr(error, "problem_mark", None)
    where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
    problem = getattr(error, "problem", None) or (str(error).splitlines() or ["unknown problem"])[0]
    context, context_mark = getattr(error, "context", None), getattr(error, "context_mark", None)
    if context and context_mark is not None:
        context = f"{context} that starts at line {context_mark.line + 1}"
    return ValueError(f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else ""))


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
    from dnorm.training.ablation import check_ablation
    from dnorm.training.experiment import experiment_from_config

    for name in config.get("experiments", {}):
        experiment_from_config(name, config)
    check_ablation(config, source)
    _check_variant_values(config, source)


def _check_variant_values(config: dict, source: str) -> None:
    """Each ablation variant's training section, overrides applied, must pass the schema too."""
    from dnorm.training.ablation import ablation_variants, apply_overrides

    if not config.get("ablation"):
        return
    for variant, overrides in ablation_variants(config).items():
        where = f"{source}: ablation.variants.{variant}"
        trial = copy.deepcopy(config) | {"training": apply_overrides(config["training"], overrides, where)}
        trial.pop("ablation")
        _raise_schema_error(trial, where, ())


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
            raise yaml_error(path, error) from None
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: top level must be a mapping, got {type(loaded).__name__}")
        merge_into(merged, loaded)
    return validate_config(merged, source=" + ".join(str(p) for p in paths), files=paths)


def merge_into(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into ``base`` (dicts merged, anything else replaced),
    matching how Snakemake combines several ``--configfile`` files."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_into(base[key], value)
        else:
            base[key] = value
    return base
