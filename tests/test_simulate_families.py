"""Every family simulates: 2D heterogeneous and liver stores, and a small 3D liver that meshes
and solves (issue 4), with the modulus field carried into the ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from dime_pipeline.cli import main
from dime_pipeline.config import dump_config, validate_config
from dime_pipeline.phantoms.spec import read_spec
from dime_pipeline.store import read_sample

SMALL_2D = {
    "grid": {"shape": [32, 32], "voxel_size_mm": 4.0},
    "frequency_hz": {"min": 40, "max": 40},
}
SMALL_3D = {
    "grid": {"shape": [24, 24], "voxel_size_mm": 4.0, "slices": 2},
    "frequency_hz": {"min": 30, "max": 30},
    "mesh": {"elements_per_wavelength": 3, "max_size_voxels": 2},
}


def _simulate(tmp_path, family, config, dim, jit_cache, seed=1):
    path = tmp_path / "config.yaml"
    path.write_text(dump_config(validate_config(config)))
    phantom = tmp_path / f"{family}-{dim}d"
    args = ["phantom", family, "--seed", str(seed), "--dim", str(dim), "--config", str(path)]
    assert main([*args, "--no-preview", "--out", str(phantom)]) == 0
    out = tmp_path / f"{family}-{dim}d.zarr"
    assert main(["simulate", str(phantom), "--out", str(out), "--jit-cache", str(jit_cache)]) == 0
    return read_spec(phantom), read_sample(out)


@pytest.mark.parametrize("family", ["heterogeneous", "liver"])
def test_2d_family_store(tmp_path, family, jit_cache):
    spec, sample = _simulate(tmp_path, family, SMALL_2D, 2, jit_cache)
    assert sample.displacement.shape == (3, 32, 32)
    present = set(np.unique(sample.labels[sample.mask]).tolist())
    assert present <= {region.tag for region in spec.regions} and len(present) >= 2
    amplitude = np.abs(sample.displacement[:, sample.mask])
    assert np.all(np.isfinite(amplitude)) and amplitude.max() > 0
    if spec.modulus_field is not None:  # the ground truth varies inside the field's regions
        inside = np.isin(sample.labels, spec.modulus_field.region_tags)
        assert np.ptp(np.abs(sample.modulus[inside])) > 0


def test_small_3d_liver_meshes_and_solves(tmp_path, jit_cache):
    spec, sample = _simulate(tmp_path, "liver", SMALL_3D, 3, jit_cache)
    assert sample.displacement.shape == (3, 2, 24, 24)
    assert sample.attrs["voxel_size_m"] == pytest.approx([5e-3, 4e-3, 4e-3])
    assert sample.attrs["solver"]["dofs"]["elastic"] > 0
    liver = spec.region("liver").tag
    assert (sample.labels == liver).sum() > 10
    assert np.abs(sample.displacement[:, sample.mask]).max() > 0
