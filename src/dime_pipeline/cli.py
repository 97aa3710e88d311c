"""``dime-pipeline`` command line: one subcommand per pipeline stage.

Each subcommand lives in ``dime_pipeline.commands.<name>`` and exposes ``register(subparsers)``.
Library modules are imported inside the handlers so ``--help`` stays fast and the CLI works
without MPI or dolfinx for the stages that do not need them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from dime_pipeline import __version__
from dime_pipeline.errors import UserError

# Order is the order of the pipeline; a command is listed here only once it works.
COMMANDS = (
    "config",
    "phantom",
    "simulate",
    "summarize",
    "acquire",
    "pack",
    "train",
    "invert",
    "evaluate",
    "report",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dime-pipeline",
        description="MRE inversion research pipeline (simulation, DIME, MMDI, evaluation).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"dime_pipeline.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        args.handler(args)
    except UserError as error:
        print(f"dime-pipeline {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
