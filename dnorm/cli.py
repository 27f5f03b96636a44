"""The ``dnorm`` command line. Each subcommand is a thin layer over one library function."""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import resources
from pathlib import Path


def default_config_path() -> Path:
    """The embedded default study configuration shipped with the package."""
    return Path(str(resources.files("dnorm") / "data" / "default_config.yaml"))


def run_synth(args: argparse.Namespace) -> None:
    from dnorm.config import load_config
    from dnorm.synth.benchmark import synthesize_dataset

    # Layered over the defaults, as Snakemake's --configfile over config/config.yaml.
    config = load_config(default_config_path(), *(args.config or []))
    synthetic = [n for n, d in sorted(config["datasets"].items()) if d["source"] == "synthetic"]
    chosen = args.datasets or synthetic
    unknown = sorted(set(chosen) - set(synthetic))
    if unknown:
        raise ValueError(f"--datasets {unknown} are not synthetic datasets of the config; choose from {synthetic}")
    for name in chosen:
        manifest = synthesize_dataset(name, config["datasets"][name], config["synth"], config["seed"],
                                      Path(args.out) / name)
        print(f"{name}: {manifest}")


def run_check_config(args: argparse.Namespace) -> None:
    from dnorm.config import load_config

    config = load_config(default_config_path(), *args.config)
    print(f"{' + '.join(args.config)}: valid (run_name {config['run_name']!r})")


def run_domain_gap(args: argparse.Namespace) -> None:
    from dnorm.domain_gap import dataset_summary, subject_table

    summary = dataset_summary(subject_table(args.manifest, args.modality))
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def run_ingest(args: argparse.Namespace) -> None:
    from dnorm.ingest import run_ingest_command

    run_ingest_command(args)


def _apply(args: argparse.Namespace, **outputs) -> int:
    """Shared by ``normalize`` and ``segment``: one image, every T1 image of a folder, or a BIDS
    dataset (written as BIDS derivatives). In a folder or dataset, each failed subject is one
    ``error:`` line and the exit status is 2 at the end."""
    from dnorm.apply import apply_model, apply_to_folder
    from dnorm.bids_output import apply_to_bids, is_bids_dataset

    options = dict(stride=args.stride, progress=not args.quiet, device=args.device, skull_strip=args.skull_strip,
                   **outputs)
    bids = Path(args.input).is_dir() and is_bids_dataset(args.input)
    if args.participant_label and not bids:
        raise ValueError(f"{args.input}: --participant-label needs a BIDS dataset (a folder with "
                         f"dataset_description.json)")
    if not Path(args.input).is_dir():
        for path in apply_model(args.model, args.input, args.out, t2_path=args.t2, mask_path=args.mask,
                                **options).values():
            print(path)
        return 0
    if args.t2 or args.mask:
        raise ValueError(f"{args.input}: --t2 and --mask apply to a single image; in a folder, T2 images are "
                         f"paired by name (<id>_t2.nii.gz, BIDS <id>_T2w.nii.gz) and the brain is each T1's "
                         f"non-zero voxels")
    if bids:
        result = apply_to_bids(args.model, args.input, args.out, participants=args.participant_label, **options)
    else:
        result = apply_to_folder(args.model, args.input, args.out, **options)
    for files in result.written.values():
        for path in files.values():
            print(path)
    for message in result.failed.values():
        _error(args, message)
    if result.failed:
        total = len(result.failed) + len(result.written)
        _error(args, f"{args.input}: {len(result.failed)} of {total} images failed (listed above); the "
                     f"outputs of the others are in {args.out}")
        return 2
    return 0


def run_normalize(args: argparse.Namespace) -> int:
    return _apply(args, write_normalized=True, write_labels=False)


def run_segment(args: argparse.Namespace) -> int:
    return _apply(args, write_normalized=False, write_labels=True, write_probabilities=args.probabilities)


def add_apply_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by ``normalize`` and ``segment``."""
    parser.add_argument("model", metavar="MODEL", help="trained model file (model.pt from the study's training step)")
    parser.add_argument("input", metavar="INPUT",
                        help="skull-stripped T1-weighted NIfTI image (.nii/.nii.gz), or a folder of them named "
                             "<id>_t1.nii.gz or BIDS-style <id>_T1w.nii.gz (T2 images paired as <id>_t2.nii.gz, "
                             "<id>_T2w.nii.gz or <id>_FLAIR.nii.gz), or a BIDS dataset (a folder with "
                             "dataset_description.json: every subject-session's T1w, T2w else FLAIR for two-modality "
                             "models); a subject that fails is reported and the others are still processed")
    parser.add_argument("out", metavar="OUT",
                        help="output folder (created if needed; not an existing file); for a BIDS dataset, a "
                             "BIDS-derivatives dataset (e.g. INPUT/derivatives/dnorm): sub-X/[ses-Y/]anat/"
                             "sub-X[_ses-Y]_desc-normalized_T1w.nii.gz, ..._dseg.nii.gz, dseg.tsv, "
                             "dataset_description.json")
    parser.add_argument("--t2", metavar="PATH",
                        help="T2-weighted image on the T1's voxel grid (models trained on T1 + T2 need it)")
    parser.add_argument("--mask", metavar="PATH",
                        help="brain mask on the T1's voxel grid (non-zero = brain; default: the T1's non-zero "
                             "voxels, so z-scored images with negative values work). Voxels outside it are "
                             "background in the outputs")
    parser.add_argument("--stride", type=int, default=8, metavar="N",
                        help="step in voxels between overlapping patches at the model's voxel size; smaller is "
                             "smoother and slower (default: 8, as in the paper)")
    parser.add_argument("--device", metavar="DEV",
                        help="torch device, e.g. cpu or cuda (default: cuda if available); asking for a GPU "
                             "that is not there is an error")
    parser.add_argument("--skull-strip", action="store_true",
                        help="extract the brain first (dnorm.preprocess.skullstrip), for images with skull; the "
                             "brain mask is written beside the outputs (<name>_brainmask.nii.gz; BIDS: "
                             "..._desc-brain_mask.nii.gz). Not with --mask")
    parser.add_argument("--participant-label", nargs="+", metavar="LABEL",
                        help="BIDS dataset only: process these subjects (01 or sub-01), as BIDS apps do "
                             "(default: all)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnorm", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="build the embedded synthetic multi-site benchmark",
                                description="Write each synthetic dataset of the config as NIfTI images, "
                                            "labels and a manifest CSV under OUT/<dataset>/.")
    synth.add_argument("out", help="output folder")
    synth.add_argument("--config", action="append", metavar="YAML",
                       help="study config layered over the embedded default, as Snakemake's --configfile "
                            "(repeat to layer several; later files win)")
    synth.add_argument("--datasets", nargs="+", metavar="NAME", help="only these datasets (default: all synthetic)")
    synth.set_defaults(handler=run_synth)

    check = commands.add_parser(
        "check-config", help="validate study config files layered over the default",
        description="Layer YAML files over the embedded default config, as Snakemake's --configfile, and "
                    "validate them: a YAML syntax error is reported with its file and line (Snakemake's own "
                    "message gives neither), a bad key with its file and name.")
    check.add_argument("config", nargs="+", metavar="YAML", help="config files, later ones winning")
    check.set_defaults(handler=run_check_config)

    from dnorm.ingest import add_ingest_arguments

    ingest = commands.add_parser("ingest", help="convert iSEG-2017, MRBrainS13, ABIDE (FreeSurfer) or BIDS to NIfTI + manifest")
    add_ingest_arguments(ingest)
    ingest.set_defaults(handler=run_ingest)

    gap = commands.add_parser("domain-gap", help="per-dataset class intensities and GM/WM separation",
                              description="Print, per dataset, mean class intensities, the GM/WM separation "
                                          "|mean_WM - mean_GM| / pooled std and the spread between sites.")
    gap.add_argument("manifest", help="manifest CSV of preprocessed data")
    gap.add_argument("--modality", default="t1", choices=["t1", "t2"])
    gap.set_defaults(handler=run_domain_gap)

    apply_note = ("Inputs must be skull-stripped (or use --skull-strip). They are resampled to the model's voxel "
                  "size, scaled to [0, 1] as in training, processed in overlapping patches, and the results are "
                  "resampled back, so every output has the input image's grid (shape and affine). A BIDS dataset "
                  "gives a BIDS-derivatives folder.")
    normalize = commands.add_parser(
        "normalize", help="harmonize the intensities of new brain MRI with a trained normalizer (generator G)",
        description="Write <name>_normalized.nii.gz for each input image: the intensities the trained generator "
                    "produces, in [0, 1]. Needs a model with a generator (methods 'ours' or 'preprocessor'); "
                    "the segmentation-only baselines cannot normalize. " + apply_note)
    add_apply_arguments(normalize)
    normalize.set_defaults(handler=run_normalize)

    segment = commands.add_parser(
        "segment", help="segment new brain MRI into CSF, grey and white matter with a trained model",
        description="Write <name>_labels.nii.gz for each T1 image: 0 background, 1 CSF, 2 grey matter, "
                    "3 white matter (uint8). Class probabilities are averaged over overlapping patches and "
                    "interpolated back to the input grid before taking the most likely class. " + apply_note)
    add_apply_arguments(segment)
    segment.add_argument("--probabilities", action="store_true",
                         help="also write <name>_probabilities.nii.gz: a 4D image (X×Y×Z×4) of the background, "
                              "CSF, GM and WM probabilities")
    segment.set_defaults(handler=run_segment)
    return parser


def _error(args: argparse.Namespace, message: str) -> None:
    print(f"dnorm {args.command}: error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. A user's mistake (``ValueError``) or a file-system refusal
    (``OSError``) is one ``error:`` line naming the file, exit status 2, no traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.handler(args) or 0
    except (ValueError, OSError) as error:
        from dnorm.apply import one_line  # imports torch: only on this path

        _error(args, one_line(error))
        return 2


if __name__ == "__main__":
    sys.exit(main())
