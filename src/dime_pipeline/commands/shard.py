"""``dime-pipeline shard``: a batch of samples of one family in one process, phantom to acquired
stores (see ``dime_pipeline.shards``)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dime_pipeline.commands.simulate import DEFAULT_JIT_CACHE

STARTED = time.perf_counter()  # the command module is imported at start: start-up counts from here


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "shard",
        help="make samples of one family from phantom to acquired stores in one process",
        description="For each INDEX: draw and mesh phantom meshes/FAMILY/INDEX, solve it into "
        "results/samples/FAMILY/INDEX.zarr and acquire it at every noise level of the config "
        "into results/acquired/FAMILY/INDEX/snr-LEVEL.zarr, with the seeds of the study: the "
        "same files as the one-sample rules phantom, simulate and acquire (timings aside). "
        "Paths are relative to --root (default: the current folder). Run under "
        "`mpirun -n K` for K ranks per solve. Also reruns a single sample: give one INDEX.",
    )
    parser.add_argument("family", metavar="FAMILY", help="homogeneous, heterogeneous or liver")
    parser.add_argument("indices", type=int, nargs="+", metavar="INDEX", help="sample numbers")
    parser.add_argument("--config", type=Path, required=True, help="the study's config YAML")
    parser.add_argument("--root", type=Path, default=Path("."), help="the study folder")
    parser.add_argument(
        "--jit-cache",
        type=Path,
        help=f"FFCx JIT cache folder (default: the config's solver.jit_cache; {DEFAULT_JIT_CACHE})",
    )
    parser.add_argument("--record", type=Path, help="write the shard's stage timings here (JSON)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    from dime_pipeline.config import FAMILIES, load_config
    from dime_pipeline.errors import UserError
    from dime_pipeline.fem.solvers import SolverOptions
    from dime_pipeline.shards import run_shard, write_record

    config = load_config(args.config)
    if args.family not in FAMILIES:
        raise UserError(
            f"unknown phantom family '{args.family}' (choose from {', '.join(FAMILIES)})"
        )
    wanted = config.samples.get(args.family, 0)
    bad = [index for index in args.indices if not 0 <= index < wanted]
    if bad:
        raise UserError(
            f"sample {bad[0]} of {args.family} is not in the study (it has {wanted}: "
            f"0-{wanted - 1})"
        )
    solver = config.solver
    jit_cache = args.jit_cache or Path(solver.jit_cache).expanduser()
    options = SolverOptions(kind=solver.kind, max_iterations=solver.max_iterations)
    from dime_pipeline.fem import backend  # MPI, PETSc, dolfinx: start-up
    from dime_pipeline.phantoms import meshing  # noqa: F401  (gmsh)

    ready = time.perf_counter()
    stages = run_shard(config, args.family, args.indices, jit_cache, options, args.root)
    stages["startup"] = ready - STARTED
    if args.record is not None and backend.MPI.COMM_WORLD.rank == 0:
        record = {
            "family": args.family,
            "indices": args.indices,
            "seconds": stages,
            "wall_seconds": time.perf_counter() - STARTED,
            "ranks": backend.MPI.COMM_WORLD.size,
        }
        write_record(args.record, record)
