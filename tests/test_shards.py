"""Shards (`workflow.shard_size`): one job per batch of samples writes the very files of the
one-sample rules; a killed shard reruns to them; a failing sample names itself."""

from __future__ import annotations

import signal
from pathlib import Path

import numpy as np
import pytest
import yaml
import zarr
from studies import WALL_CLOCK_KEYS, study_differences
from test_fault_tolerance import DEADLINE_S, _kill_tree, _wait_for, start_snakemake
from test_workflow import TINY
from test_workflow import _snakemake as snakemake

from dime_pipeline.cli import main

SAMPLES = 3
TARGET = "results/datasets/train.zarr"  # every phantom, store and acquired store; no training


def study(path: Path, jit_cache: Path, shard_size: int, ranks: int = 1) -> Path:
    (path / "config").mkdir(parents=True)
    config = {
        **TINY,
        "samples": {"homogeneous": SAMPLES},
        "solver": {"ranks": ranks, "jit_cache": str(jit_cache)},
        "workflow": {"shard_size": shard_size},
    }
    (path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return path


def differences(first: Path, second: Path) -> list[str]:
    """What differs between two studies beyond timings, logs, the resolved config (which
    names its own shard size) and the JIT warm-up record (one-sample studies only)."""
    skipped = ("results/config.yaml", "results/jit/")
    return [d for d in study_differences(first, second) if not d.startswith(skipped)]


def round_off_differences(first: Path, second: Path) -> list[str]:
    """Stores that differ by more than solver round-off. With 2 ranks MUMPS's parallel
    factorisation may sum in another order when the ranks arrive at different times (a shard's
    rank 0 draws the phantom while rank 1 waits): seen 2.5e-15 relative in one store of three."""
    out = []
    for name in differences(first, second):
        store = name.split(": ")[0]
        a, b = zarr.open_group(first / store, mode="r"), zarr.open_group(second / store, mode="r")
        for array in a.array_keys():
            x, y = a[array][...], b[array][...]
            if not np.allclose(x, y, rtol=1e-9, atol=1e-9 * float(np.abs(x).max())):
                out.append(f"{store}: array {array!r} differs beyond round-off")
        if _rounded(dict(a.attrs)) != _rounded(dict(b.attrs)):
            out.append(f"{store}: attributes differ beyond round-off")
    return sorted(set(out))


def _rounded(value):
    """``value`` with wall-clock entries dropped and floats to 9 significant digits."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items() if k not in WALL_CLOCK_KEYS}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return float(f"{value:.9g}") if isinstance(value, float) else value


@pytest.mark.parametrize("ranks", [1, pytest.param(2, marks=pytest.mark.mpi)])
def test_shards_write_the_files_of_the_one_sample_rules(repo, tmp_path, jit_cache, tool_env, ranks):
    one = study(tmp_path / "one", jit_cache, shard_size=1, ranks=ranks)
    sharded = study(tmp_path / "sharded", jit_cache, shard_size=2, ranks=ranks)  # 2 + 1
    for folder in (one, sharded):
        result = snakemake(repo, folder, tool_env, "--cores", "2", TARGET)
        assert result.returncode == 0, result.stderr[-3000:]
    # the logs of each stage and sample, where the one-sample rules write them
    for stage in ("phantom", "simulate"):
        assert len(list(sharded.glob(f"results/logs/{stage}/homogeneous/*.log"))) == SAMPLES
    if ranks == 1:
        assert differences(one, sharded) == []
    else:
        assert round_off_differences(one, sharded) == []
    for folder in (one, sharded):  # previews are the report's rule `preview`, not a phantom's
        assert not list(folder.glob("meshes/*/*/preview.png"))
    records = sorted(sharded.glob("results/benchmarks/shard/homogeneous/*.json"))
    assert [r.name for r in records] == ["0000.json", "0001.json"]


def test_a_killed_shard_reruns_to_the_same_files(repo, tmp_path, jit_cache, tool_env):
    clean = study(tmp_path / "clean", jit_cache, shard_size=SAMPLES)
    killed = study(tmp_path / "killed", jit_cache, shard_size=SAMPLES)
    assert snakemake(repo, clean, tool_env, "--cores", "2", TARGET).returncode == 0
    run = start_snakemake(repo, killed, tool_env, "--cores", "2", TARGET)
    first = killed / "results/acquired/homogeneous/0000/snr-10.zarr"
    try:
        _wait_for(first.is_dir, run, "the shard's first sample")
    finally:
        _kill_tree(run.pid)  # the shard midway: a later sample is not done
    assert run.wait(timeout=DEADLINE_S) == -signal.SIGKILL
    assert not (killed / "results/acquired/homogeneous/0002/snr-10.zarr").exists()
    assert snakemake(repo, killed, tool_env, "--unlock").returncode == 0
    rerun = snakemake(repo, killed, tool_env, "--cores", "2", TARGET)  # profile: rerun-incomplete
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert differences(clean, killed) == []


def test_a_failing_sample_names_itself_and_keeps_the_samples_before_it(tmp_path, capsys, jit_cache):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**TINY, "samples": {"homogeneous": SAMPLES}}))
    blocker = tmp_path / "results/samples/homogeneous/0001.zarr"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where sample 1's store goes")
    argv = ["shard", "homogeneous", "0", "1", "2", "--config", str(config), "--root"]
    status = main([*argv, str(tmp_path), "--jit-cache", str(jit_cache)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("dime-pipeline shard: error: sample homogeneous/0001: ")
    assert "is a file, not an output folder" in lines[0]
    assert (tmp_path / "results/acquired/homogeneous/0000/snr-10.zarr").is_dir()
    assert not (tmp_path / "meshes/homogeneous/0002").exists()  # the shard stopped there


def test_one_sample_reruns_alone_and_unknown_samples_are_refused(tmp_path, capsys, jit_cache):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({**TINY, "samples": {"homogeneous": SAMPLES}}))
    argv = ["shard", "homogeneous", "--config", str(config), "--root", str(tmp_path)]
    argv += ["--jit-cache", str(jit_cache)]
    assert main([*argv, "7"]) == 2
    assert "sample 7 of homogeneous is not in the study (it has 3: 0-2)" in capsys.readouterr().err
    assert main([*argv, "2"]) == 0
    made = sorted(p.name for p in (tmp_path / "results/acquired/homogeneous").iterdir())
    assert made == ["0002"]
    assert main([*argv, "2"]) == 0  # again: the same files, rewritten whole
