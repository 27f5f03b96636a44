"""Real or user-supplied data as a study dataset: the same raw manifest the synthetic benchmark
writes, so preprocessing, training and evaluation run unchanged."""

from __future__ import annotations

import logging
from pathlib import Path

from dnorm.ingest import KINDS, ingest
from dnorm.ingest.bids import options_from_entry
from dnorm.manifest import read_manifest, write_manifest

log = logging.getLogger(__name__)


def import_dataset(name: str, entry: dict, out_dir: str | Path) -> Path:
    """Write ``out_dir/manifest.csv`` for config dataset ``name``.

    ``entry["source"]`` is one of :data:`dnorm.ingest.KINDS` (the dataset in its distributed
    layout at ``entry["path"]``, converted to NIfTI under ``out_dir/ingested/``) or ``manifest``
    (a manifest CSV of one's own data at ``entry["path"]``; its rows whose ``dataset`` column is
    ``name`` are used, files stay where they are). The manifest is written last.
    """
    out_dir = Path(out_dir)
    source, path = entry["source"], entry.get("path")
    if source == "manifest":
        table = read_manifest(path)
        table = table[table.dataset == name]
        if table.empty:
            raise ValueError(f"{path}: no rows with dataset {name!r} (the config's dataset name)")
    elif source in KINDS:
        options = options_from_entry(entry) if source == "bids" else {}  # modalities, site_column, derivatives
        table = read_manifest(ingest(source, path, out_dir / "ingested", **options))
        table["dataset"] = name
    else:
        raise ValueError(f"config datasets.{name}.source {source!r} cannot be imported; use one of {KINDS + ('manifest',)}")
    log.info("%s: %d subjects from %s %s", name, len(table), source, path)
    manifest = out_dir / "manifest.csv"
    write_manifest(table, manifest)
    return manifest
