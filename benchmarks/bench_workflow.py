"""A study from nothing to its train pack with `snakemake --cores N`: shard size 1 (a job per
stage and sample) against shards, one after the other in this run, on fresh study folders.

    python benchmarks/bench_workflow.py [--per-family 8] [--shard-sizes 1 8] [--cores 2]
        [--repeats 3] [--out benchmarks/results/workflow.json]

The study: 8 phantoms per family (homogeneous, heterogeneous, liver), 2D, 80² pixels of 2 mm,
30-90 Hz, noise-free and SNR 10, the direct solver; the JIT cache is warm (a shared folder,
filled by a first untimed warm-up) so neither run pays for compiling. Reported per shard size:
wall time per sample, and where the core time (wall × cores) went:

- solve: factorise + solve, summed from the stores' `solver.seconds` (`*_solve`);
- assembly (`*_assemble`, `*_compile`: kernel loading), meshing (`phantom` stage; for one-sample
  jobs the `phantom` rule's wall time minus nothing: it is mostly start-up, counted there),
  sampling, writes (the store), acquisition (every noise level, with its writes);
- start-up: for one-sample jobs the jobs' wall time (Snakemake's benchmark files) minus the
  in-process stages above; for shards what `dime-pipeline shard` records before its first sample;
- the rest: Snakemake's own start-up and scheduling, and idle cores (a job alone at the end).

With ``--repeats N`` each shard size runs N times (interleaved, so drift hits all sizes alike);
the run of median wall time is reported, with every run's wall time beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import RESULTS, machine, write_report

REPO = Path(__file__).resolve().parents[1]
FAMILIES = ("homogeneous", "heterogeneous", "liver")


def study_config(per_family: int, shard_size: int, jit_cache: str) -> dict:
    return {
        "seed": 4242,
        "samples": dict.fromkeys(FAMILIES, per_family),
        "frequency_hz": {"min": 30.0, "max": 90.0},
        "grid": {"shape": [80, 80], "voxel_size_mm": 2.0},
        "acquisition": {"snr": [None, 10.0]},
        "solver": {"ranks": 1, "jit_cache": jit_cache},
        "workflow": {"shard_size": shard_size},
    }


def run_study(
    folder: Path, config: dict, cores: int, target: str = "results/datasets/train.zarr"
) -> float:
    (folder / "config").mkdir(parents=True)
    (folder / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [
        "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(folder),
        "--cores", str(cores), "--quiet", "all", "--", target,
    ]  # fmt: skip
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def stage_split(folder: Path) -> dict[str, float]:
    """Core seconds per stage (see the module docstring)."""
    import zarr

    split = dict.fromkeys(
        ("startup", "meshing", "assembly", "solve", "sampling", "writes", "acquisition"), 0.0
    )
    solver_seconds = 0.0
    for store in sorted(folder.glob("results/samples/*/*.zarr")):
        seconds = zarr.open_group(store, mode="r").attrs["solver"]["seconds"]
        for name, value in seconds.items():
            if name.endswith("_solve"):
                split["solve"] += value
            elif name.endswith(("_assemble", "_compile")) or name == "mesh":
                split["assembly"] += value
            elif name == "sample":
                split["sampling"] += value
            elif name == "write":
                split["writes"] += value
        solver_seconds += seconds.get("total", sum(seconds.values()))
    records = sorted(folder.glob("results/benchmarks/shard/*/*.json"))
    if records:  # shards record their own stages
        for record in (json.loads(path.read_text())["seconds"] for path in records):
            split["startup"] += record["startup"]
            split["meshing"] += record["phantom"]
            split["acquisition"] += record["acquire"]
        return split
    jobs = {rule: _job_seconds(folder, rule) for rule in ("phantom", "simulate", "acquire")}
    split["meshing"] = 0.0  # inside the phantom jobs' wall time, with their start-up
    split["acquisition"] = 0.0
    split["startup"] = jobs["phantom"] + jobs["acquire"] + jobs["simulate"] - solver_seconds
    return split


def _job_seconds(folder: Path, rule: str) -> float:
    total = 0.0
    for path in folder.glob(f"results/benchmarks/{rule}/**/*.tsv"):
        with open(path, newline="") as handle:
            total += float(next(csv.DictReader(handle, delimiter="\t"))["s"])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-family", type=int, default=8)
    parser.add_argument("--shard-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "workflow.json")
    args = parser.parse_args()
    samples = args.per_family * len(FAMILIES)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-workflow-") as tmp:
        jit_cache = str(Path(tmp) / "jit")
        warm = study_config(1, 1, jit_cache)  # untimed: fills the JIT cache
        warm["samples"] = {"homogeneous": 1}
        run_study(Path(tmp) / "warm", warm, args.cores, "results/samples/summary.json")
        runs: dict[int, list[tuple[float, dict[str, float]]]] = {}
        for repeat in range(args.repeats):
            for size in args.shard_sizes:
                folder = Path(tmp) / f"shard-{size}-{repeat}"
                config = study_config(args.per_family, size, jit_cache)
                wall = run_study(folder, config, args.cores)
                runs.setdefault(size, []).append((wall, stage_split(folder)))
                shutil.rmtree(folder)
        for size, measured in runs.items():
            wall, split = sorted(measured, key=lambda run: run[0])[len(measured) // 2]
            core_seconds = wall * args.cores
            results[str(size)] = {
                "wall_seconds": round(wall, 2),
                "wall_seconds_all_runs": [round(run[0], 2) for run in measured],
                "wall_seconds_per_sample": round(wall / samples, 3),
                "solve_share_of_core_time": round(split["solve"] / core_seconds, 4),
                "core_seconds_by_stage": {k: round(v, 2) for k, v in split.items()},
                "core_seconds_other": round(core_seconds - sum(split.values()), 2),
            }
            print(
                f"shard size {size}: {wall:.1f} s (median of {len(measured)}), "
                f"{wall / samples:.2f} s per sample, "
                f"{100 * split['solve'] / core_seconds:.1f} % of core time in the solves"
            )
    base, *others = args.shard_sizes
    for size in others:
        ratio = results[str(base)]["wall_seconds"] / results[str(size)]["wall_seconds"]
        results[str(size)]["speed-up_vs_shard_size_1"] = round(ratio, 2)
        print(f"shard size {size}: {ratio:.2f}x faster per sample than shard size {base}")
    report = {
        "machine": machine(cores=args.cores),
        "study": {"samples": samples, "grid": [80, 80], "voxel_size_mm": 2.0, "snr": [None, 10]},
        "results": results,
    }
    write_report(args.out, report)


if __name__ == "__main__":
    main()
