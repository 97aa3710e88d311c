"""Heterogeneous phantoms: a homogeneous-like background with inclusions, or a random field.

The background (outline or ellipsoid, material, driver) is drawn as for ``homogeneous``, from the
shared blocks in ``common``, with an absorbing outer boundary. Then, with odds
``heterogeneous.random_field_probability``, the background's G* is multiplied by a smooth random
field (no inclusions); otherwise 1-6 inclusions (discs/spheres, ellipses/ellipsoids, smooth
irregular blobs) are placed without overlap, at least ``margin_mm`` apart and from the boundary
(in 3D with centres within the slice stack).
Region tags: background 1, inclusion k at k + 1.
"""

from __future__ import annotations

import numpy as np

from dime_pipeline.config import PipelineConfig
from dime_pipeline.phantoms.common import (
    draw_arc_driver,
    draw_ellipsoid,
    draw_outline,
    draw_patch_driver,
    draw_storage_loss,
    make_grid,
    material_region,
    mesh_size,
    slab_half_height,
    volume_geometry,
)
from dime_pipeline.phantoms.fields import draw_modulus_field, realize
from dime_pipeline.phantoms.geometry import (
    ellipsoid_level,
    inside_with_margin,
    outline_points,
    segment_distance,
    surface_points,
)
from dime_pipeline.phantoms.spec import Driver, ModulusField, PhantomSpec, Region
from dime_pipeline.seeding import generator

SHAPES = ("round", "elongated", "blob")
BLOB_MODES = (2, 3)
BLOB_SECTIONS = 5  # 3D blobs: lofted through this many star-shaped sections
FEATURE_ELEMENTS = 4  # elements across the smallest dimension of an inclusion
PLACEMENT_TRIES = 60  # random positions per size before an inclusion shrinks
SHRINK = 0.8


def draw_heterogeneous(config: PipelineConfig, seed: int) -> PhantomSpec:
    """Draw every random choice of one heterogeneous phantom from its own stream."""
    rng = generator(seed)
    frequency = rng.uniform(config.frequency_hz.min, config.frequency_hz.max)
    storage_ref, loss_ref = draw_storage_loss(config, rng)
    background = material_region(config, 1, "background", storage_ref, loss_ref, frequency)
    settings = config.heterogeneous
    random_field = bool(rng.uniform() < settings.random_field_probability)
    if config.dim == 2:
        domain = {**draw_outline(config, rng), "type": "star", "region": 1}
        driver = draw_arc_driver(config, rng)
    else:
        domain = draw_ellipsoid(config, rng, region=1)
        driver = draw_patch_driver(config, rng, domain)
    regions: list[Region] = [background]
    inclusions: list[dict] = []
    field, softest = None, {}
    if random_field:
        field = _draw_field(config, rng, domain)
        softest = {1: float(realize(field).min())}
    else:
        inclusions = _place_inclusions(config, rng, domain, driver)
        for k, inclusion in enumerate(inclusions, start=2):
            storage = inclusion["contrast"] * storage_ref
            name = f"inclusion_{k - 1}"
            regions.append(
                material_region(
                    config, k, name, storage, storage * inclusion["loss_ratio"], frequency
                )
            )
    size = mesh_size(config, regions, frequency, softest)
    geometry = _geometry(config, domain, inclusions, size, random_field)
    return PhantomSpec(
        family="heterogeneous",
        seed=seed,
        dim=config.dim,
        frequency_hz=frequency,
        regions=tuple(regions),
        driver=driver,
        grid=make_grid(config),
        mesh_size_m=size,
        geometry=geometry,
        config_hash=config.digest(),
        modulus_field=field,
    )


def _geometry(
    config: PipelineConfig, domain: dict, inclusions: list[dict], size: float, random_field: bool
) -> dict:
    shapes = [inclusion["shape"] for inclusion in inclusions]
    if config.dim == 3:
        geometry = volume_geometry(domain, shapes)
    else:
        geometry = {
            "kind": "star",
            "centre_m": domain["centre_m"],
            "shapes": [domain, *shapes],
            "boundary": {"rest": "absorbing"},
        }
    geometry["variant"] = "random_field" if random_field else "inclusions"
    geometry["inclusions"] = [
        {k: v for k, v in inclusion.items() if k != "shape"} for inclusion in inclusions
    ]
    geometry["refine"] = {
        str(k): min(size, inclusion["thickness_m"] / FEATURE_ELEMENTS)
        for k, inclusion in enumerate(inclusions, start=2)
    }
    return geometry


def _draw_field(config: PipelineConfig, rng: np.random.Generator, domain: dict) -> ModulusField:
    """A random field on the background's bounding box."""
    settings = config.heterogeneous
    correlation = settings.random_field_correlation_mm * 1e-3
    spacing = min(config.grid.voxel_size_m, correlation / 4)
    centre = np.asarray(domain["centre_m"])
    if config.dim == 2:
        reach = domain["radius_m"] * (1 + np.abs(domain["amplitudes"]).sum())
        half = np.array([reach, reach])
    else:
        a, b, c = domain["semi_axes_m"]
        half = np.array([max(a, b), max(a, b), c])
    lower, upper = centre - half - spacing, centre + half + spacing
    return draw_modulus_field(
        rng, lower, upper, spacing, settings.random_field_sigma, correlation, [1]
    )


# ---------------------------------------------------------------- inclusions


def _place_inclusions(
    config: PipelineConfig, rng: np.random.Generator, domain: dict, driver: Driver
) -> list[dict]:
    """Inclusions at random non-overlapping positions; one that finds no room after shrinking
    to the smallest configured diameter is left out (so a small domain may hold fewer)."""
    settings = config.heterogeneous
    count = int(rng.integers(settings.inclusions.min, settings.inclusions.max + 1))
    weights = np.array([settings.shape_weights.get(s, 0.0) for s in SHAPES])
    placed: list[dict] = []
    for _ in range(count):
        kind = SHAPES[int(rng.choice(len(SHAPES), p=weights / weights.sum()))]
        diameter = 1e-3 * rng.uniform(settings.diameter_mm.min, settings.diameter_mm.max)
        contrast = float(
            np.exp(rng.uniform(*np.log([settings.contrast.min, settings.contrast.max])))
        )
        loss_ratio = float(
            rng.uniform(config.materials.loss_ratio.min, config.materials.loss_ratio.max)
        )
        while True:
            region = len(placed) + 2  # the tag of the next inclusion kept (one may be left out)
            inclusion = _try_place(config, rng, domain, driver, placed, kind, diameter, region)
            if inclusion is not None or diameter * SHRINK < 1e-3 * settings.diameter_mm.min:
                break
            diameter *= SHRINK
        if inclusion is not None:
            placed.append({**inclusion, "contrast": contrast, "loss_ratio": loss_ratio})
    return placed


def _try_place(
    config: PipelineConfig,
    rng: np.random.Generator,
    domain: dict,
    driver: Driver,
    placed: list[dict],
    kind: str,
    diameter: float,
    region: int,
) -> dict | None:
    margin = 1e-3 * config.heterogeneous.margin_mm
    low, high = _placement_box(config, domain)
    for _ in range(PLACEMENT_TRIES):
        centre = rng.uniform(low, high)
        shape, bound, thickness = _inclusion_shape(config, rng, kind, diameter, centre, region)
        if any(
            np.linalg.norm(centre - np.asarray(other["centre_m"]))
            < bound + other["bound_m"] + margin
            for other in placed
        ):
            continue
        if _fits(domain, driver, shape, centre, bound, margin):
            return {
                "shape": shape,
                "kind": kind,
                "centre_m": [float(c) for c in centre],
                "diameter_m": float(diameter),
                "bound_m": float(bound),
                "thickness_m": float(thickness),
            }
    return None


def _placement_box(config: PipelineConfig, domain: dict) -> tuple[np.ndarray, np.ndarray]:
    """Where inclusion centres are drawn: the domain's bounding box; in 3D only heights within
    the slice stack, so that every inclusion shows in the sampled slices."""
    centre = np.asarray(domain["centre_m"])
    if domain["type"] == "ellipsoid":
        half = np.full(3, max(domain["semi_axes_m"]))
        half[2] = slab_half_height(config)
    else:
        half = np.full(2, domain["radius_m"] * (1 + np.abs(domain["amplitudes"]).sum()))
    return centre - half, centre + half


def _fits(
    domain: dict, driver: Driver, shape: dict, centre: np.ndarray, bound: float, margin: float
) -> bool:
    points = surface_points(shape, outline=96, ellipsoid=200, section=48)
    if domain["type"] != "ellipsoid":
        return inside_with_margin(outline_points(domain), points, margin)
    if np.max(ellipsoid_level(domain, points)) > 1 - margin / min(domain["semi_axes_m"]):
        return False
    # Keep clear of the cylinder that cuts the driver patch out of the surface.
    top = np.asarray(driver.centre_m)
    bottom = top - driver.depth_m * np.asarray(driver.axis)
    clearance = segment_distance(centre[None], top, bottom)[0]
    return bool(clearance >= bound + driver.radius_m + margin)


def _inclusion_shape(
    config: PipelineConfig,
    rng: np.random.Generator,
    kind: str,
    diameter: float,
    centre: np.ndarray,
    region: int,
) -> tuple[dict, float, float]:
    """(shape, bounding radius, smallest thickness) of one inclusion of equivalent diameter."""
    settings = config.heterogeneous
    radius = diameter / 2
    aspect = rng.uniform(settings.aspect_ratio.min, settings.aspect_ratio.max)
    amplitudes = rng.uniform(-1, 1, len(BLOB_MODES)) * settings.blob_roughness
    phases = rng.uniform(0, 2 * np.pi, len(BLOB_MODES))
    angle = rng.uniform(0, np.pi)
    if config.dim == 3:
        axis = rng.normal(size=3)
        return _inclusion_3d(kind, radius, aspect, amplitudes, phases, angle, axis, centre, region)
    if kind == "blob":
        shape = {
            "type": "star",
            "region": region,
            "centre_m": [float(c) for c in centre],
            "radius_m": float(radius),
            "modes": list(BLOB_MODES),
            "amplitudes": [float(a) for a in amplitudes],
            "phases_rad": [float(p) for p in phases],
        }
        spread = np.abs(amplitudes).sum()
        return shape, radius * (1 + spread), 2 * radius * (1 - spread)
    semi = [radius, radius] if kind == "round" else [radius * aspect**0.5, radius / aspect**0.5]
    shape = {
        "type": "ellipse",
        "region": region,
        "centre_m": [float(c) for c in centre],
        "semi_axes_m": [float(s) for s in semi],
        "angle_rad": float(angle),
    }
    return shape, max(semi), 2 * min(semi)


def _inclusion_3d(
    kind: str,
    radius: float,
    aspect: float,
    amplitudes: np.ndarray,
    phases: np.ndarray,
    angle: float,
    axis: np.ndarray,
    centre: np.ndarray,
    region: int,
) -> tuple[dict, float, float]:
    if kind == "blob":
        return _blob_3d(radius, amplitudes, phases, centre, region)
    if kind == "round":
        semi = [radius] * 3
    else:  # prolate, same volume as the sphere of the drawn diameter
        semi = [
            radius * aspect ** (2 / 3),
            radius * aspect ** (-1 / 3),
            radius * aspect ** (-1 / 3),
        ]
    shape = {
        "type": "ellipsoid",
        "region": region,
        "centre_m": [float(c) for c in centre],
        "semi_axes_m": [float(s) for s in semi],
        "rotation": {"axis": [float(a) for a in axis / np.linalg.norm(axis)], "angle_rad": angle},
    }
    return shape, max(semi), 2 * min(semi)


def _blob_3d(
    radius: float, amplitudes: np.ndarray, phases: np.ndarray, centre: np.ndarray, region: int
) -> tuple[dict, float, float]:
    """A loft through star-shaped sections whose radius tapers towards flat, small caps and
    whose shape modes rotate with height: smooth and irregular."""
    sections = []
    for t in np.linspace(-1.0, 1.0, BLOB_SECTIONS):
        scale = radius * np.sqrt(1 - 0.75 * t * t)
        theta = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        r = scale * (
            1
            + sum(
                a * np.cos(m * theta + p + t)
                for m, a, p in zip(BLOB_MODES, amplitudes, phases, strict=True)
            )
        )
        points = np.column_stack([centre[0] + r * np.cos(theta), centre[1] + r * np.sin(theta)])
        sections.append({"z_m": float(centre[2] + 0.9 * radius * t), "points_m": points.tolist()})
    shape = {"type": "loft", "region": region, "sections": sections}
    spread = np.abs(amplitudes).sum()
    return shape, radius * (1 + spread), 2 * radius * (1 - spread) * 0.5
