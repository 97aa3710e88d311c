"""`.venv/bin/snakemake` without an activated venv: the jobs find the venv's `dime-pipeline`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

BIN = Path(sys.executable).parent


def test_snakemake_from_the_venv_runs_jobs_without_the_venv_on_path(repo, tmp_path, jit_cache):
    """A real job (`dime-pipeline warm-up`) run by `<venv>/bin/snakemake` with PATH=/usr/bin:/bin,
    i.e. without `source .venv/bin/activate`: common.smk puts the venv's bin folder first."""
    (tmp_path / "config").mkdir()
    config = {"samples": {"homogeneous": 1}, "grid": {"shape": [32, 32]}}
    config["solver"] = {"ranks": 1, "jit_cache": str(jit_cache)}
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    env = {key: value for key, value in os.environ.items() if not key.startswith("VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"
    env["OMP_NUM_THREADS"] = "1"
    command = [str(BIN / "snakemake"), "--snakefile", str(repo / "Snakefile")]
    command += ["--directory", str(tmp_path), "--cores", "1", "results/jit/warm-up.json"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    log = tmp_path / "results/logs/warm_jit_cache.log"
    detail = result.stderr[-3000:] + (log.read_text()[-2000:] if log.exists() else "")
    assert result.returncode == 0, detail
    assert (tmp_path / "results/jit/warm-up.json").exists()
