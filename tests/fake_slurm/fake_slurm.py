#!/usr/bin/env python3
"""A fake SLURM that runs jobs on this machine, for tests/test_slurm_profile.py.

Each SLURM command the Snakemake SLURM executor plugins call (`sbatch`, `sacct`, `scancel`, `srun`,
`sinfo`, `scontrol`) is a symlink to this file; the name it is called by picks the command.
Only the options those plugins use are understood: anything else exits with an error, so a change
in what the plugin sends (or a profile asking for something odd) fails the test instead of being
silently ignored.

The fake cluster is one partition, `main` (the default), of identical nodes (NODE below); a job
must fit on one node. `sbatch --wrap` runs the job in the background as a local process with the
SLURM_* variables a batch job sees; `sacct` reports RUNNING, then COMPLETED or FAILED from its exit
status; `scancel` kills it; `srun` starts a step inside a job: with `-n N` > 1 through
`mpiexec -n N`, else directly.

State lives in $FAKE_SLURM_DIR, which must be set: every call is appended to `calls.jsonl` as
{"command", "argv", "job" (SLURM_JOB_ID of the caller, or null), "time"}, and every job has
`jobs/<id>/job.json`: what sbatch was asked for (argv, parsed options), when, and once the job
has ended its exit code and start and end times.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import NoReturn

PARTITION = "main"
NODE = {"cpus": 32, "mem_mb": 192_000, "gpus": 4}
MAX_TIME_MINUTES = 3 * 24 * 60
FIRST_JOB_ID = 1001
HERE = Path(__file__).resolve()


def fail(command: str, message: str) -> NoReturn:
    print(f"{command}: error: {message}", file=sys.stderr)
    sys.exit(1)


def state_dir(command: str) -> Path:
    path = os.environ.get("FAKE_SLURM_DIR")
    if not path:
        fail(command, "FAKE_SLURM_DIR is not set (the fake SLURM keeps its state there)")
    return Path(path)


def record_call(command: str, argv: list[str]) -> None:
    job = os.environ.get("SLURM_JOB_ID")
    line = json.dumps({"command": command, "argv": argv, "job": job, "time": time.time()})
    with open(state_dir(command) / "calls.jsonl", "a") as log:
        fcntl.flock(log, fcntl.LOCK_EX)  # the plugin submits from two threads at once
        log.write(line + "\n")


def parse_options(
    command: str,
    argv: list[str],
    flags: set[str],
    valued: dict[str, str],
    stop_at_positional: bool = False,
) -> tuple[dict[str, str], list[str]]:
    """Options by long name; `valued` maps every accepted spelling (`-n`, `--ntasks`) to the long
    name, values come as `--opt=v`, `--opt v`, `-n v` or `-nv`. Unknown options are an error."""
    options: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-") or arg == "-":
            if stop_at_positional:
                return options, argv[i:]
            positional.append(arg)
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if not eq and not arg.startswith("--") and len(arg) > 2 and arg[:2] in valued:
            name, value, eq = arg[:2], arg[2:], "="  # -n1: a short option with its value
        if name in flags and not eq:
            options[name] = ""
        elif name in valued:
            if not eq:
                if i + 1 >= len(argv):
                    fail(command, f"option {name} requires an argument")
                i += 1
                value = argv[i]
            options[valued[name]] = value
        else:
            fail(command, f"unrecognized option '{arg}' (the fake SLURM does not know it)")
        i += 1
    return options, positional


def positive_int(command: str, option: str, value: str) -> int:
    if not re.fullmatch(r"[1-9]\d*", value):
        fail(command, f"invalid {option} value '{value}': expected a positive integer")
    return int(value)


def job_dir(command: str, job_id: str) -> Path:
    path = state_dir(command) / "jobs" / job_id
    if not re.fullmatch(r"\d+", job_id) or not (path / "job.json").is_file():
        fail(command, f"invalid job id specified: {job_id}")
    return path


# --- sbatch -------------------------------------------------------------------------------------

SBATCH_FLAGS = {"--parsable"}
SBATCH_VALUED = {
    **{k: "--job-name" for k in ("-J", "--job-name")},
    **{k: "--output" for k in ("-o", "--output")},
    **{k: "--account" for k in ("-A", "--account")},
    **{k: "--partition" for k in ("-p", "--partition")},
    **{k: "--time" for k in ("-t", "--time")},
    **{k: "--ntasks" for k in ("-n", "--ntasks")},
    **{k: "--cpus-per-task" for k in ("-c", "--cpus-per-task")},
    **{k: "--chdir" for k in ("-D", "--chdir")},
    **{k: k for k in ("--export", "--comment", "--mem", "--mem-per-cpu", "--gpus", "--wrap")},
}


def sbatch(argv: list[str]) -> None:
    """Check the request against the cluster, start the job in the background, print its id."""
    options, positional = parse_options("sbatch", argv, SBATCH_FLAGS, SBATCH_VALUED)
    if positional or "--wrap" not in options:
        fail("sbatch", "the fake sbatch only runs --wrap commands (no batch scripts)")
    if options.get("--export", "ALL") != "ALL":
        fail("sbatch", "the fake sbatch only supports --export=ALL")
    partition = options.get("--partition", PARTITION)
    if partition != PARTITION:
        fail("sbatch", f"invalid partition specified: {partition}")
    if "--mem" in options and "--mem-per-cpu" in options:
        fail("sbatch", "--mem and --mem-per-cpu are mutually exclusive")
    ntasks = positive_int("sbatch", "--ntasks", options.get("--ntasks", "1"))
    cpus_per_task = positive_int("sbatch", "--cpus-per-task", options.get("--cpus-per-task", "1"))
    gpus = positive_int("sbatch", "--gpus", options["--gpus"]) if "--gpus" in options else 0
    minutes = positive_int("sbatch", "--time (minutes)", options.get("--time", "60"))
    cpus = ntasks * cpus_per_task
    if "--mem-per-cpu" in options:
        mem_mb = cpus * positive_int("sbatch", "--mem-per-cpu", options["--mem-per-cpu"])
    else:
        mem_mb = positive_int("sbatch", "--mem", options.get("--mem", "1000"))
    if cpus > NODE["cpus"] or mem_mb > NODE["mem_mb"] or gpus > NODE["gpus"]:
        # what SLURM answers when no node can ever hold the job
        fail("sbatch", "Batch job submission failed: Requested node configuration is not available")
    if minutes > MAX_TIME_MINUTES:
        fail("sbatch", "Batch job submission failed: Requested time limit is invalid")

    jobs = state_dir("sbatch") / "jobs"
    jobs.mkdir(exist_ok=True)
    job_id = FIRST_JOB_ID + len(list(jobs.iterdir()))
    while True:  # mkdir is atomic: concurrent sbatch calls get different ids
        try:
            (jobs / str(job_id)).mkdir()
            break
        except FileExistsError:
            job_id += 1
    job = {
        "id": str(job_id),
        "name": options.get("--job-name", "wrap"),
        "account": options.get("--account"),
        "partition": partition,
        "ntasks": ntasks,
        "cpus_per_task": cpus_per_task,
        "mem_mb": mem_mb,
        "gpus": gpus,
        "workdir": options.get("--chdir", os.getcwd()),
        "submit_dir": os.getcwd(),
        "output": options.get("--output", "slurm-%j.out").replace("%j", str(job_id)),
        "wrap": options["--wrap"],
        "argv": argv,
        "options": options,
        "submitted": time.time(),
    }
    write_job(jobs / str(job_id), job)
    # The runner outlives sbatch; its own session lets scancel kill the whole job at once, and
    # no inherited pipe keeps the plugin's `communicate()` waiting for the job.
    subprocess.Popen(
        [sys.executable, str(HERE), "job-runner", str(job_id)],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(job_id if "--parsable" in options else f"Submitted batch job {job_id}")


def job_runner(argv: list[str]) -> None:
    """Run one batch job (started by sbatch, not a SLURM command): `sh -c WRAP` in the job's
    working directory with the batch environment, output to --output; then records the end."""
    folder = job_dir("job-runner", argv[0])
    job = json.loads((folder / "job.json").read_text())
    (folder / "pgid").write_text(str(os.getpgid(0)))
    if (folder / "cancelled").exists():  # scancel came first
        return
    start = time.time()
    env = {
        **os.environ,
        "SLURM_JOB_ID": job["id"],
        "SLURM_JOBID": job["id"],
        "SLURM_JOB_NAME": job["name"],
        "SLURM_JOB_PARTITION": job["partition"],
        "SLURM_SUBMIT_DIR": job["submit_dir"],
        "SLURM_JOB_NUM_NODES": "1",
        "SLURM_NNODES": "1",
        "SLURM_NTASKS": str(job["ntasks"]),
        "SLURM_NPROCS": str(job["ntasks"]),
        "SLURM_CPUS_PER_TASK": str(job["cpus_per_task"]),
        "SLURM_CPUS_ON_NODE": str(job["ntasks"] * job["cpus_per_task"]),
    }
    if "--mem-per-cpu" in job["options"]:
        env["SLURM_MEM_PER_CPU"] = job["options"]["--mem-per-cpu"]
    else:
        env["SLURM_MEM_PER_NODE"] = str(job["mem_mb"])
    if job["account"]:
        env["SLURM_JOB_ACCOUNT"] = job["account"]
    if job["gpus"]:
        env["SLURM_GPUS"] = str(job["gpus"])  # the jobstep plugin reads it to spot GPU jobs
    output = Path(job["workdir"], job["output"])
    with open(output, "w") as log:
        code = subprocess.call(
            ["/bin/sh", "-c", job["wrap"]], cwd=job["workdir"], env=env, stdout=log, stderr=log
        )
    write_job(folder, {**job, "exit_code": code, "start": start, "end": time.time()})


def write_job(folder: Path, job: dict) -> None:
    (folder / "job.tmp").write_text(json.dumps(job))
    (folder / "job.tmp").rename(folder / "job.json")  # atomic: sacct never reads half a record


def job_state(folder: Path) -> str:
    if (folder / "cancelled").exists():
        return "CANCELLED"
    exit_code = json.loads((folder / "job.json").read_text()).get("exit_code")
    if exit_code is not None:
        return "COMPLETED" if exit_code == 0 else "FAILED"
    return "RUNNING"


# --- sacct, scancel ------------------------------------------------------------------------------

SACCT_FLAGS = {"-X", "--allocations", "--parsable2", "-n", "--noheader"}
SACCT_VALUED = {
    **{k: "--format" for k in ("-o", "--format")},
    **{k: "--jobs" for k in ("-j", "--jobs")},
    **{k: k for k in ("--clusters", "--starttime", "--endtime", "--name")},
}


def sacct(argv: list[str]) -> None:
    """Job accounting: one line per job, fields of --format; `--parsable2` separates them by `|`.
    The plugin polls `sacct -X --parsable2 --noheader --format=JobIdRaw,State --name RUN_UUID`."""
    options, positional = parse_options("sacct", argv, SACCT_FLAGS, SACCT_VALUED)
    if positional:
        fail("sacct", f"Unknown arguments: {' '.join(positional)}")
    fields = options.get("--format", "JobIdRaw,State").split(",")
    values = {"jobidraw": "id", "jobid": "id", "state": "state", "reason": "reason"}
    if unknown := [f for f in fields if f.lower() not in values]:
        fail("sacct", f"the fake sacct does not know the field(s) {unknown}")
    if options.get("--clusters", "all") != "all":
        fail("sacct", "the fake cluster is the only one: --clusters must be 'all'")
    jobs = state_dir("sacct") / "jobs"
    rows = []
    if "--jobs" in options:
        # steps (`1234.0`) are not recorded: like sacct for a step that never ran, print nothing
        wanted = [jid for jid in options["--jobs"].split(",") if "." not in jid]
        folders = [job_dir("sacct", jid) for jid in wanted]
    else:
        # a folder without job.json is a job sbatch is still writing: not submitted yet
        folders = sorted(jobs.glob("*/job.json"), key=lambda p: int(p.parent.name))
        folders = [path.parent for path in folders]
    for folder in folders:
        job = json.loads((folder / "job.json").read_text())
        if "--name" in options and job["name"] != options["--name"]:
            continue
        record = {"id": job["id"], "state": job_state(folder), "reason": "None"}
        rows.append([record[values[f.lower()]] for f in fields])
    if "--noheader" not in options and "-n" not in options:
        rows.insert(0, fields)
    for row in rows:
        print("|".join(row) if "--parsable2" in options else " ".join(f"{v:>12}" for v in row))


def scancel(argv: list[str]) -> None:
    _, job_ids = parse_options("scancel", argv, set(), {"--clusters": "--clusters"})
    if not job_ids:
        fail("scancel", "no job id specified")
    for job_id in job_ids:
        folder = job_dir("scancel", job_id)
        if job_state(folder) != "RUNNING":
            continue
        (folder / "cancelled").touch()
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # not started / ended
            os.killpg(int((folder / "pgid").read_text()), signal.SIGTERM)


# --- srun ----------------------------------------------------------------------------------------

SRUN_VALUED = {
    **{k: "--ntasks" for k in ("-n", "--ntasks")},
    **{k: "--cpus-per-task" for k in ("-c", "--cpus-per-task")},
    **{k: "--nodes" for k in ("-N", "--nodes")},
    **{k: k for k in ("--cpu-bind", "--gpus", "--mpi")},
}
MPI_PLUGINS = ("pmi2", "pmix", "none")


def srun(argv: list[str]) -> None:
    """A job step inside a batch job: checked against the job's allocation, then run with
    `mpiexec -n N` (N > 1 tasks) or directly."""
    options, step = parse_options("srun", argv, set(), SRUN_VALUED, stop_at_positional=True)
    if not step:
        fail("srun", "no command given")
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        fail("srun", "the fake srun only runs steps inside a job (SLURM_JOB_ID is not set)")
    job = json.loads((job_dir("srun", job_id) / "job.json").read_text())
    if options.get("--cpu-bind", "quiet") not in ("q", "quiet", "none"):
        fail("srun", f"the fake srun does not bind CPUs (--cpu-bind={options['--cpu-bind']})")
    if options.get("--nodes", "1") != "1":
        fail("srun", "the fake cluster runs every job on one node (--nodes must be 1)")
    if options.get("--mpi", "pmi2") not in MPI_PLUGINS:
        fail("srun", f"MPI plugin {options['--mpi']!r} not in {MPI_PLUGINS}")
    ntasks = positive_int("srun", "--ntasks", options.get("--ntasks", "1"))
    cpus_per_task = positive_int("srun", "--cpus-per-task", options.get("--cpus-per-task", "1"))
    gpus = positive_int("srun", "--gpus", options["--gpus"]) if "--gpus" in options else 0
    if ntasks * cpus_per_task > job["ntasks"] * job["cpus_per_task"] or gpus > job["gpus"]:
        fail(
            "srun",
            f"Unable to create step for job {job_id}: More processors requested than permitted",
        )
    env = {**os.environ, "SLURM_NTASKS": str(ntasks), "SLURM_CPUS_PER_TASK": str(cpus_per_task)}
    if ntasks > 1:
        # mpich's hydra would spot SLURM_* and start its proxies with `srun --nodelist ...`:
        # hide the allocation and fork the ranks locally (one node).
        env = {k: v for k, v in env.items() if not k.startswith("SLURM_")}
        step = ["mpiexec", "-launcher", "fork", "-n", str(ntasks), *step]
    sys.exit(subprocess.call(step, env=env))


# --- sinfo, scontrol -----------------------------------------------------------------------------


def sinfo(argv: list[str]) -> None:
    """Partition list: the plugin asks `sinfo -o %P` for the default (starred) partition."""
    options, positional = parse_options("sinfo", argv, set(), {"-o": "-o", "--format": "-o"})
    if positional or options.get("-o") != "%P":
        fail("sinfo", "the fake sinfo only answers `sinfo -o %P`")
    print(f"PARTITION\n{PARTITION}*")


def scontrol(argv: list[str]) -> None:
    """`scontrol show config`: the plugin reads MinJobAge (squeue vs sacct) and MaxArraySize."""
    if argv != ["show", "config"]:
        fail("scontrol", f"the fake scontrol only answers `scontrol show config` (got {argv})")
    print("MaxArraySize            = 1001\nMinJobAge               = 300 sec")


COMMANDS = {
    "sbatch": sbatch,
    "sacct": sacct,
    "scancel": scancel,
    "srun": srun,
    "sinfo": sinfo,
    "scontrol": scontrol,
}


def main() -> None:
    command, argv = Path(sys.argv[0]).name, sys.argv[1:]
    if command == HERE.name:  # `fake_slurm.py COMMAND ...`, e.g. the job runner
        if not argv:
            fail(command, f"usage: {command} COMMAND [ARGS...]")
        command, argv = argv[0], argv[1:]
    if command == "job-runner":
        job_runner(argv)
        return
    if command not in COMMANDS:
        fail(command, "not a command of the fake SLURM")
    record_call(command, argv)
    COMMANDS[command](argv)


if __name__ == "__main__":
    main()
