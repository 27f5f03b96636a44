"""What a trained model depends on, as digests: the input files, the settings, the code.

A checkpoint is resumed only when this fingerprint matches, and the model card records it, so a
changed dataset, preprocessing setting, training setting or bug fix never continues, or passes
for, a run made with the old ones.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dnorm

_CHUNK = 1 << 20
#: Source files whose content decides what training computes.
CODE_PACKAGES = ("training", "models")
CODE_FILES = ("losses.py", "io.py", "manifest.py")


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (streamed: paper-scale volumes need not fit in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def code_digest() -> str:
    """SHA-256 over the source of the modules that decide training (:data:`CODE_PACKAGES`,
    :data:`CODE_FILES`), in a fixed order."""
    root = Path(dnorm.__file__).parent
    files = sorted(p for package in CODE_PACKAGES for p in (root / package).glob("*.py"))
    files += [root / name for name in CODE_FILES]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def input_digests(manifest_path: str | Path, patch_tables, volume_paths) -> dict[str, str]:
    """Digest of each input file, keyed by its path as given (manifest, patch tables, volumes)."""
    paths = [str(manifest_path), *map(str, patch_tables), *sorted(set(map(str, volume_paths)))]
    return {path: file_digest(path) for path in paths}


def run_fingerprint(identity: dict) -> str:
    """SHA-256 of a JSON-serializable ``identity`` (sorted keys)."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def provenance(experiment: dict, training: dict, preprocess: dict | None, seed: int, inputs: dict[str, str]) -> dict:
    """Everything the fingerprint covers, plus the fingerprint itself (for the model card)."""
    identity = {"experiment": experiment, "training": training, "preprocess": preprocess, "seed": seed,
                "inputs": inputs, "code": code_digest(), "dnorm": dnorm.__version__}
    return identity | {"fingerprint": run_fingerprint(identity)}
