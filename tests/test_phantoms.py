"""Homogeneous phantoms: determinism, plausible draws, and tags the solver relies on."""

from __future__ import annotations

import json

import gmsh
import numpy as np
import pytest

from dime_pipeline.cli import main
from dime_pipeline.config import validate_config
from dime_pipeline.errors import UserError
from dime_pipeline.phantoms import make_phantom
from dime_pipeline.phantoms.common import shear_wavelength
from dime_pipeline.phantoms.homogeneous import draw_homogeneous
from dime_pipeline.phantoms.spec import (
    ABSORBING_TAG,
    DRIVER_TAG,
    FREE_TAG,
    Grid,
    PhantomSpec,
    read_spec,
)
from dime_pipeline.seeding import sample_seed

SMALL = {"grid": {"shape": [32, 32], "voxel_size_mm": 3.0}}


def test_same_arguments_give_byte_identical_files(tmp_path, repo):
    args = ["phantom", "homogeneous", "--seed", "123", "--config", str(repo / "config/config.yaml")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("mesh.msh", "phantom.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert main([*args[:3], "124", *args[4:], "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "a/mesh.msh").read_bytes() != (tmp_path / "c/mesh.msh").read_bytes()


def test_seeds_differ_by_family_and_index():
    seeds = {sample_seed(1, family, i) for family in ("homogeneous", "liver") for i in range(50)}
    assert len(seeds) == 100
    assert sample_seed(1, "homogeneous", 3) == sample_seed(1, "homogeneous", 3)


@pytest.mark.parametrize("seed", range(20))
def test_draws_stay_in_configured_ranges(seed):
    config = validate_config({"materials": {"frequency_model": "constant"}})
    spec = draw_homogeneous(config, seed)
    (tissue,) = spec.regions
    assert 1e3 <= tissue.storage_modulus_pa <= 10e3
    assert 0.1 <= tissue.loss_modulus_pa / tissue.storage_modulus_pa <= 0.4
    assert 50 <= spec.frequency_hz <= 70
    assert np.isclose(np.linalg.norm(spec.driver.direction), 1.0)
    wavelength = shear_wavelength(tissue.shear_modulus, tissue.density_kg_m3, spec.frequency_hz)
    assert spec.mesh_size_m <= wavelength / config.mesh.elements_per_wavelength + 1e-12
    # The whole outline lies inside the field of view.
    geometry = spec.geometry
    reach = geometry["radius_m"] * (1 + np.abs(geometry["amplitudes"]).sum())
    fov = config.grid.shape[0] * config.grid.voxel_size_m
    for centre in geometry["centre_m"]:
        assert reach <= centre <= fov - reach


def test_frequency_model_keeps_phantoms_consistent_across_frequencies():
    """Same seed, two frequencies: the springpot keeps the loss angle, G* follows its power law."""
    low = validate_config({"frequency_hz": {"min": 40, "max": 40}})
    high = validate_config({"frequency_hz": {"min": 80, "max": 80}})
    (a,), (b,) = draw_homogeneous(low, 1).regions, draw_homogeneous(high, 1).regions
    assert np.angle(a.shear_modulus) == pytest.approx(np.angle(b.shear_modulus))
    alpha = 2 / np.pi * np.angle(a.shear_modulus)
    assert abs(b.shear_modulus) / abs(a.shear_modulus) == pytest.approx(2**alpha)


def test_mesh_has_region_and_boundary_groups(tmp_path):
    spec = make_phantom("homogeneous", 5, validate_config(SMALL), tmp_path / "p")
    assert read_spec(tmp_path / "p") == spec
    gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.open(str(tmp_path / "p" / "mesh.msh"))
        groups = {
            (dim, tag): gmsh.model.getPhysicalName(dim, tag)
            for dim, tag in gmsh.model.getPhysicalGroups()
        }
        driver_nodes, coords = gmsh.model.mesh.getNodesForPhysicalGroup(1, DRIVER_TAG)
    finally:
        gmsh.finalize()
    assert groups == {(2, 1): "tissue", (1, DRIVER_TAG): "driver", (1, ABSORBING_TAG): "absorbing"}
    # Driver nodes lie on the drawn arc.
    xy = coords.reshape(-1, 3)[:, :2] - np.asarray(spec.geometry["centre_m"])
    angle = np.mod(np.arctan2(xy[:, 1], xy[:, 0]) - spec.driver.start_angle_rad, 2 * np.pi)
    assert np.all(angle <= spec.driver.arc_rad + 1e-6)
    assert len(driver_nodes) > 4


def test_unknown_family_and_bad_folder_are_one_line(tmp_path, capsys):
    assert main(["phantom", "liverish", "--seed", "1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown phantom family 'liverish'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    assert main(["phantom", "homogeneous", "--seed", "-3", "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    (tmp_path / "empty").mkdir()
    assert main(["simulate", str(tmp_path / "empty"), "--out", str(tmp_path / "s.zarr")]) == 2
    assert "not a phantom folder" in capsys.readouterr().err
    assert not (tmp_path / "s.zarr").exists()


def test_pixel_centres_2d_follow_origin_and_c_order():
    grid = Grid(shape=(2, 3), voxel_size_m=1e-3, origin_m=(0.01, 0.02, 0.0))
    centres = grid.pixel_centres()
    assert centres.shape == (6, 3)
    assert np.allclose(centres[0], [0.0105, 0.0205, 0.0])
    assert np.allclose(centres[1], [0.0115, 0.0205, 0.0])  # x varies fastest (C order, (ny, nx))
    assert np.allclose(centres[3], [0.0105, 0.0215, 0.0])
    assert np.allclose(Grid(shape=(4, 4), voxel_size_m=2.0).pixel_centres()[5], [3.0, 3.0, 0.0])


def test_pixel_centres_3d_are_slice_centres_in_c_order():
    grid = Grid(
        shape=(2, 3, 4),
        voxel_size_m=1e-3,
        origin_m=(0.0, 0.0, -0.005),
        slice_thickness_m=4e-3,
        slice_spacing_m=5e-3,
    )
    centres = grid.pixel_centres()
    assert centres.shape == (24, 3)
    k, j, i = 1, 2, 3
    assert np.allclose(centres[(k * 3 + j) * 4 + i], [3.5e-3, 2.5e-3, -0.005 + 1.5 * 5e-3])
    assert np.allclose(np.unique(centres[:, 2]), [-2.5e-3, 2.5e-3])  # centred on z = 0
    x, y, z = grid.axes()
    assert len(x) == 4 and len(y) == 3 and len(z) == 2


def test_spec_written_before_the_extension_still_loads():
    spec = draw_homogeneous(validate_config(SMALL), 3)
    raw = json.loads(spec.to_json())
    for key in ("modulus_field", "boundary_tags"):
        del raw[key]
    for key in ("origin_m", "slice_thickness_m", "slice_spacing_m"):
        del raw["grid"][key]
    for key in ("centre_m", "axis", "radius_m", "depth_m"):
        del raw["driver"][key]
    assert PhantomSpec.from_json(json.dumps(raw)) == spec
    assert spec.boundary_tags == {"driver": DRIVER_TAG, "absorbing": ABSORBING_TAG}
    assert FREE_TAG not in (DRIVER_TAG, ABSORBING_TAG)


def test_voxel_size_range_draws_a_size_per_sample():
    """A voxel-size sweep: same grid shape, one voxel edge per sample, the study's config hash."""
    from dime_pipeline.phantoms import draw_phantom

    config = validate_config({"grid": {"voxel_size_range_mm": {"min": 1.0, "max": 3.0}}})
    specs = [draw_phantom("homogeneous", seed, config) for seed in range(6)]
    sizes = {spec.grid.voxel_size_m for spec in specs}
    assert len(sizes) == 6 and all(1e-3 <= size <= 3e-3 for size in sizes)
    assert {spec.grid.shape for spec in specs} == {(64, 64)}
    assert {spec.config_hash for spec in specs} == {config.digest()}
    assert draw_phantom("homogeneous", 2, config) == specs[2]  # deterministic
    with pytest.raises(UserError, match="voxel_size_range_mm"):
        validate_config({"grid": {"voxel_size_range_mm": {"min": 0.05, "max": 3.0}}})
