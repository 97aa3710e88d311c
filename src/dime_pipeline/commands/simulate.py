"""``dime-pipeline simulate``: one harmonic FEM solve per phantom, written as a sample store."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DEFAULT_JIT_CACHE = Path(os.environ.get("DIME_JIT_CACHE", "~/.cache/dime-pipeline/fenics"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="solve a phantom with dolfinx and write a sample store (runs under mpirun)",
        description="Solve the time-harmonic viscoelastic problem of PHANTOM_DIR (2D: plane "
        "strain and anti-plane shear; 3D: elasticity) and write SAMPLE.zarr. Run as "
        "`mpirun -n K dime-pipeline simulate ...` for K ranks; the result does not depend on K "
        "beyond solver round-off.",
    )
    parser.add_argument("phantom_dir", type=Path, metavar="PHANTOM_DIR")
    parser.add_argument("--out", type=Path, required=True, metavar="SAMPLE.zarr")
    parser.add_argument(
        "--jit-cache",
        type=Path,
        default=DEFAULT_JIT_CACHE.expanduser(),
        help="FFCx JIT cache folder (default: $DIME_JIT_CACHE or ~/.cache/dime-pipeline/fenics)",
    )
    parser.add_argument(
        "--solver",
        choices=("direct", "iterative"),
        default="direct",
        help="direct: MUMPS LU (default); iterative: GMRES with a damped-operator preconditioner",
    )
    parser.add_argument(
        "--max-iterations", type=int, default=500, help="iterative solver: GMRES iterations"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.errors import UserError
    from dime_pipeline.fem.simulate import simulate
    from dime_pipeline.fem.solvers import SolverOptions

    if args.max_iterations < 1:
        raise UserError(f"--max-iterations must be >= 1 (got {args.max_iterations})")
    options = SolverOptions(kind=args.solver, max_iterations=args.max_iterations)
    # An error on one rank ends every rank: `dime_pipeline.cli.main` aborts the MPI job.
    simulate(args.phantom_dir, args.out, args.jit_cache, options)
