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

    config = load_config(*(args.config or [default_config_path()]))
    synthetic = [n for n, d in sorted(config["datasets"].items()) if d["source"] == "synthetic"]
    chosen = args.datasets or synthetic
    unknown = sorted(set(chosen) - set(synthetic))
    if unknown:
        raise ValueError(f"--datasets {unknown} are not synthetic datasets of the config; choose from {synthetic}")
    for name in chosen:
        manifest = synthesize_dataset(name, config["datasets"][name], config["synth"], config["seed"],
                                      Path(args.out) / name)
        print(f"{name}: {manifest}")


def run_domain_gap(args: argparse.Namespace) -> None:
    from dnorm.domain_gap import dataset_summary, subject_table

    summary = dataset_summary(subject_table(args.manifest, args.modality))
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"))


def run_ingest(args: argparse.Namespace) -> None:
    from dnorm.ingest import run_ingest_command

    run_ingest_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dnorm", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = commands.add_parser("synth", help="build the embedded synthetic multi-site benchmark",
                                description="Write each synthetic dataset of the config as NIfTI images, "
                                            "labels and a manifest CSV under OUT/<dataset>/.")
    synth.add_argument("out", help="output folder")
    synth.add_argument("--config", action="append", metavar="YAML",
                       help="study config (repeat to override; default: the embedded default)")
    synth.add_argument("--datasets", nargs="+", metavar="NAME", help="only these datasets (default: all synthetic)")
    synth.set_defaults(handler=run_synth)

    from dnorm.ingest import add_ingest_arguments

    ingest = commands.add_parser("ingest", help="convert iSEG-2017, MRBrainS13 or ABIDE (FreeSurfer) to NIfTI + manifest")
    add_ingest_arguments(ingest)
    ingest.set_defaults(handler=run_ingest)

    gap = commands.add_parser("domain-gap", help="per-dataset class intensities and GM/WM separation",
                              description="Print, per dataset, mean class intensities, the GM/WM separation "
                                          "|mean_WM - mean_GM| / pooled std and the spread between sites.")
    gap.add_argument("manifest", help="manifest CSV of preprocessed data")
    gap.add_argument("--modality", default="t1", choices=["t1", "t2"])
    gap.set_defaults(handler=run_domain_gap)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        args.handler(args)
    except ValueError as error:
        print(f"dnorm {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
