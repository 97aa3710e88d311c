"""End to end on one phantom: the sample store, and 1 vs 2 MPI ranks (to 1e-8 relative)."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from dime_pipeline.cli import main
from dime_pipeline.config import dump_config, validate_config
from dime_pipeline.store import read_sample

CONFIG = {"seed": 3, "grid": {"shape": [40, 40], "voxel_size_mm": 2.0}}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory):
    folder = tmp_path_factory.mktemp("phantom")
    config = folder / "config.yaml"
    config.write_text(dump_config(validate_config(CONFIG)))
    assert (
        main(
            [
                "phantom",
                "homogeneous",
                "--seed",
                "77",
                "--config",
                str(config),
                "--out",
                str(folder / "p"),
            ]
        )
        == 0
    )
    return folder / "p"


@pytest.fixture(scope="module")
def one_rank_store(phantom, jit_cache):
    out = phantom.parent / "one.zarr"
    assert main(["simulate", str(phantom), "--out", str(out), "--jit-cache", str(jit_cache)]) == 0
    return read_sample(out)


def test_store_contents(one_rank_store):
    sample = one_rank_store
    assert sample.displacement.shape == (3, 40, 40)
    assert 0.2 < sample.mask.mean() < 0.9
    assert set(np.unique(sample.labels[sample.mask])) == {1}
    assert np.all(sample.displacement[:, ~sample.mask] == 0)
    inside = sample.modulus[sample.mask]
    assert np.all(inside == inside[0]) and inside[0].real > 0 and inside[0].imag > 0
    # The driver moves 20 µm; the field inside is of that order, every component excited.
    amplitude = np.abs(sample.displacement[:, sample.mask])
    assert 1e-7 < amplitude.max() <= 2.5e-5
    assert np.all(amplitude.max(axis=1) > 0)
    attrs = sample.attrs
    assert attrs["family"] == "homogeneous" and attrs["seed"] == 77
    assert attrs["voxel_size_m"] == [2e-3, 2e-3]
    assert attrs["solver"]["ranks"] == 1
    assert attrs["solver"]["dofs"]["plane_strain"] > attrs["solver"]["dofs"]["antiplane"] > 0
    assert {"dolfinx", "petsc", "gmsh", "dime_pipeline"} <= set(attrs["solver"]["versions"])


@pytest.mark.mpi
def test_two_ranks_equal_one_rank(phantom, one_rank_store, jit_cache, tool_env):
    out = phantom.parent / "two.zarr"
    command = ["mpirun", "-n", "2", "dime-pipeline", "--quiet", "simulate", str(phantom)]
    subprocess.run(
        [*command, "--out", str(out), "--jit-cache", str(jit_cache)],
        env=tool_env,
        check=True,
        timeout=300,
    )
    two = read_sample(out)
    assert two.attrs["solver"]["ranks"] == 2
    np.testing.assert_array_equal(two.mask, one_rank_store.mask)
    np.testing.assert_array_equal(two.labels, one_rank_store.labels)
    one = one_rank_store.displacement
    difference = np.linalg.norm(two.displacement - one) / np.linalg.norm(one)
    assert difference < 1e-8


def test_srun_tasks_that_are_not_one_mpi_world_are_refused(phantom, tmp_path, monkeypatch, capsys):
    """`srun -n 2` without SLURM's PMI starts two 1-rank worlds: both would solve and write."""
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    out = tmp_path / "s.zarr"
    assert main(["simulate", str(phantom), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("dime-pipeline simulate: error: srun started 2 tasks")
    assert "--mpi=pmi2" in error
    assert not out.exists()


@pytest.mark.mpi
def test_iterative_on_two_ranks_equals_direct(phantom, one_rank_store, jit_cache, tool_env):
    """The block preconditioner moves each field between the mixed space and its collapsed
    space by scatters, which must hold when the two number and own their dofs differently."""
    out = phantom.parent / "iterative.zarr"
    command = ["mpirun", "-n", "2", "dime-pipeline", "--quiet", "simulate", str(phantom)]
    command += ["--solver", "iterative", "--out", str(out), "--jit-cache", str(jit_cache)]
    subprocess.run(command, env=tool_env, check=True, timeout=300)
    iterative = read_sample(out)
    assert iterative.attrs["solver"]["linear_solver"] == "iterative"
    assert all(n > 1 for n in iterative.attrs["solver"]["iterations"].values())
    one = one_rank_store.displacement
    difference = np.linalg.norm(iterative.displacement - one) / np.linalg.norm(one)
    assert difference < 1e-6


def test_restart_reaches_the_iterative_solver(phantom, jit_cache, tmp_path):
    """`--restart` sets FGMRES's restart, and the store records it. On this phantom the default
    (100) takes 383 iterations and 200 takes 337: identical counts would mean PETSc never saw
    the option (the solves are deterministic)."""
    iterations = {}
    for restart in (None, 200):
        out = tmp_path / f"restart-{restart}.zarr"
        argv = ["simulate", str(phantom), "--out", str(out), "--jit-cache", str(jit_cache)]
        argv += ["--solver", "iterative"] + ([] if restart is None else ["--restart", "200"])
        assert main(argv) == 0
        solver = read_sample(out).attrs["solver"]
        assert solver["restart"] == (restart or 100)
        iterations[restart] = solver["iterations"]["plane_strain"]
    assert iterations[None] != iterations[200]


@pytest.mark.parametrize("option", ["--restart", "--max-iterations"])
def test_iterative_counts_below_one_are_one_error_line(phantom, tmp_path, capsys, option):
    out = tmp_path / "s.zarr"
    status = main(
        ["simulate", str(phantom), "--out", str(out), "--solver", "iterative", option, "0"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and err == [f"dime-pipeline simulate: error: {option} must be >= 1 (got 0)"]
    assert not out.exists()
