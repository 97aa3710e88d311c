"""``dime-pipeline warm-up``: compile the solver's forms into the JIT cache before the solves."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dime_pipeline.commands.simulate import DEFAULT_JIT_CACHE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "warm-up",
        help="compile the FEM forms of a study into the JIT cache (run once before the solves)",
        description="Compile the forms `simulate` uses (for each --dim, with and without an "
        "absorbing boundary) into the JIT cache, so parallel solves load them instead of "
        "compiling them at once. Writes a JSON record of what it compiled to --out.",
    )
    parser.add_argument("--dim", type=int, choices=(2, 3), nargs="+", default=[2])
    parser.add_argument("--jit-cache", type=Path, default=DEFAULT_JIT_CACHE.expanduser())
    parser.add_argument("--solver", choices=("direct", "iterative"), default="direct")
    parser.add_argument("--out", type=Path, required=True, metavar="RECORD.json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.fem.backend import versions
    from dime_pipeline.fem.solvers import SolverOptions
    from dime_pipeline.fem.warmup import warm_jit_cache
    from dime_pipeline.textio import write_text_atomic

    seconds = warm_jit_cache(args.dim, args.jit_cache, SolverOptions(kind=args.solver))
    record = {
        "jit_cache": str(args.jit_cache),  # as given: a study folder may move
        "solver": args.solver,
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
        "versions": versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")
    print(f"compiled {len(seconds)} form variant(s) into {args.jit_cache} ({args.out})")
