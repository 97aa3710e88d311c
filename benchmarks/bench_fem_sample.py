"""Per-sample cost of the 2D pipeline on a 256² grid: where the time goes, and MPI speedup.

Run: ``.venv/bin/python benchmarks/bench_fem_sample.py [--repeats 3]`` (writes
``benchmarks/results/fem_sample.json``). Stages are measured inside ``simulate`` (mesh read,
form compilation, assembly, factorise + solve, sampling, store write); "overhead" is the whole
``simulate`` call over the bare factorise + solve time. The 2-rank run goes through
``mpirun -n 2 dime-pipeline simulate`` on the same phantom; its speedup is relative to the
1-rank median of the same process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import RESULTS, machine, write_report

from dime_pipeline.config import dump_config, validate_config
from dime_pipeline.fem.simulate import simulate
from dime_pipeline.phantoms import make_phantom
from dime_pipeline.store import read_sample

CONFIG = {
    "grid": {"shape": [256, 256], "voxel_size_mm": 1.5},
    "materials": {"storage_modulus_kpa": {"min": 2.0, "max": 2.0}},
}


def _solve_seconds(timings: dict[str, float]) -> float:
    return sum(value for key, value in timings.items() if key.endswith("_solve"))


def run(repeats: int, seed: int = 11) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-fem-"))
    config = validate_config(CONFIG)
    (work / "config.yaml").write_text(dump_config(config))
    jit = work / "jit"
    start = time.perf_counter()
    make_phantom("homogeneous", seed, config, work / "phantom")
    phantom_seconds = time.perf_counter() - start
    simulate(work / "phantom", work / "warmup.zarr", jit)  # compile the forms once

    one_rank = [simulate(work / "phantom", work / f"r1-{i}.zarr", jit) for i in range(repeats)]
    medians = {key: statistics.median(t[key] for t in one_rank) for key in one_rank[0]}
    overheads = [t["total"] / _solve_seconds(t) for t in one_rank]
    one_rank_stages = [
        sum(v for k, v in t.items() if k not in ("total", "write")) for t in one_rank
    ]

    two_rank_totals = []
    for i in range(repeats):
        out = work / f"r2-{i}.zarr"
        mpirun = str(Path(sys.executable).parent / "mpirun")
        command = [mpirun, "-n", "2", sys.executable, "-m", "dime_pipeline.cli", "--quiet"]
        command += ["simulate", str(work / "phantom"), "--out", str(out), "--jit-cache", str(jit)]
        subprocess.run(command, check=True)
        two_rank_totals.append(sum(read_sample(out).attrs["solver"]["seconds"].values()))
    sample = read_sample(work / "r1-0.zarr")
    return {
        "benchmark": "fem_sample_2d",
        "grid": list(sample.modulus.shape),
        "dofs": sample.attrs["solver"]["dofs"],
        "cells": sample.attrs["solver"]["cells"],
        "repeats": repeats,
        "phantom_seconds": round(phantom_seconds, 4),
        "median_seconds_1_rank": {k: round(v, 4) for k, v in medians.items()},
        "median_overhead_total_over_solve": round(statistics.median(overheads), 3),
        # Speedup over the stages every rank runs (mesh … sample), from the stores' timings.
        "median_stages_1_rank": round(statistics.median(one_rank_stages), 4),
        "median_stages_2_ranks": round(statistics.median(two_rank_totals), 4),
        "speedup_2_ranks": round(
            statistics.median(one_rank_stages) / statistics.median(two_rank_totals), 3
        ),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    result = run(parser.parse_args().repeats)
    write_report(RESULTS / "fem_sample.json", result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
