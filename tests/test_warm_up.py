"""The JIT warm-up compiles every kernel a study's solves need: afterwards, phantoms of each
boundary kind and of different frequencies solve without adding anything to the cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dime_pipeline.cli import main
from dime_pipeline.config import dump_config, validate_config
from dime_pipeline.phantoms.spec import read_spec

# Homogeneous phantoms have an absorbing boundary, liver phantoms a traction-free one.
CONFIG = {"seed": 5, "grid": {"shape": [24, 24], "voxel_size_mm": 3.0}}


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("warm_up")
    config = folder / "config.yaml"
    config.write_text(dump_config(validate_config(CONFIG)))
    made = []
    for family, seed in [("homogeneous", 1), ("homogeneous", 2), ("liver", 3)]:
        out = folder / f"{family}-{seed}"
        argv = ["phantom", family, "--seed", str(seed), "--config", str(config), "--out", str(out)]
        assert main(argv) == 0
        made.append(out)
    return made


def test_solves_after_the_warm_up_compile_nothing(phantoms: list[Path], tmp_path: Path) -> None:
    frequencies = {read_spec(p).frequency_hz for p in phantoms}
    assert len(frequencies) == 3  # ω is a form constant: new frequencies reuse the kernels
    cache, record = tmp_path / "jit", tmp_path / "warm-up.json"
    assert main(["warm-up", "--dim", "2", "--jit-cache", str(cache), "--out", str(record)]) == 0
    assert set(json.loads(record.read_text())["seconds"]) == {"2d_free", "2d_absorbing"}
    compiled = sorted(cache.rglob("*"))
    assert compiled
    for phantom in phantoms:
        out = tmp_path / f"{phantom.name}.zarr"
        assert main(["simulate", str(phantom), "--out", str(out), "--jit-cache", str(cache)]) == 0
    assert sorted(cache.rglob("*")) == compiled


def test_3d_solve_after_the_warm_up_compiles_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    small_3d = {
        "grid": {"shape": [20, 20], "voxel_size_mm": 4.0, "slices": 2},
        "frequency_hz": {"min": 30, "max": 30},
        "mesh": {"elements_per_wavelength": 3, "max_size_voxels": 2},
    }
    config.write_text(dump_config(validate_config(small_3d)))
    phantom = tmp_path / "phantom"
    argv = ["phantom", "homogeneous", "--seed", "4", "--dim", "3", "--config", str(config)]
    assert main([*argv, "--out", str(phantom)]) == 0
    cache, record = tmp_path / "jit", tmp_path / "warm-up.json"
    assert main(["warm-up", "--dim", "3", "--jit-cache", str(cache), "--out", str(record)]) == 0
    compiled = sorted(cache.rglob("*"))
    out = tmp_path / "sample.zarr"
    assert main(["simulate", str(phantom), "--out", str(out), "--jit-cache", str(cache)]) == 0
    assert sorted(cache.rglob("*")) == compiled


def test_the_workflows_warm_up_serves_both_solvers(phantoms: list[Path], tmp_path: Path) -> None:
    """`warm_jit_cache` runs `warm-up --config results/config.yaml --solver iterative`: the
    config's dim and JIT cache, and kernels for direct and iterative solves alike."""
    cache, record = tmp_path / "jit", tmp_path / "warm-up.json"
    config = tmp_path / "config.yaml"
    config.write_text(dump_config(validate_config({**CONFIG, "solver": {"jit_cache": str(cache)}})))
    argv = ["warm-up", "--config", str(config), "--solver", "iterative", "--out", str(record)]
    assert main(argv) == 0
    written = json.loads(record.read_text())
    assert written["jit_cache"] == str(cache) and written["solver"] == "iterative"
    assert set(written["seconds"]) == {"2d_free", "2d_absorbing"}
    compiled = sorted(cache.rglob("*"))
    for solver in ("direct", "iterative"):
        out = tmp_path / f"{solver}.zarr"
        argv = ["simulate", str(phantoms[0]), "--out", str(out), "--jit-cache", str(cache)]
        assert main([*argv, "--solver", solver]) == 0
    assert sorted(cache.rglob("*")) == compiled
