"""``dime-pipeline`` command line: one subcommand per pipeline stage.

Each subcommand lives in ``dime_pipeline.commands.<name>`` and exposes ``register(subparsers)``.
Library modules are imported inside the handlers so ``--help`` stays fast and the CLI works
without MPI or dolfinx for the stages that do not need them.

Under ``mpiexec -n K`` (K > 1) any error ends the whole job with ``MPI_Abort``: an error raised on
one rank alone would otherwise leave the other ranks waiting in a collective forever.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time
import traceback

from dime_pipeline import __version__
from dime_pipeline.errors import UserError, one_line

ABORT_GRACE_S = 1.0  # seconds between printing an error and MPI_Abort
RANK_ZERO_FIRST_S = 3 * ABORT_GRACE_S  # other ranks' wait before printing a UserError

# The optional dependencies a command may miss (top-level module -> the extra that installs it;
# pyproject.toml). The base install runs `invert`; the rest need an extra.
EXTRAS = {
    "dolfinx": "fem",
    "dolfinx_solver": "fem",
    "basix": "fem",
    "ufl": "fem",
    "ffcx": "fem",
    "mpi4py": "fem",
    "petsc4py": "fem",
    "gmsh": "fem",
    "lightning": "train",
    "torchmetrics": "train",
    "snakemake": "workflow",
}

# Order is the order of the pipeline; a command is listed here only once it works.
COMMANDS = (
    "config",
    "phantom",
    "preview",
    "warm-up",
    "simulate",
    "shard",
    "summarize",
    "acquire",
    "pack",
    "train",
    "calibrate",
    "invert",
    "evaluate",
    "wavelength-sweep",
    "report",
)


class _Parser(argparse.ArgumentParser):
    def convert_arg_line_to_args(self, arg_line: str) -> list[str]:
        """One argument per line of an @FILE; a blank line is no argument (argparse reads it
        as the empty path, i.e. the current folder)."""
        return [arg_line] if arg_line.strip() else []


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dime-pipeline",
        description="MRE inversion research pipeline (simulation, DIME, MMDI, evaluation). "
        "@FILE stands for the arguments in FILE, one per line (for thousands of stores).",
        # A paper-scale study passes 40 000 store paths: more than one command line may hold.
        fromfile_prefix_chars="@",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--quiet", action="store_true", help="log warnings and errors only")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = name.replace("-", "_")
        importlib.import_module(f"dime_pipeline.commands.{module}").register(subparsers)
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
        try:
            args.handler(args)
        except (OSError, MemoryError) as error:
            # The machine said no (disk full, no permission, a path that cannot be, memory):
            # the user's to fix, and the writers have already removed what they started.
            raise UserError(_environment_problem(error)) from None
        except ModuleNotFoundError as error:
            extra = EXTRAS.get((error.name or "").partition(".")[0])
            if extra is None:
                raise
            raise UserError(
                f"no module named {error.name!r}: this command needs the [{extra}] extra "
                f"(pip install 'dime-pipeline[{extra}]')"
            ) from None
    except UserError as error:
        _let_rank_zero_report_first()
        print(f"dime-pipeline {args.command}: error: {error}", file=sys.stderr)
        _abort_other_ranks(2)
        return 2
    except Exception:
        if _mpi_ranks() > 1:
            traceback.print_exc()
            _abort_other_ranks(1)
        raise
    return 0


def _environment_problem(error: OSError | MemoryError) -> str:
    if isinstance(error, MemoryError):
        return f"out of memory ({one_line(error) if str(error) else 'MemoryError'})"
    where = error.filename or ""
    reason = error.strerror or one_line(error)
    return f"{where}: {reason}" if where else reason


def _mpi_ranks() -> int:
    """Ranks of MPI_COMM_WORLD when the command has initialised MPI, else 1 (never imports MPI:
    most commands run without it)."""
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is None or not mpi.Is_initialized() or mpi.Is_finalized():
        return 1
    return mpi.COMM_WORLD.size


def _let_rank_zero_report_first() -> None:
    """A bad input usually fails every rank at once (a missing phantom, say): rank 0 prints the
    line and aborts the job while the others wait, so the line appears once. An error on a
    rank alone is printed after the wait."""
    if _mpi_ranks() > 1 and sys.modules["mpi4py.MPI"].COMM_WORLD.rank != 0:
        time.sleep(RANK_ZERO_FIRST_S)


def _abort_other_ranks(code: int) -> None:
    """With several ranks, end them all (the error is already printed): the others may be
    blocked in a collective that this rank will never enter."""
    if _mpi_ranks() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        # The process manager kills every rank on MPI_Abort and may drop output it has not yet
        # forwarded (seen: about 1 run in 12 lost the error line): give it time to forward.
        time.sleep(ABORT_GRACE_S)
        sys.modules["mpi4py.MPI"].COMM_WORLD.Abort(code)


if __name__ == "__main__":
    sys.exit(main())
