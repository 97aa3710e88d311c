"""`profiles/slurm` as shipped, on a fake SLURM (tests/fake_slurm): the real workflow is
submitted with sbatch, polled with sacct, and its samples are made by a shard job whose solves
run as 2-rank MPI steps (`srun --mpi=pmi2 -n 2`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from test_workflow import TINY

from dime_pipeline.store import read_sample

FAKE_SLURM = Path(__file__).parent / "fake_slurm"
SAMPLES = 3  # the fewest that give each of train, val and test a sample
RANKS = 2  # the plugin refuses MPI jobs of fewer than 2 tasks


def target_rules(job: dict) -> list[str]:
    """Rules of the Snakemake jobs one SLURM job runs (`--target-jobs 'rule:wildcards' ...`)."""
    targets = job["wrap"].split("--target-jobs ", 1)[1].split(" --", 1)[0]
    return [target.strip("'").split(":")[0] for target in targets.split()]


def only(jobs: list[dict], rule: str) -> list[dict]:
    return [job for job in jobs if rule in target_rules(job)]


@pytest.mark.slow
@pytest.mark.mpi
def test_slurm_profile_runs_the_study(
    repo: Path, tmp_path: Path, jit_cache: Path, tool_env: dict[str, str]
) -> None:
    config = {
        **TINY,
        # every family named: the workflow's own config file may add the families left out
        "samples": {"homogeneous": SAMPLES, "heterogeneous": 0, "liver": 0},
        "acquisition": {"snr": [None]},
        "solver": {"ranks": RANKS, "jit_cache": str(jit_cache)},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    state, study = tmp_path / "slurm", tmp_path / "study"
    state.mkdir()
    env = {
        **tool_env,
        "PATH": f"{FAKE_SLURM}{os.pathsep}{tool_env['PATH']}",
        "FAKE_SLURM_DIR": str(state),
    }
    # What a user types on the login node, plus: poll the queue every second instead of after 40 s
    # (the plugin adds 10 s per poll that sees no job end) and a short latency wait (one machine).
    command = [
        "snakemake", "--workflow-profile", "profiles/slurm",
        "--snakefile", str(repo / "Snakefile"), "--directory", str(study),
        "--configfile", str(tmp_path / "tiny.yaml"), "--jobs", "4", "--latency-wait", "5",
        "--seconds-between-status-checks", "1", "--slurm-init-seconds-before-status-checks", "1",
    ]  # fmt: skip
    try:
        result = subprocess.run(
            command, cwd=repo, env=env, capture_output=True, text=True, timeout=900
        )
    finally:  # no job outlives the test, even when snakemake was killed
        if ids := [path.name for path in (state / "jobs").glob("*")]:
            subprocess.run(["scancel", *ids], env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (study / "results/report/index.html").is_file()

    jobs = [json.loads(path.read_text()) for path in (state / "jobs").glob("*/job.json")]
    calls = [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]
    # Every SLURM job succeeded at once: the profile's retries hid nothing.
    assert [job["exit_code"] for job in jobs] == [0] * len(jobs)

    # Shards: one SLURM job makes every sample (phantom, MPI solve, acquisitions) with RANKS
    # tasks of one CPU and 4 GB each (the profile's `set-resources: shard:`); its one step is
    # the rule's `srun --mpi=pmi2 -n RANKS dime-pipeline shard` (the fake runs it with mpiexec).
    steps: dict[str, list[list[str]]] = {}
    for call in calls:
        if call["command"] == "srun":
            steps.setdefault(call["job"], []).append(call["argv"])
    (shard,) = [job for job in jobs if target_rules(job)[0].startswith("shard_")]
    assert target_rules(shard) == ["shard_homogeneous_0000"]
    options = shard["options"]
    assert (options["--ntasks"], options["--cpus-per-task"]) == (str(RANKS), "1")
    assert options["--mem-per-cpu"] == "4000" and "--mem" not in options
    # MPI through SLURM's PMI-2, not one 1-rank world per task
    expected = ["--mpi=pmi2", "-n", str(RANKS), "dime-pipeline", "shard"]
    assert [argv[:5] for argv in steps[shard["id"]]] == [expected]
    assert not only(jobs, "phantom") and not only(jobs, "simulate") and not only(jobs, "acquire")
    for index in range(SAMPLES):
        sample = read_sample(study / f"results/samples/homogeneous/{index:04d}.zarr")
        assert sample.attrs["solver"]["ranks"] == RANKS  # the communicator the solve ran on

    # No warm-up job: a shard's first solve compiles under a lock on the JIT cache.
    assert not only(jobs, "warm_jit_cache")

    # Training and DIME inversion ask for a GPU (the tiny config then trains on the CPU).
    for rule, cpus in [("train", "8"), ("invert_dime", "4")]:
        (job,) = only(jobs, rule)
        assert job["options"]["--gpus"] == "1" and job["options"]["--cpus-per-task"] == cpus
        assert [argv[:5] for argv in steps[job["id"]]] == [
            ["-n1", "--cpu-bind=q", f"--cpus-per-task={cpus}", "--gpus=1", "--nodes=1"]
        ]
