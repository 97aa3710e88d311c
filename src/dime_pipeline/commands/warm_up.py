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
    parser.add_argument(
        "--config",
        type=Path,
        help="study config YAML: its dim and solver.jit_cache are the defaults",
    )
    parser.add_argument(
        "--dim", type=int, choices=(2, 3), nargs="+", help="default: 2, or the config's dim"
    )
    parser.add_argument(
        "--jit-cache", type=Path, help=f"default: {DEFAULT_JIT_CACHE}, or the config's"
    )
    parser.add_argument(
        "--solver",
        choices=("direct", "iterative"),
        default="direct",
        help="the iterative solver's forms include the direct one's",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="RECORD.json")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.config import load_config
    from dime_pipeline.fem.backend import versions
    from dime_pipeline.fem.solvers import SolverOptions
    from dime_pipeline.fem.warmup import warm_jit_cache
    from dime_pipeline.textio import check_outputs_spare_inputs, write_text_atomic

    check_outputs_spare_inputs([args.out], [args.config])
    config = None if args.config is None else load_config(args.config)
    dims = args.dim or [2 if config is None else config.dim]
    jit_cache = (
        args.jit_cache
        or Path(DEFAULT_JIT_CACHE if config is None else config.solver.jit_cache).expanduser()
    )
    seconds = warm_jit_cache(dims, jit_cache, SolverOptions(kind=args.solver))
    record = {
        "jit_cache": str(jit_cache),  # as given: a study folder may move
        "solver": args.solver,
        "seconds": {name: round(value, 3) for name, value in seconds.items()},
        "versions": versions(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, json.dumps(record, indent=2) + "\n")
    print(f"compiled {len(seconds)} form variant(s) into {jit_cache} ({args.out})")
