"""A real `snakemake` run of a 2-sample config in a temporary directory, and config errors."""

from __future__ import annotations

import json
import re
import subprocess

import numpy as np
import pytest
import yaml

from dime_pipeline.datasets import Pack
from dime_pipeline.estimates import read_estimates
from dime_pipeline.store import read_sample

SPLITS = ("train", "val", "test")

TINY = {
    "seed": 9,
    "samples": {"homogeneous": 5},
    # A voxel-size sweep: each sample draws its voxel edge; the report gets a curve over it.
    "grid": {
        "shape": [32, 32],
        "voxel_size_mm": 3.0,
        "voxel_size_range_mm": {"min": 2.5, "max": 3.5},
    },
    "datasets": {"fractions": {"train": 0.4, "val": 0.2, "test": 0.4}},
    # A tiny training run: this checks the train rule's plumbing, not DIME's accuracy.
    "dime": {
        "model": "trained",
        "training": {
            "trainer": {"max_epochs": 1, "accelerator": "cpu"},
            "data": {"crops_per_epoch": 64, "batch_size": 16, "num_workers": 0},
            "network": {"patch_size": 16, "width": 8, "depth": 2},
        },
    },
    # The one-sample rules (phantom, simulate, acquire): the rerun checks below count them.
    # Shards, the default, are tested in tests/test_shards.py and tests/test_slurm_profile.py.
    "workflow": {"shard_size": 1},
}


def _snakemake(repo, workdir, env, *extra):
    command = ["snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir)]
    return subprocess.run([*command, *extra], capture_output=True, text=True, env=env, timeout=600)


@pytest.fixture
def workdir(tmp_path, jit_cache):
    (tmp_path / "config").mkdir()
    config = {**TINY, "solver": {"ranks": 1, "jit_cache": str(jit_cache)}}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path


def test_snakemake_runs_the_study(repo, workdir, tool_env):
    result = _snakemake(repo, workdir, tool_env, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((workdir / "results/samples/summary.json").read_text())
    assert [row["family"] for row in summary] == ["homogeneous"] * 5
    for index in ("0000", "0001", "0002", "0003", "0004"):
        sample = read_sample(workdir / f"results/samples/homogeneous/{index}.zarr")
        assert sample.displacement.shape == (3, 32, 32)
        assert (workdir / f"results/logs/simulate/homogeneous/{index}.log").exists()
        assert (workdir / f"results/benchmarks/simulate/homogeneous/{index}.tsv").exists()
    seeds = {row["seed"] for row in summary}
    assert len(seeds) == 5
    # Every sample lands in exactly one split, at both noise levels of the default config.
    packs = {split: Pack(workdir / f"results/datasets/{split}.zarr") for split in SPLITS}
    assert sorted(len(pack) for pack in packs.values()) == [2, 4, 4]
    packed_seeds = [set(pack.column("seed").tolist()) for pack in packs.values()]
    assert set().union(*packed_seeds) == seeds
    assert sum(len(s) for s in packed_seeds) == 5
    snrs = np.concatenate([pack.column("snr") for pack in packs.values()])
    assert np.sum(np.isinf(snrs)) == 5 and np.allclose(snrs[np.isfinite(snrs)], 10.0)
    # The test set inverted by each baseline: one row per test-pack sample, same seeds and mask.
    test = packs["test"]
    for method in ("dime", "mmdi", "di"):
        estimates = read_estimates(workdir / f"results/inversions/{method}/test.zarr")
        assert estimates.modulus.shape == (len(test), 32, 32)
        assert estimates.seed.tolist() == test.column("seed").tolist()
        assert np.array_equal(estimates.mask, test.column("mask"))
        assert estimates.attrs["method"] == method
        assert estimates.attrs["config_hash"] == test.attrs["config_hash"]
    for method in ("mmdi", "di"):
        assert (workdir / f"results/logs/invert_baseline/{method}/test.log").exists()
        assert (workdir / f"results/benchmarks/invert_baseline/{method}/test.tsv").exists()
    assert (workdir / "results/dime/checkpoints/last.ckpt").exists()
    # The report: self-contained, every method in the summary.
    html = (workdir / "results/report/index.html").read_text()
    assert "data:image/png;base64," in html and "Training" in html
    assert 'id="phantoms"' in html  # the phantom previews are embedded
    summary = json.loads((workdir / "results/metrics/summary.json").read_text())
    assert set(summary["table"]["homogeneous"]) == {"dime", "mmdi", "di"}
    sweeps = json.loads((workdir / "results/metrics/sweeps.json").read_text())["sweeps"]
    assert len(sweeps["voxel_size_mm"]["homogeneous"]["levels"]) >= 2
    # Nothing left to do afterwards.
    again = _snakemake(repo, workdir, tool_env, "-n", "--cores", "2")
    assert again.returncode == 0
    assert "Nothing to be done" in again.stdout + again.stderr
    # A config change downstream of the phantoms (the split) does not regenerate or re-solve them,
    # and one run applies it: the packs, what reads them and the report (Snakemake 9 skipped the
    # rerun checks of everything downstream of a rerun `resolved_config`; `pack` then waited for
    # a second run behind a report showing the new seed).
    split = ("--config", "datasets={split_seed: 3}")
    planned = _planned(_snakemake(repo, workdir, tool_env, "-n", *split))
    assert {"pack", "train", "evaluate", "report"} <= planned
    assert not planned & {"phantom", "simulate", "resolved_config", "warm_jit_cache"}
    assert _snakemake(repo, workdir, tool_env, "--cores", "2", *split).returncode == 0
    assert Pack(workdir / "results/datasets/test.zarr").attrs["split_seed"] == 3
    assert "split_seed: 3" in (workdir / "results/config.yaml").read_text()
    again = _snakemake(repo, workdir, tool_env, "-n", *split)
    assert "Nothing to be done" in again.stdout + again.stderr
    # A training setting retrains and re-evaluates; the packs and MMDI/DI's inversions stay.
    training = {**TINY["dime"]["training"], "trainer": {"max_epochs": 2, "accelerator": "cpu"}}
    retrain = (
        "--config",
        "datasets={split_seed: 3}",
        f"dime={json.dumps({**TINY['dime'], 'training': training})}",
    )
    planned = _planned(_snakemake(repo, workdir, tool_env, "-n", *retrain))
    assert {"train", "invert_dime", "evaluate", "report"} <= planned
    assert not planned & {"pack", "invert_baseline", "simulate"}
    # A solver setting reruns the solves in the same run, not only the JIT warm-up.
    cache = ("--config", "datasets={split_seed: 3}", "solver={jit_cache: .cache/other}")
    planned = _planned(_snakemake(repo, workdir, tool_env, "-n", *cache))
    assert "simulate" in planned and "warm_jit_cache" not in planned
    # Lost files that phantoms and solves read through ancient edges are put back: one more
    # sample is then one more phantom and solve, not six of each.
    (workdir / "results/jit/warm-up.json").unlink()
    (workdir / "results/config.yaml").unlink()
    more = ("--config", "datasets={split_seed: 3}", "samples={homogeneous: 6}")
    result = _snakemake(repo, workdir, tool_env, "-n", *more)
    assert result.returncode == 0, result.stderr[-3000:]
    planned = result.stdout + result.stderr
    assert planned.count("rule phantom:") == 1 and planned.count("rule simulate:") == 1
    assert "restored" in json.loads((workdir / "results/jit/warm-up.json").read_text())
    assert "homogeneous: 6" in (workdir / "results/config.yaml").read_text()


def _planned(result: subprocess.CompletedProcess) -> set[str]:
    """The rules of the jobs a dry run plans."""
    assert result.returncode == 0, result.stderr[-3000:]
    return set(re.findall(r"^rule (\w+):", result.stdout + result.stderr, re.MULTILINE))


def test_bad_config_value_is_one_clear_line(repo, workdir, tool_env):
    result = _snakemake(repo, workdir, tool_env, "-n", "--config", "seed=not-a-number")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if "seed" in line]
    assert lines == [
        "dime-pipeline: config key 'seed': Input should be a valid integer, unable to parse "
        "string as an integer (got 'not-a-number')"
    ]
    assert not (workdir / "results").exists()


def test_a_plain_snakemake_uses_the_default_profile(repo, workdir, tool_env):
    """Snakemake 9 looks for `profiles/default` beside the Snakefile (or in the working
    folder): its `rerun-incomplete` is what lets a plain rerun finish a killed study."""
    result = _snakemake(repo, workdir, tool_env, "-n")
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout + result.stderr
    assert "Using workflow specific profile" in said and "profiles/default" in said
    profile = yaml.safe_load((repo / "profiles/default/config.yaml").read_text())
    assert profile["rerun-incomplete"] is True
