"""Two runs of the same study give the same stores, metrics, phantoms and model (CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
import zarr
from studies import _outputs, study_differences
from test_workflow import TINY, _snakemake


@pytest.mark.slow
def test_two_runs_of_a_study_are_identical(repo, tmp_path, jit_cache, tool_env):
    runs = [tmp_path / "first", tmp_path / "second"]
    for run in runs:
        (run / "config").mkdir(parents=True)
        config = {**TINY, "solver": {"ranks": 1, "jit_cache": str(jit_cache)}}
        (run / "config" / "config.yaml").write_text(yaml.safe_dump(config))
        result = _snakemake(repo, run, tool_env, "--cores", "2")
        assert result.returncode == 0, result.stderr[-3000:]
    compared = list(_outputs(runs[0]))
    for expected in (
        "meshes/homogeneous/0000/mesh.msh",
        "results/samples/homogeneous/0000.zarr",
        "results/acquired/homogeneous/0000/snr-10.zarr",
        "results/datasets/test.zarr",
        "results/inversions/dime/test.zarr",
        "results/dime/model.pt",
        "results/metrics/summary.json",
    ):
        assert expected in compared
    assert study_differences(*runs) == []
    # The comparison sees a change of one value in one store.
    displacement = zarr.open_array(runs[1] / "results/samples/homogeneous/0003.zarr/displacement")
    changed = displacement[...]
    changed.flat[np.flatnonzero(changed)[0]] *= 1 + 1e-12
    displacement[...] = changed
    assert study_differences(*runs) == [
        "results/samples/homogeneous/0003.zarr: array 'displacement' differs"
    ]
