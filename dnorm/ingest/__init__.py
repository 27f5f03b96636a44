"""Real-dataset adapters: iSEG-2017, MRBrainS13, ABIDE I (FreeSurfer) and BIDS to NIfTI + manifest.

``ingest(kind, source, out_dir)`` converts every labelled subject of ``source`` to
``out_dir/<dataset>/<subject>_{t1,t2,label}.nii.gz`` (float32 images, uint8 labels 0 BG, 1 CSF,
2 GM, 3 WM, source shape and affine unchanged) and writes ``out_dir/manifest.csv`` last (split
empty: splits are assigned by preprocessing). Layouts and rules: :mod:`dnorm.ingest.iseg`,
:mod:`dnorm.ingest.mrbrains`, :mod:`dnorm.ingest.abide`, :mod:`dnorm.ingest.bids` (which also lists
unlabelled subject-sessions in ``out_dir/unlabelled.csv``), shared checks in
:mod:`dnorm.ingest.common`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from dnorm.ingest.abide import ingest_abide
from dnorm.ingest.bids import ingest_bids
from dnorm.ingest.iseg import ingest_iseg
from dnorm.ingest.mrbrains import ingest_mrbrains

KINDS = ("iseg", "mrbrains", "abide", "bids")
_ADAPTERS = {"iseg": ingest_iseg, "mrbrains": ingest_mrbrains, "abide": ingest_abide, "bids": ingest_bids}
#: Options only the BIDS adapter takes (:func:`dnorm.ingest.bids.ingest_bids`).
BIDS_OPTIONS = ("modalities", "site_column", "derivatives")

__all__ = ["BIDS_OPTIONS", "KINDS", "ingest", "add_ingest_arguments", "run_ingest_command"]


def ingest(kind: str, source: str | os.PathLike, out_dir: str | os.PathLike, site: str | None = None,
           **options) -> Path:
    """Convert dataset ``kind`` found at ``source``; returns the path of ``out_dir/manifest.csv``.

    ``site`` overrides the manifest's site column for every subject (default: the dataset name
    for ``iseg``/``mrbrains``, the acquisition site for ``abide``, ``participants.tsv`` for
    ``bids``). ``options`` are :data:`BIDS_OPTIONS`, for ``bids`` only. Raises ``ValueError`` for an
    unknown ``kind``, a missing or empty ``source``, and any bad file (naming it); after a
    failure no manifest exists in ``out_dir``.
    """
    if kind not in _ADAPTERS:
        raise ValueError(f"unknown dataset kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    if site is not None and not str(site).strip():
        raise ValueError(f"site {site!r} is empty")
    given = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(BIDS_OPTIONS))
    if unknown:
        raise ValueError(f"unknown ingest option(s) {unknown}; valid: {', '.join(BIDS_OPTIONS)}")
    if given and kind != "bids":
        raise ValueError(f"{', '.join('--' + k.replace('_', '-') for k in sorted(given))}: for BIDS datasets only, "
                         f"not {kind}")
    return _ADAPTERS[kind](source, out_dir, site=site, **given)


def add_ingest_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``{iseg,mrbrains,abide,bids} SRC OUT [--site SITE]`` and the BIDS options to ``parser``
    (the ``dnorm ingest`` subcommand)."""
    parser.description = parser.description or (
        "Convert a real dataset (iSEG-2017 folder, MRBrainS13 folder, ABIDE FreeSurfer subjects folder, "
        "BIDS dataset with tissue labels in derivatives *_dseg.nii.gz) to NIfTI volumes and a manifest "
        "OUT/manifest.csv. BIDS subject-sessions without labels are listed in OUT/unlabelled.csv instead."
    )
    parser.add_argument("kind", choices=KINDS, help="dataset layout to read")
    parser.add_argument("source", type=Path, metavar="SRC", help="folder holding the dataset as distributed")
    parser.add_argument("out", type=Path, metavar="OUT", help="output folder (NIfTI files and manifest.csv)")
    parser.add_argument("--site", default=None,
                        help="site written for every subject (default: dataset name; ABIDE: the acquisition site; "
                             "BIDS: participants.tsv)")
    bids = parser.add_argument_group("BIDS only")
    bids.add_argument("--site-column", metavar="COLUMN", default=None,
                      help="participants.tsv column holding each participant's site (default: site; without "
                           "it every site is 'bids')")
    bids.add_argument("--modalities", nargs="+", metavar="MOD", choices=("t1", "t2", "flair"), default=None,
                      help="t1 (default), t1 t2 (also the T2w) or t1 flair (also the FLAIR), as the config's "
                           "modalities")
    bids.add_argument("--derivatives", nargs="+", metavar="PATH", default=None,
                      help="derivatives dataset(s) holding the *_dseg.nii.gz labels (default: every "
                           "SRC/derivatives/*/ with a dataset_description.json)")
    return parser


def run_ingest_command(args: argparse.Namespace) -> int:
    """Run ``dnorm ingest`` from parsed arguments; prints the manifest path, returns exit status 0.

    ``ValueError`` from a bad dataset propagates (the caller turns it into a message and status).
    """
    manifest = ingest(args.kind, args.source, args.out, site=args.site,
                      **{key: getattr(args, key, None) for key in BIDS_OPTIONS})
    print(manifest)
    return 0
