"""Sample store round trip, atomic writes, and errors for stores this version cannot read."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from dime_pipeline.errors import UserError
from dime_pipeline.store import SCHEMA_VERSION, Sample, read_sample, write_sample


def _sample(rng: np.random.Generator, shape=(6, 7)) -> Sample:
    displacement = rng.normal(size=(3, *shape)) + 1j * rng.normal(size=(3, *shape))
    modulus = (2e3 + 1e3 * rng.random(shape)) * (1 + 0.2j)
    attrs = {
        "family": "homogeneous",
        "seed": 42,
        "frequency_hz": np.float64(60.0),
        "voxel_size_m": np.array([1.5e-3, 1.5e-3]),
        "density_kg_m3": 1000.0,
        "config_hash": "abc",
        "solver": {"dofs": {"antiplane": 10}, "ranks": 1, "seconds": {}, "versions": {}},
    }
    return Sample(
        displacement=displacement * 1e-5,
        modulus=modulus,
        mask=rng.random(shape) > 0.3,
        labels=rng.integers(0, 3, shape).astype(np.int16),
        attrs=attrs,
    )


def test_round_trip_keeps_values_dtypes_and_attrs(tmp_path):
    sample = _sample(np.random.default_rng(0))
    path = tmp_path / "s.zarr"
    write_sample(path, sample)
    back = read_sample(path)
    for name in ("displacement", "modulus", "mask", "labels"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sample, name))
    assert back.displacement.dtype == np.complex128
    assert back.modulus.dtype == np.complex128
    assert back.mask.dtype == bool
    assert back.attrs["schema_version"] == SCHEMA_VERSION
    assert back.attrs["voxel_size_m"] == [1.5e-3, 1.5e-3]
    assert back.attrs["solver"]["dofs"]["antiplane"] == 10
    group = zarr.open_group(path, mode="r")
    assert group["displacement"].metadata.dimension_names == ("component", "y", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]  # no temporary left behind


def test_overwrite_replaces_atomically(tmp_path):
    path = tmp_path / "s.zarr"
    write_sample(path, _sample(np.random.default_rng(1)))
    second = _sample(np.random.default_rng(2))
    write_sample(path, second)
    np.testing.assert_array_equal(read_sample(path).modulus, second.modulus)
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]


def test_failed_write_leaves_previous_store(tmp_path):
    path = tmp_path / "s.zarr"
    first = _sample(np.random.default_rng(3))
    write_sample(path, first)
    broken = _sample(np.random.default_rng(4))
    del broken.attrs["seed"]
    with pytest.raises(ValueError, match="seed"):
        write_sample(path, broken)
    np.testing.assert_array_equal(read_sample(path).modulus, first.modulus)
    assert [p.name for p in tmp_path.iterdir()] == ["s.zarr"]


def test_unknown_schema_and_missing_store(tmp_path):
    path = tmp_path / "s.zarr"
    write_sample(path, _sample(np.random.default_rng(5)))
    group = zarr.open_group(path, mode="r+")
    group.attrs["schema_version"] = 999
    with pytest.raises(UserError, match="schema_version 999"):
        read_sample(path)
    with pytest.raises(UserError, match="no sample store"):
        read_sample(tmp_path / "missing.zarr")
