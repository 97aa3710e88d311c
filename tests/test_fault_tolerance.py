"""Fault tolerance: real kills of `simulate` and `train` jobs, reruns that finish them with the
same results, and MPI errors on one rank that end the whole job instead of hanging it.

Kills are SIGKILLs of every process of the job at once (a node failure): nothing gets to clean
up. They are timed by polling with a deadline, never by sleeping a guessed time.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from test_dime import make_pack
from test_workflow import TINY
from test_workflow import _snakemake as snakemake

from dime_pipeline.cli import main
from dime_pipeline.config import dump_config, validate_config
from dime_pipeline.store import read_sample

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").is_file(), reason="finds the job's processes in /proc (Linux)"
)
DEADLINE_S = 120

# The driver runs the real `dime-pipeline` entry point with one function of the simulate path
# replaced: `fail-error` / `fail-user` raise (RuntimeError / UserError) on rank 1 only, while
# rank 0 goes on into the sampler's collectives; `hang-in-write` stops rank 0 inside the store's
# atomic write, after every array is on disk, until it is killed.
DRIVER = """
import sys
import time
from pathlib import Path

from dime_pipeline import cli, store
from dime_pipeline.errors import UserError
from dime_pipeline.fem import simulate
from dime_pipeline.fem.backend import MPI

mode, marker = sys.argv[1], Path(sys.argv[2])
sample = simulate._sample


def failing_sample(*args, **kwargs):
    if MPI.COMM_WORLD.rank == 1:
        if mode == "fail-user":
            raise UserError("injected error on rank 1")
        raise RuntimeError("injected failure on rank 1")
    return sample(*args, **kwargs)


def hanging_consolidate(path):
    marker.write_text(str(path))
    time.sleep(600)


if mode.startswith("fail-"):
    simulate._sample = failing_sample
else:
    store.consolidate = hanging_consolidate
sys.exit(cli.main(sys.argv[3:]))
"""


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("fault_phantom")
    config = folder / "config.yaml"
    config.write_text(dump_config(validate_config({"seed": 3, "grid": {"shape": [24, 24]}})))
    argv = ["phantom", "homogeneous", "--seed", "77", "--config", str(config), "--no-preview"]
    assert main([*argv, "--out", str(folder / "p")]) == 0
    return folder / "p"


@pytest.fixture
def driver(tmp_path: Path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(DRIVER)
    return path


# --- MPI: an error on one rank ends every rank -----------------------------------------------


@pytest.mark.mpi
@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("fail-error", "RuntimeError: injected failure on rank 1"),
        ("fail-user", "dime-pipeline simulate: error: injected error on rank 1"),
    ],
)
def test_an_error_on_one_rank_ends_all_ranks(
    mode: str, message: str, phantom: Path, driver: Path, tmp_path: Path, jit_cache: Path, tool_env
) -> None:
    out = tmp_path / "sample.zarr"
    command = ["mpiexec", "-n", "2", sys.executable, str(driver), mode, str(tmp_path / "marker")]
    command += ["--quiet", "simulate", str(phantom), "--out", str(out)]
    start = time.monotonic()
    returncode, output = _run_bounded([*command, "--jit-cache", str(jit_cache)], tool_env)
    assert time.monotonic() - start < DEADLINE_S / 2, "the ranks did not end promptly"
    assert returncode != 0
    assert message in output
    # Unexpected errors come with their traceback; a UserError is one line.
    assert ("Traceback" in output) == (mode == "fail-error")
    assert not out.exists()
    assert not list(tmp_path.glob(".sample*")), "no temporary store either"


def test_an_error_on_every_rank_is_one_line(tmp_path: Path, tool_env) -> None:
    """A bad input fails both ranks at once: rank 0 reports it, the job ends, one line."""
    missing, out = tmp_path / "no-phantom", tmp_path / "sample.zarr"
    command = ["mpiexec", "-n", "2", "dime-pipeline", "--quiet", "simulate", str(missing)]
    returncode, output = _run_bounded([*command, "--out", str(out)], tool_env)
    assert returncode != 0
    assert [line for line in output.splitlines() if " error: " in line] == [
        f"dime-pipeline simulate: error: {missing}: not a phantom folder (no mesh.msh)"
    ]
    assert not out.exists()


# --- simulate: a kill inside the store's write -------------------------------------------------


def test_simulate_killed_while_writing_leaves_no_store(
    phantom: Path, driver: Path, tmp_path: Path, jit_cache: Path, tool_env
) -> None:
    """SIGKILL with every array on disk but before the rename: OUT must not exist."""
    out, marker = tmp_path / "sample.zarr", tmp_path / "marker"
    command = [sys.executable, str(driver), "hang-in-write", str(marker), "--quiet", "simulate"]
    command += [str(phantom), "--out", str(out), "--jit-cache", str(jit_cache)]
    job = subprocess.Popen(command, env=tool_env, start_new_session=True)
    try:
        _wait_for(marker.is_file, job, "the store write to begin")
    finally:
        _kill_tree(job.pid)
    assert job.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    partial = Path(marker.read_text())
    assert partial.parent == tmp_path and (partial / "displacement").is_dir()
    assert not out.exists()


# --- simulate: a Snakemake run killed while the solve runs ----------------------------------

STORE = "results/samples/homogeneous/0000.zarr"


def test_killed_simulate_job_reruns_to_an_identical_store(
    repo: Path, tmp_path: Path, jit_cache: Path, tool_env
) -> None:
    config = {**TINY, "solver": {"ranks": 1, "jit_cache": str(jit_cache)}}
    killed, clean = _study(tmp_path / "killed", config), _study(tmp_path / "clean", config)
    run = start_snakemake(repo, killed, tool_env, "--cores", "1", STORE)
    try:
        _wait_for(lambda: _simulate_rank(run.pid) is not None, run, "the simulate job to start")
    finally:
        _kill_tree(run.pid)
    assert run.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    assert (killed / "meshes/homogeneous/0000/mesh.msh").is_file()  # it did reach simulate
    assert not (killed / STORE).exists()

    # A killed Snakemake leaves its lock behind: unlock, then rerun what was incomplete.
    assert snakemake(repo, killed, tool_env, "--unlock").returncode == 0
    rerun = snakemake(repo, killed, tool_env, "--cores", "1", "--rerun-incomplete", STORE)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    reference = snakemake(repo, clean, tool_env, "--cores", "1", STORE)
    assert reference.returncode == 0, reference.stderr[-3000:]

    got, want = read_sample(killed / STORE), read_sample(clean / STORE)
    for name in ("displacement", "modulus", "mask", "labels"):
        a, b = getattr(got, name), getattr(want, name)
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), name
    # Everything but the wall-clock timings of the solve.
    for attrs in (got.attrs, want.attrs):
        attrs["solver"].pop("seconds")
    assert got.attrs == want.attrs


SUMMARY = "results/samples/summary.json"


def test_a_rerun_after_a_kill_during_the_warm_up_finishes_the_study(
    repo: Path, tmp_path: Path, tool_env
) -> None:
    """Snakemake killed while the JIT warm-up is its only job; the orphaned job finishes its
    record. The rerun must then run every solve (it ran the warm-up alone and exited 0 while
    the solves sat behind an `ancient` edge to the record)."""
    # A cold cache of its own: the warm-up compiles for seconds, long enough to be killed in.
    cold = {"ranks": 1, "jit_cache": str(tmp_path / "cold-jit")}
    study = _study(tmp_path / "study", {**TINY, "samples": {"homogeneous": 2}, "solver": cold})
    phantoms = snakemake(repo, study, tool_env, "--cores", "2", *_phantom_targets(2))
    assert phantoms.returncode == 0, phantoms.stderr[-3000:]
    run = start_snakemake(repo, study, tool_env, "--cores", "2", SUMMARY)
    warm_up = study / "results/logs/warm_jit_cache.log"
    try:
        _wait_for(warm_up.is_file, run, "the warm-up to start")
    finally:
        _signal(run.pid, signal.SIGKILL)  # Snakemake alone: its job goes on
    assert run.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    record = study / "results/jit/warm-up.json"
    deadline = time.monotonic() + DEADLINE_S
    while not record.is_file() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert record.is_file(), "the orphaned warm-up did not finish"
    assert not list(study.glob("results/samples/*/*.zarr"))

    assert snakemake(repo, study, tool_env, "--unlock").returncode == 0
    rerun = snakemake(repo, study, tool_env, "--cores", "2", "--rerun-incomplete", SUMMARY)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert len(list(study.glob("results/samples/homogeneous/*.zarr"))) == 2
    again = snakemake(repo, study, tool_env, "-n", SUMMARY)
    assert "Nothing to be done" in again.stdout + again.stderr


def _phantom_targets(count: int) -> list[str]:
    return [f"meshes/homogeneous/{index:04d}" for index in range(count)]


def start_snakemake(repo: Path, study: Path, env: dict[str, str], *args: str) -> subprocess.Popen:
    """`snakemake ARGS` on ``study`` in the background, in a session of its own (to be killed
    whole or alone)."""
    command = ["snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(study)]
    return subprocess.Popen(
        [*command, *args],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _study(path: Path, config: dict) -> Path:
    (path / "config").mkdir(parents=True)
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return path


def _simulate_rank(root: int) -> int | None:
    """The pid of a `dime-pipeline simulate` rank below ``root`` (the Python process itself, not
    the shell or mpiexec that start it), if one runs."""
    for pid in _descendants(root):
        args = _cmdline(pid)
        if len(args) > 2 and Path(args[1]).name == "dime-pipeline" and "simulate" in args:
            return pid
    return None


# --- train: a kill after an epoch's checkpoint -------------------------------------------------

TRAIN_CONFIG = {
    "network": {"patch_size": 16, "depth": 2, "width": 8},
    "data": {"crops_per_epoch": 32, "val_crops": 8, "batch_size": 4, "num_workers": 0},
    # Checkpoints at epoch ends only, so a kill anywhere resumes at an epoch boundary.
    "trainer": {
        "max_epochs": 10,
        "accelerator": "cpu",
        "num_sanity_val_steps": 0,
        "checkpoint_every_n_steps": 0,
        "log_every_n_steps": 1,
        "progress_bar": False,
    },
}


def test_killed_training_resumes_to_the_same_model(tmp_path: Path, tool_env) -> None:
    pack = make_pack(tmp_path / "train.zarr")
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(TRAIN_CONFIG))

    def train(out: Path, **kwargs) -> subprocess.Popen:
        command = ["dime-pipeline", "train", "--train", str(pack), "--val", str(pack)]
        command += ["--config", str(config), "--seed", "5", "--out-dir", str(out)]
        return subprocess.Popen(command, env=tool_env, text=True, **kwargs)

    killed, clean = tmp_path / "killed", tmp_path / "clean"
    last = killed / "checkpoints" / "last.ckpt"
    job = train(killed, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _checkpoint_epoch(last) >= 1, job, "the checkpoint of epoch 1")
    finally:
        _kill_tree(job.pid)
    assert job.wait(timeout=DEADLINE_S) == -signal.SIGKILL, "killed before it finished"
    assert _checkpoint_epoch(last) < TRAIN_CONFIG["trainer"]["max_epochs"] - 1
    # The outputs of the rule appear only complete: none yet (Snakemake has nothing to remove).
    assert not (killed / "model.pt").exists() and not (killed / "logs" / "metrics.csv").exists()

    rerun = train(killed, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, stderr = rerun.communicate(timeout=DEADLINE_S)
    assert rerun.returncode == 0, stderr[-3000:]
    assert "resuming from" in stderr
    reference = train(clean, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, stderr = reference.communicate(timeout=DEADLINE_S)
    assert reference.returncode == 0, stderr[-3000:]

    # One log across both runs, row for row as the uninterrupted run's.
    log, clean_log = (_log_rows(out / "logs" / "metrics.csv") for out in (killed, clean))
    assert [row["step"] for row in log] == [row["step"] for row in clean_log]
    epochs = {row["epoch"] for row in log if row.get("epoch")}
    assert epochs == {str(e) for e in range(TRAIN_CONFIG["trainer"]["max_epochs"])}
    assert log == clean_log
    # Bit-equal weights: crops depend only on (seed, key), the resume restores the optimiser,
    # scheduler and step at an epoch end, and one CPU thread (tool_env) adds in a fixed order.
    model, clean_model = (
        torch.load(out / "model.pt", map_location="cpu", weights_only=True)
        for out in (killed, clean)
    )
    assert model["metadata"]["global_step"] == clean_model["metadata"]["global_step"] == 80
    assert model["state_dict"].keys() == clean_model["state_dict"].keys()
    for name, weights in model["state_dict"].items():
        assert torch.equal(weights, clean_model["state_dict"][name]), name


def _checkpoint_epoch(path: Path) -> int:
    """The epoch of a checkpoint (-1 while there is none). Written by rename: never partial."""
    if not path.is_file():
        return -1
    return int(torch.load(path, map_location="cpu", weights_only=True)["epoch"])


def _log_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# --- processes -------------------------------------------------------------------------------


def _wait_for(condition: Callable[[], bool], job: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        if job.poll() is not None:
            pytest.fail(f"the job ended (code {job.returncode}) before {what}")
        if time.monotonic() > deadline:
            pytest.fail(f"no sign of {what} after {DEADLINE_S} s")
        time.sleep(0.02)


def _run_bounded(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run to the end; a hang past the deadline kills every process of it and fails."""
    job = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        output, _ = job.communicate(timeout=DEADLINE_S)
    except subprocess.TimeoutExpired:
        _kill_tree(job.pid)
        output, _ = job.communicate()
        pytest.fail(f"hung: killed after {DEADLINE_S} s\n{output[-3000:]}")
    return job.returncode, output


def _kill_tree(root: int) -> None:
    """SIGKILL ``root`` and every process below it at once, like a node failure. They are
    stopped first, until no new one appears (a stopped process starts no children), because
    MPI's process manager puts the ranks in sessions of their own, out of reach of killpg."""
    stopped: set[int] = set()
    while new := ({root} | _descendants(root)) - stopped:
        for pid in new:
            _signal(pid, signal.SIGSTOP)
        stopped |= new
    for pid in stopped:
        _signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + DEADLINE_S
    while any(_alive(pid) for pid in stopped - {root}):  # root is our child: its wait() reaps it
        assert time.monotonic() < deadline, "killed processes did not end"
        time.sleep(0.02)


def _descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _stat(pid: int) -> tuple[int, str] | None:
    """(parent pid, state) of a process, None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), fields[0]


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[1] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, signum)
