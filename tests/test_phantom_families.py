"""Heterogeneous and liver phantoms (2D and 3D), 3D homogeneous phantoms, random fields.

Determinism through the command line, draws within the configured ranges, anatomical sanity
of the liver model, the boundary groups the solver relies on, and a small 3D liver mesh.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from dime_pipeline.cli import main
from dime_pipeline.config import validate_config
from dime_pipeline.errors import UserError
from dime_pipeline.phantoms import draw_phantom, make_phantom
from dime_pipeline.phantoms.fields import gaussian_random_field, realize, sample_field
from dime_pipeline.phantoms.geometry import (
    ellipsoid_level,
    inside_with_margin,
    outline_points,
    outline_radius,
    polygon_contains,
)
from dime_pipeline.phantoms.liver.anatomy import (
    FIRST_LESION_TAG,
    HEPATIC,
    LIVER,
    PORTAL,
    SPLEEN,
    liver_measures,
    liver_section,
)
from dime_pipeline.phantoms.liver.materials import STAGES
from dime_pipeline.phantoms.liver.structures import INNER_MARGIN
from dime_pipeline.phantoms.meshing import boundary_nodes, gmsh_session, region_measures
from dime_pipeline.phantoms.spec import (
    ABSORBING_TAG,
    DRIVER_TAG,
    FIELD_FILE,
    FREE_TAG,
    PhantomSpec,
    read_spec,
)
from dime_pipeline.seeding import generator

SMALL_2D = {"grid": {"shape": [32, 32], "voxel_size_mm": 3.0}}
# A coarse 3D setting: few thousand cells (low frequency, 3 elements per wavelength).
SMALL_3D = {
    "grid": {"shape": [24, 24], "voxel_size_mm": 4.0, "slices": 2},
    "frequency_hz": {"min": 30.0, "max": 30.0},
    "mesh": {"elements_per_wavelength": 3.0, "max_size_voxels": 2.0},
}
# At the reference frequency with no dispersion the drawn |G*| and loss ratios are exact.
EXACT = {"materials": {"frequency_model": "constant"}, "frequency_hz": {"min": 60, "max": 60}}
CM2, CM3 = 1e-4, 1e-6


def small(dim: int) -> dict:
    return SMALL_2D if dim == 2 else SMALL_3D


def config_file(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def seed_where(family: str, dim: int, raw: dict, wanted) -> int:
    """The first seed whose drawn spec satisfies ``wanted`` (draws only, no meshing)."""
    config = validate_config(raw)
    return next(s for s in range(200) if wanted(draw_phantom(family, s, config, dim)))


def physical_groups(msh: Path) -> dict[tuple[int, int], str]:
    with gmsh_session("groups") as gmsh:
        gmsh.open(str(msh))
        return {(d, t): gmsh.model.getPhysicalName(d, t) for d, t in gmsh.model.getPhysicalGroups()}


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    ("family", "dim", "variant"),
    [
        ("heterogeneous", 2, "inclusions"),
        ("heterogeneous", 2, "random_field"),
        ("heterogeneous", 3, "inclusions"),
        ("liver", 2, None),
        ("liver", 3, None),
        ("homogeneous", 3, None),
    ],
)
def test_same_arguments_give_byte_identical_files(tmp_path, family, dim, variant):
    raw = small(dim)
    seed = seed_where(
        family, dim, raw, lambda s: variant is None or s.geometry["variant"] == variant
    )
    args = ["phantom", family, "--seed", str(seed), "--dim", str(dim)]
    args += ["--config", str(config_file(tmp_path, raw)), "--no-preview"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "b").iterdir())
    expected = {"mesh.msh", "phantom.json"} | ({FIELD_FILE} if family == "liver" else set())
    assert expected <= set(names)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    spec = read_spec(tmp_path / "a")
    assert spec.dim == dim and spec.family == family
    assert PhantomSpec.from_json(spec.to_json()) == spec
    if spec.modulus_field is not None:
        saved = np.load(tmp_path / "a" / spec.modulus_field.file)
        assert np.array_equal(saved, realize(spec.modulus_field))


def test_cli_dimension_choices_and_preview(tmp_path, capsys):
    path = config_file(tmp_path, SMALL_2D)
    out = tmp_path / "p"
    assert main(["phantom", "liver", "--seed", "4", "--config", str(path), "--out", str(out)]) == 0
    assert (out / "preview.png").stat().st_size > 10_000
    assert read_spec(out).dim == 2  # the config's dim by default
    # `preview` draws an existing phantom: into its folder is fine, onto its files is not
    assert main(["preview", str(out), "--out", str(tmp_path / "again.png")]) == 0
    assert (tmp_path / "again.png").read_bytes() == (out / "preview.png").read_bytes()
    assert main(["preview", str(out), "--out", str(out / "mesh.msh")]) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert main(["preview", str(tmp_path), "--out", str(tmp_path / "x.png")]) == 2
    with pytest.raises(SystemExit):
        main(["phantom", "liver", "--seed", "4", "--dim", "4", "--out", str(tmp_path / "q")])
    assert "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


# ---------------------------------------------------------------- heterogeneous draws


@pytest.mark.parametrize("dim", [2, 3])
def test_heterogeneous_draws_stay_in_configured_ranges(dim):
    config = validate_config({**EXACT, "dim": dim})
    settings = config.heterogeneous
    variants = set()
    for seed in range(25 if dim == 2 else 10):
        spec = draw_phantom("heterogeneous", seed, config)
        variants.add(spec.geometry["variant"])
        background, *inclusions = spec.regions
        assert background.tag == 1 and [r.tag for r in inclusions] == list(
            range(2, 2 + len(inclusions))
        )
        if spec.geometry["variant"] == "random_field":
            assert not inclusions and spec.modulus_field.region_tags == (1,)
            assert spec.modulus_field.sigma == settings.random_field_sigma
            continue
        assert spec.modulus_field is None
        assert settings.inclusions.min <= len(inclusions) <= settings.inclusions.max
        for region, record in zip(inclusions, spec.geometry["inclusions"], strict=True):
            contrast = region.storage_modulus_pa / background.storage_modulus_pa
            assert contrast == pytest.approx(record["contrast"])
            assert settings.contrast.min <= contrast <= settings.contrast.max
            assert 5e-3 <= record["diameter_m"] <= 40e-3 + 1e-12
            assert 0.1 <= region.loss_modulus_pa / region.storage_modulus_pa <= 0.4
        _assert_inclusions_inside_and_apart(spec, 1e-3 * settings.margin_mm)
    assert variants == {"inclusions", "random_field"}


def test_an_inclusion_left_out_keeps_the_region_tags_consecutive(tmp_path):
    """A small domain with large inclusions leaves some out: the kept ones' shapes carry the
    tags of their regions (an inclusion left out between two kept ones used to shift the
    shapes' tags past the regions', and meshing failed with a KeyError)."""
    config = validate_config(
        {
            **EXACT,
            "grid": {"shape": [80, 80], "voxel_size_mm": 1.23},
            "heterogeneous": {"inclusions": {"min": 6, "max": 6}, "random_field_probability": 0.0},
        }
    )
    left_out_between = None
    for seed in range(40):
        spec = draw_phantom("heterogeneous", seed, config)
        tags = [r.tag for r in spec.regions]
        assert [shape["region"] for shape in spec.geometry["shapes"]] == tags
        if len(tags) < 7 and left_out_between is None:
            left_out_between = seed
    assert left_out_between is not None  # the case happens with these settings
    make_phantom("heterogeneous", left_out_between, config, tmp_path / "p", preview=False)


def _assert_inclusions_inside_and_apart(spec: PhantomSpec, margin: float) -> None:
    domain, *shapes = spec.geometry["shapes"]
    records = spec.geometry["inclusions"]
    for shape, record in zip(shapes, records, strict=True):
        if spec.dim == 2:
            points = outline_points(shape, 96)
            assert inside_with_margin(outline_points(domain), points, 0.99 * margin)
        elif shape["type"] == "ellipsoid":
            level = ellipsoid_level(domain, _ellipsoid_surface(shape))
            assert level.max() < 1.0
        for other in records:
            if other is not record:
                gap = np.linalg.norm(np.subtract(record["centre_m"], other["centre_m"]))
                assert gap >= record["bound_m"] + other["bound_m"] + margin - 1e-12


def _ellipsoid_surface(shape: dict) -> np.ndarray:
    from dime_pipeline.phantoms.geometry import ellipsoid_points

    return ellipsoid_points(shape, 100)


# ---------------------------------------------------------------- liver draws and anatomy


@pytest.mark.parametrize("dim", [2, 3])
def test_liver_materials_follow_stage_table_and_tissue_ranges(dim):
    config = validate_config({**EXACT, "dim": dim})
    settings = config.liver
    tissues = {
        "body": settings.body.tissue,
        "fat": settings.fat.tissue,
        "portal_vein": settings.vessels.tissue,
        "hepatic_veins": settings.vessels.tissue,
        "spleen": settings.spleen.tissue,
    }
    stages = set()
    for seed in range(20 if dim == 2 else 6):
        spec = draw_phantom("liver", seed, config)
        stage = spec.geometry["stage"]
        stages.add(stage)
        liver = spec.region("liver")
        bounds = settings.stage_modulus_kpa[stage]
        assert bounds.min <= abs(liver.shear_modulus) / 1e3 <= bounds.max
        assert 0.1 <= liver.loss_modulus_pa / liver.storage_modulus_pa <= 0.4
        assert liver.density_kg_m3 == settings.density_kg_m3
        for region in spec.regions:
            tissue = tissues.get(region.name, settings.lesions.tissue)
            if region.name != "liver":
                modulus = abs(region.shear_modulus) / 1e3
                assert tissue.modulus_kpa.min <= modulus <= tissue.modulus_kpa.max
                ratio = region.loss_modulus_pa / region.storage_modulus_pa
                assert tissue.loss_ratio.min - 1e-12 <= ratio <= tissue.loss_ratio.max + 1e-12
        assert spec.modulus_field.region_tags == (LIVER,)
    assert stages <= set(STAGES) and len(stages) >= 3


def test_liver_2d_anatomy_is_plausible():
    config = validate_config({})
    seen = {"spleen": 0, "lesions": 0}
    for seed in range(20):
        spec = draw_phantom("liver", seed, config, 2)
        geometry, scale = spec.geometry, spec.geometry["scale"]
        frame = geometry["liver_frame"]
        area, right = liver_measures(frame, 2)
        assert 70 * CM2 <= area / scale**2 <= 250 * CM2  # adult axial cross-section
        assert geometry["anatomy"]["liver_area_m2"] == pytest.approx(area)
        assert 0.6 <= right <= 0.92  # anatomical right lobe (falciform split)
        tags = [r.tag for r in spec.regions]
        assert tags[:3] == [1, 2, 3] and len(set(tags)) == len(tags)
        assert [r.name for r in spec.regions][:3] == ["body", "fat", "liver"]
        liver = liver_section(frame, None)
        skin, inner = geometry["shapes"][0], geometry["shapes"][1]
        fov = np.array(config.grid.field_of_view_m[::-1])
        assert np.all((outline_points(skin) > 0) & (outline_points(skin) < fov))
        for shape in geometry["shapes"][3:]:
            points = outline_points(shape, 64)
            assert inside_with_margin(outline_points(inner), points, 0.0)
            if shape["region"] in (PORTAL, HEPATIC) or shape["region"] >= FIRST_LESION_TAG:
                margin = 0.99 * INNER_MARGIN * config.grid.voxel_size_m
                assert inside_with_margin(liver, points, margin)
            if shape["region"] == SPLEEN:
                assert not polygon_contains(liver, points).any()
        for region in ("portal_vein", "hepatic_veins"):
            assert region in [r.name for r in spec.regions]
        seen["spleen"] += geometry["anatomy"]["spleen"]
        seen["lesions"] += geometry["anatomy"]["lesions"] > 0
        _assert_anterior_driver_2d(spec)
    assert seen["spleen"] >= 8 and seen["lesions"] >= 2


def _assert_anterior_driver_2d(spec: PhantomSpec) -> None:
    middle = spec.driver.start_angle_rad + spec.driver.arc_rad / 2
    assert np.pi / 2 <= middle <= np.pi / 2 + np.deg2rad(30) + 1e-9  # anterior, patient right
    inward = -np.array([np.cos(middle), np.sin(middle), 0.0])
    assert np.dot(spec.driver.direction, inward) >= 0
    assert spec.boundary_tags == {"driver": DRIVER_TAG, "free": FREE_TAG}


def test_liver_3d_anatomy_is_plausible():
    config = validate_config({"dim": 3})
    for seed in range(4):
        spec = draw_phantom("liver", seed, config)
        frame, scale = spec.geometry["liver_frame"], spec.geometry["scale"]
        volume, right = liver_measures(frame, 3)
        assert 800 * CM3 <= volume / scale**3 <= 2500 * CM3  # adult liver volume
        assert 0.6 <= right <= 0.92
        for shape in spec.geometry["shapes"]:
            if shape["type"] == "cylinder":
                _assert_tube_inside_liver(frame, shape, config.grid.voxel_size_m)
        # The driver patch sits on the anterior skin, facing forward, over the liver.
        centre = np.asarray(spec.driver.centre_m)
        body_centre = np.asarray(spec.geometry["centre_m"])
        assert centre[1] > body_centre[1] and spec.driver.axis[1] > 0.8
        assert abs(centre[2]) < frame["height_m"] / 2
        grid = spec.grid
        assert grid.shape == (4, 64, 64) and grid.slice_spacing_m == pytest.approx(5e-3)
        assert grid.axes()[2].mean() == pytest.approx(0.0)  # the stack is centred on the liver
        assert spec.boundary_tags == {"driver": 1, "absorbing": 2, "free": 3}


def _assert_tube_inside_liver(frame: dict, shape: dict, margin: float) -> None:
    start, end = np.asarray(shape["start_m"]), np.asarray(shape["end_m"])
    for w in np.linspace(0, 1, 9):
        point = start + w * (end - start)
        section = liver_section(frame, float(point[2]))
        assert section is not None
        clearance = shape["radius_m"] + 0.99 * INNER_MARGIN * margin
        assert inside_with_margin(section, point[None, :2], clearance)


# ---------------------------------------------------------------- meshes and boundaries


def test_liver_2d_mesh_groups_and_driver_on_anterior_skin(tmp_path):
    spec = make_phantom("liver", 3, validate_config(SMALL_2D), tmp_path / "p", preview=False)
    msh = tmp_path / "p" / "mesh.msh"
    groups = physical_groups(msh)
    assert {k: v for k, v in groups.items() if k[0] == 2} == {
        (2, r.tag): r.name for r in spec.regions
    }
    assert {k: v for k, v in groups.items() if k[0] == 1} == {(1, 1): "driver", (1, 3): "free"}
    nodes = boundary_nodes(msh, 2, DRIVER_TAG)
    cx, cy = spec.geometry["centre_m"]
    theta = np.arctan2(nodes[:, 1] - cy, nodes[:, 0] - cx)
    radius = np.hypot(nodes[:, 0] - cx, nodes[:, 1] - cy)
    skin = outline_radius(spec.geometry["shapes"][0], theta)
    assert np.allclose(radius, skin, atol=1e-6)  # on the skin
    assert np.all(nodes[:, 1] > cy)  # anterior
    offset = np.mod(theta - spec.driver.start_angle_rad, 2 * np.pi)
    assert np.all(offset <= spec.driver.arc_rad + 1e-6)
    measures = region_measures(msh, 2)
    area, _ = liver_measures(spec.geometry["liver_frame"], 2)
    inside_liver = sum(m for tag, m in measures.items() if tag >= LIVER and tag != SPLEEN)
    assert inside_liver == pytest.approx(area, rel=0.03)


def test_3d_liver_meshes_at_small_size(tmp_path):
    start = time.perf_counter()
    spec = make_phantom("liver", 1, validate_config(SMALL_3D), tmp_path / "p", dim=3)
    seconds = time.perf_counter() - start
    msh = tmp_path / "p" / "mesh.msh"
    measures = region_measures(msh, 3)
    with gmsh_session("count") as gmsh:
        gmsh.open(str(msh))
        cells = len(gmsh.model.mesh.getElementsByType(4)[0])
    assert 500 < cells < 10_000 and seconds < 10
    groups = physical_groups(msh)
    assert {k[1] for k in groups if k[0] == 3} == {r.tag for r in spec.regions}
    assert {k: v for k, v in groups.items() if k[0] == 2} == {
        (2, 1): "driver",
        (2, 2): "absorbing",
        (2, 3): "free",
    }
    volume, _ = liver_measures(spec.geometry["liver_frame"], 3)
    inside_liver = sum(m for tag, m in measures.items() if tag >= LIVER and tag != SPLEEN)
    assert inside_liver == pytest.approx(volume, rel=0.12)  # coarse tets cut the curved surface
    # Driver nodes: inside the patch cylinder, on the anterior skin.
    nodes = boundary_nodes(msh, 3, DRIVER_TAG)
    relative = nodes - np.asarray(spec.driver.centre_m)
    along = relative @ np.asarray(spec.driver.axis)
    across = np.linalg.norm(relative - along[:, None] * np.asarray(spec.driver.axis), axis=1)
    assert np.all(across <= spec.driver.radius_m * (1 + 1e-5))
    assert np.all(nodes[:, 1] > spec.geometry["centre_m"][1])
    caps = boundary_nodes(msh, 3, ABSORBING_TAG)[:, 2]
    assert np.allclose(np.abs(caps), spec.geometry["boundary"]["caps_z_m"][1])
    assert (tmp_path / "p" / "preview.png").stat().st_size > 10_000


@pytest.mark.parametrize("family", ["homogeneous", "heterogeneous"])
def test_3d_absorbing_families_have_a_driver_patch(tmp_path, family):
    raw = SMALL_3D
    seed = seed_where(family, 3, raw, lambda s: len(s.regions) > 1 or family == "homogeneous")
    spec = make_phantom(family, seed, validate_config(raw), tmp_path / "p", dim=3, preview=False)
    groups = physical_groups(tmp_path / "p" / "mesh.msh")
    assert {k: v for k, v in groups.items() if k[0] == 2} == {(2, 1): "driver", (2, 2): "absorbing"}
    assert {k[1] for k in groups if k[0] == 3} == {r.tag for r in spec.regions}
    nodes = boundary_nodes(tmp_path / "p" / "mesh.msh", 3, DRIVER_TAG)
    domain = spec.geometry["shapes"][0]
    assert np.allclose(ellipsoid_level(domain, nodes), 1.0, atol=0.02)  # on the surface


# ---------------------------------------------------------------- random fields


def test_gaussian_random_field_statistics():
    spacing, correlation = 1e-3, 5e-3
    g = gaussian_random_field(generator(3), (200, 220), (spacing, spacing), correlation)
    assert g.mean() == pytest.approx(0.0, abs=1e-12) and g.std() == pytest.approx(1.0)
    lag = round(correlation / spacing)
    # Covariance exp(-r^2 / (2 l^2)) at r = l: exp(-1/2) ~ 0.61 (sampling error ~0.1).
    measured = np.mean(g[:, :-lag] * g[:, lag:])
    assert measured == pytest.approx(np.exp(-0.5), abs=0.12)
    again = gaussian_random_field(generator(3), (200, 220), (spacing, spacing), correlation)
    assert np.array_equal(g, again)


def test_modulus_field_covers_the_phantom_and_interpolates():
    spec = draw_phantom("liver", 2, validate_config({}), 3)
    field = spec.modulus_field
    values = realize(field)
    assert values.shape == field.shape and values.dtype == np.float64
    assert np.log(values).std() == pytest.approx(field.sigma)
    lower = np.asarray(field.origin_m)
    upper = lower + np.asarray(field.spacing_m) * (np.asarray(field.shape[::-1]) - 1)
    skin = outline_points(spec.geometry["shapes"][0]["outline"])  # the body prism's outline
    assert np.all(skin >= lower[:2]) and np.all(skin <= upper[:2])
    caps = spec.geometry["boundary"]["caps_z_m"]
    assert lower[2] <= caps[0] and caps[1] <= upper[2]
    # At the field's own nodes interpolation returns the stored values.
    k, j, i = 3, 5, 7
    node = lower + np.asarray(field.spacing_m) * np.array([i, j, k])
    assert sample_field(field, values, node[None])[0] == pytest.approx(values[k, j, i])


def test_new_config_sections_validate_with_one_line_errors():
    with pytest.raises(UserError, match="'liver"):
        validate_config({"liver": {"stage_probabilities": {"F0": -1.0}}})
    with pytest.raises(UserError, match="'heterogeneous"):
        validate_config({"heterogeneous": {"inclusions": {"min": 4, "max": 2}}})
    with pytest.raises(UserError, match="'dim'"):
        validate_config({"dim": 4})
    config = validate_config({"dim": 3, "samples": {"liver": 2, "heterogeneous": 1}})
    assert config.grid.slices == 4 and config.grid.slice_thickness_mm == 5.0
