"""3D block solve: time, peak memory and 1 vs 2 MPI ranks (issue target: 20x16x10 cm, >= 6 P2
elements per shear wavelength at 60 Hz in 1.5 kPa tissue, <= 10 min and <= 16 GB on 2 cores).

Run: ``.venv/bin/python benchmarks/bench_fem_3d.py --scale 0.4 --solver direct`` (writes
``benchmarks/results/fem_3d_<solver>_<scale>.json``). ``--scale s`` shrinks every edge of the
block by s at the same resolution (dofs ~ s³), to measure how cost grows towards the full block.
The driver is the top face (prescribed 20 µm, z direction); the other faces absorb. Each rank
count runs in its own ``mpirun`` process with one BLAS thread per rank; memory is the peak
resident size summed over ranks. MUMPS factorises LDLᵀ (the forms are complex symmetric), with
block low-rank compression unless ``--no-blr``; ``--solver iterative`` is FGMRES with the block
preconditioner (``dime_pipeline.fem.preconditioners``) to a relative residual of 10⁻⁸.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from common import RESULTS, machine, write_report

BLOCK_M = (0.20, 0.16, 0.10)
FREQUENCY_HZ, STORAGE_PA, LOSS_RATIO, DENSITY = 60.0, 1500.0, 0.2, 1000.0
ELEMENTS_PER_WAVELENGTH = 6


def block_cells(scale: float) -> tuple[list[float], list[int], float]:
    shear = STORAGE_PA * (1 + 1j * LOSS_RATIO)
    k = 2 * np.pi * FREQUENCY_HZ * np.sqrt(DENSITY / shear)
    wavelength = 2 * np.pi / k.real
    size = wavelength / ELEMENTS_PER_WAVELENGTH
    edges = [scale * edge for edge in BLOCK_M]
    return edges, [int(np.ceil(edge / size)) for edge in edges], wavelength


def solve_once(scale: float, solver: str, blr: bool = True, restart: int = 100) -> dict:
    """Runs on every rank of the current MPI world; returns rank 0's record."""
    from dime_pipeline.fem.backend import MPI
    from dime_pipeline.fem.meshes import SIDES, tagged_box, uniform_medium
    from dime_pipeline.fem.solvers import Boundary, SolverOptions, solve_elastic

    comm = MPI.COMM_WORLD
    edges, cells, wavelength = block_cells(scale)
    start = time.perf_counter()
    mesh, tags = tagged_box([0.0, 0.0, 0.0], edges, cells, comm)
    medium = uniform_medium(mesh, STORAGE_PA * (1 + 1j * LOSS_RATIO), 2.2e9, DENSITY)
    mesh_seconds = time.perf_counter() - start
    absorbing = [tag for name, tag in SIDES.items() if name != "zmax"]
    boundary = Boundary(prescribed={SIDES["zmax"]: (0.0, 0.0, 2e-5)}, absorbing=absorbing)
    options = SolverOptions(
        kind=solver, blr=blr and solver == "direct", blr_tolerance=1e-7, restart=restart
    )
    start = time.perf_counter()
    solution = solve_elastic(medium, 2 * np.pi * FREQUENCY_HZ, tags, boundary, options=options)
    total = time.perf_counter() - start
    peak_mb = comm.allreduce(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, MPI.SUM)
    return {
        "scale": scale,
        "block_m": edges,
        "cells_per_axis": cells,
        "wavelength_m": wavelength,
        "elements_per_wavelength": ELEMENTS_PER_WAVELENGTH,
        "dofs": solution.dofs,
        "ranks": comm.size,
        "solver": solver,
        "blr": options.blr,
        "iterations": solution.iterations,
        "restart": restart if solver == "iterative" else None,
        "seconds": {"mesh": mesh_seconds, **solution.seconds, "total": total},
        "peak_memory_mb": peak_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.4)
    parser.add_argument("--solver", choices=("direct", "iterative"), default="direct")
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-blr", dest="blr", action="store_false", help="plain MUMPS")
    parser.add_argument(
        "--restart", type=int, default=100, help="iterative: FGMRES restart (2 vectors each)"
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.restart < 1 or args.scale <= 0 or min(args.ranks) < 1:
        parser.error("--restart and --ranks must be >= 1 and --scale > 0")
    if args.worker:
        record = solve_once(args.scale, args.solver, args.blr, args.restart)
        if record["ranks"] == 1 or _rank() == 0:
            print("RESULT " + json.dumps(record), flush=True)
        return
    runs = []
    for ranks in args.ranks:
        mpirun = str(Path(sys.executable).parent / "mpirun")
        command = [mpirun, "-n", str(ranks), sys.executable, __file__, "--worker"]
        command += ["--scale", str(args.scale), "--solver", args.solver]
        command += ["--restart", str(args.restart)] + ([] if args.blr else ["--no-blr"])
        # One BLAS thread per rank, as the workflow runs its solves: 2 ranks × 2 threads would
        # oversubscribe the cores, and a threaded 1-rank baseline would flatter 1 rank.
        env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
        output = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
        runs.append(json.loads(output.split("RESULT ", 1)[1].splitlines()[0]))
    result = {"benchmark": "fem_3d_block", "runs": runs}
    if len(runs) > 1:
        result["speedup_2_ranks"] = runs[0]["seconds"]["total"] / runs[1]["seconds"]["total"]
    variant = "" if args.blr else "_noblr"
    if args.solver == "iterative" and args.restart != 100:
        variant = f"_restart{args.restart}"
    name = f"fem_3d_{args.solver}{variant}_{args.scale:g}.json"
    write_report(RESULTS / name, {**result, "machine": machine()})
    print(json.dumps(result, indent=2))


def _rank() -> int:
    from dime_pipeline.fem.backend import MPI

    return MPI.COMM_WORLD.rank


if __name__ == "__main__":
    main()
