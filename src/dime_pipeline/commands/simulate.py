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
        help="direct: MUMPS LDLT (default); iterative: FGMRES with AMG of the damped operator "
        "(and a block preconditioner for displacement-pressure)",
    )
    parser.add_argument(
        "--max-iterations", type=int, default=500, help="iterative solver: GMRES iterations"
    )
    parser.add_argument(
        "--restart",
        type=int,
        metavar="N",
        help="iterative solver: FGMRES restart, the Krylov vectors kept (memory: 2 × N vectors "
        "of the system's size; default 100). Fewer save memory on large 3D solves but may not "
        "converge",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.errors import UserError
    from dime_pipeline.fem.simulate import simulate
    from dime_pipeline.fem.solvers import SolverOptions
    from dime_pipeline.textio import check_outputs_spare_inputs

    check_outputs_spare_inputs([args.out], [args.phantom_dir])
    chosen = {"max_iterations": args.max_iterations, "restart": args.restart}
    chosen = {key: value for key, value in chosen.items() if value is not None}
    for key, value in chosen.items():
        if value < 1:
            raise UserError(f"--{key.replace('_', '-')} must be >= 1 (got {value})")
    options = SolverOptions(kind=args.solver, **chosen)
    _check_mpi_started()
    # An error on one rank ends every rank: `dime_pipeline.cli.main` aborts the MPI job.
    simulate(args.phantom_dir, args.out, args.jit_cache, options)


def _check_mpi_started() -> None:
    """srun started several tasks, but each is an MPI world of its own (MPI did not reach
    SLURM's PMI): they would all solve the whole problem and race to write the same store."""
    from dime_pipeline.errors import UserError
    from dime_pipeline.fem.backend import MPI

    tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS", "1"))
    if tasks > 1 and MPI.COMM_WORLD.size == 1:
        raise UserError(
            f"srun started {tasks} tasks but each is a separate MPI world of 1 rank: start MPI "
            "through SLURM's PMI (`srun --mpi=pmi2` or `--mpi=pmix`)"
        )
