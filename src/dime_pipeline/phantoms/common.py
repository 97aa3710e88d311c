"""Building blocks the phantom families share: materials and mesh size, the sampling grid, the
2D star-shaped outline with its driver arc, and the 3D ellipsoid with its driver patch.

``homogeneous`` is these blocks alone; ``heterogeneous`` adds inclusions to the same background,
and ``liver`` uses the materials, sizes and grid. They live here, apart from any one family, so
that no family imports another. The ``draw_*`` functions take the family's random stream and
draw from it in a fixed order.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from dime_pipeline.config import PipelineConfig
from dime_pipeline.materials import complex_modulus
from dime_pipeline.phantoms.geometry import ellipsoid_level, rotation_matrix
from dime_pipeline.phantoms.spec import Driver, Grid, Region

SHAPE_MODES = (2, 3, 4)  # Fourier modes of the boundary radius: smooth, organ-like outlines
DRIVER_ELEVATION_RAD = np.deg2rad(30.0)  # 3D patch centres stay within ±30° of the equator


# ---------------------------------------------------------------- materials and sizes


def draw_storage_loss(config: PipelineConfig, rng: np.random.Generator) -> tuple[float, float]:
    """(G', G'') at the reference frequency from ``materials``' ranges."""
    materials = config.materials
    storage_ref = 1e3 * rng.uniform(
        materials.storage_modulus_kpa.min, materials.storage_modulus_kpa.max
    )
    return storage_ref, storage_ref * rng.uniform(
        materials.loss_ratio.min, materials.loss_ratio.max
    )


def material_region(
    config: PipelineConfig,
    tag: int,
    name: str,
    storage_ref: float,
    loss_ref: float,
    frequency: float,
    density: float | None = None,
) -> Region:
    """A region whose G* is (storage, loss) at the reference frequency, carried to
    ``frequency`` by the configured frequency model."""
    materials = config.materials
    modulus = complex_modulus(
        materials.frequency_model,
        storage_ref,
        loss_ref,
        materials.reference_frequency_hz,
        frequency,
    )
    return Region(
        tag=tag,
        name=name,
        storage_modulus_pa=modulus.real,
        loss_modulus_pa=modulus.imag,
        density_kg_m3=materials.density_kg_m3 if density is None else density,
        bulk_modulus_pa=materials.bulk_modulus_gpa * 1e9,
    )


def shear_wavelength(shear_modulus: complex, density: float, frequency_hz: float) -> float:
    """λ = 2π / Re(k) with k = ω sqrt(ρ / G*)."""
    k = 2 * np.pi * frequency_hz * np.sqrt(density / complex(shear_modulus))
    return float(2 * np.pi / k.real)


def mesh_size(
    config: PipelineConfig,
    regions: Iterable[Region],
    frequency: float,
    softest_multiplier: dict[int, float] | None = None,
) -> float:
    """min(shortest shear wavelength / elements_per_wavelength, max_size_voxels voxels).

    ``softest_multiplier`` gives, per region tag, the smallest modulus-field factor there
    (λ scales with sqrt(|G*|))."""
    factors = softest_multiplier or {}
    shortest = min(
        shear_wavelength(r.shear_modulus * factors.get(r.tag, 1.0), r.density_kg_m3, frequency)
        for r in regions
    )
    return min(
        shortest / config.mesh.elements_per_wavelength,
        config.mesh.max_size_voxels * config.grid.voxel_size_m,
    )


def make_grid(config: PipelineConfig, z_centre: float = 0.0) -> Grid:
    """The sampling grid: (ny, nx) in 2D; in 3D ``grid.slices`` slices centred on z_centre."""
    grid = config.grid
    if config.dim == 2:
        return Grid(shape=tuple(grid.shape), voxel_size_m=grid.voxel_size_m)
    z0 = z_centre - 0.5 * grid.slices * grid.slice_spacing_m
    return Grid(
        shape=(grid.slices, *grid.shape),
        voxel_size_m=grid.voxel_size_m,
        origin_m=(0.0, 0.0, float(z0)),
        slice_thickness_m=grid.slice_thickness_m,
        slice_spacing_m=grid.slice_spacing_m,
    )


def slab_half_height(config: PipelineConfig) -> float:
    """Half the z extent of the slice stack, slice thickness included."""
    grid = config.grid
    return 0.5 * ((grid.slices - 1) * grid.slice_spacing_m + grid.slice_thickness_m)


# ---------------------------------------------------------------- 2D domain and driver


def draw_outline(config: PipelineConfig, rng: np.random.Generator) -> dict:
    """A star-shaped outline r(θ) = R (1 + Σ a_m cos(mθ + φ_m)), centred near the FOV centre."""
    fov_y, fov_x = config.grid.field_of_view_m
    edge = min(fov_x, fov_y)
    radius = edge * rng.uniform(
        config.domain.radius_fraction.min, config.domain.radius_fraction.max
    )
    amplitudes = rng.uniform(-1, 1, len(SHAPE_MODES)) * config.domain.roughness
    phases = rng.uniform(0, 2 * np.pi, len(SHAPE_MODES))
    reach = radius * (1 + np.abs(amplitudes).sum())
    slack = max(0.0, 0.5 * edge - reach)  # keep the whole outline inside the field of view
    centre = (
        0.5 * fov_x + rng.uniform(-slack, slack) * 0.5,
        0.5 * fov_y + rng.uniform(-slack, slack) * 0.5,
    )
    return {
        "kind": "star",
        "centre_m": [float(c) for c in centre],
        "radius_m": float(radius),
        "modes": list(SHAPE_MODES),
        "amplitudes": [float(a) for a in amplitudes],
        "phases_rad": [float(p) for p in phases],
    }


def random_direction(rng: np.random.Generator) -> tuple[float, float, float]:
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    return tuple(float(d) for d in direction)


def draw_arc_driver(config: PipelineConfig, rng: np.random.Generator) -> Driver:
    """Driver arc at a random angle; direction uniform on the sphere, so every sample has in-plane
    and through-plane motion in random proportions."""
    start = rng.uniform(0, 2 * np.pi)
    arc = np.deg2rad(rng.uniform(config.driver.arc_deg.min, config.driver.arc_deg.max))
    return Driver(
        start_angle_rad=float(start),
        arc_rad=float(arc),
        amplitude_m=config.driver.amplitude_um * 1e-6,
        direction=random_direction(rng),
    )


# ---------------------------------------------------------------- 3D domain and driver


def draw_ellipsoid(config: PipelineConfig, rng: np.random.Generator, region: int) -> dict:
    """An ellipsoid near the FOV centre (z = 0), rotated about z, tall enough for the slices."""
    fov_y, fov_x = config.grid.field_of_view_m
    edge = min(fov_x, fov_y)
    radius = edge * rng.uniform(
        config.domain.radius_fraction.min, config.domain.radius_fraction.max
    )
    semi = radius * (1 + config.domain.roughness * rng.uniform(-1, 1, 3))
    semi[2] = max(semi[2], slab_half_height(config) + 2 * config.grid.voxel_size_m)
    angle = rng.uniform(0, np.pi)
    slack = max(0.0, 0.5 * edge - semi[:2].max())
    centre = (
        0.5 * fov_x + rng.uniform(-slack, slack) * 0.5,
        0.5 * fov_y + rng.uniform(-slack, slack) * 0.5,
        0.0,
    )
    return {
        "type": "ellipsoid",
        "region": region,
        "centre_m": [float(c) for c in centre],
        "semi_axes_m": [float(s) for s in semi],
        "rotation": {"axis": [0.0, 0.0, 1.0], "angle_rad": float(angle)},
    }


def volume_geometry(domain: dict, shapes: list[dict] | None = None) -> dict:
    """Geometry of an ellipsoid-bounded 3D phantom (absorbing outside the driver patch)."""
    return {
        "kind": "ellipsoid",
        "centre_m": domain["centre_m"],
        "shapes": [domain, *(shapes or [])],
        "boundary": {"rest": "absorbing"},
    }


def draw_patch_driver(config: PipelineConfig, rng: np.random.Generator, domain: dict) -> Driver:
    """A circular patch on the ellipsoid's side: centre at a random azimuth (elevation within
    ±30°), radius from ``driver.arc_deg`` (the angle the patch subtends at the centre)."""
    azimuth = rng.uniform(0, 2 * np.pi)
    elevation = rng.uniform(-DRIVER_ELEVATION_RAD, DRIVER_ELEVATION_RAD)
    arc = np.deg2rad(rng.uniform(config.driver.arc_deg.min, config.driver.arc_deg.max))
    return ellipsoid_patch(
        domain, azimuth, elevation, arc, config.driver.amplitude_um * 1e-6, random_direction(rng)
    )


def ellipsoid_patch(
    domain: dict,
    azimuth: float,
    elevation: float,
    arc: float,
    amplitude: float,
    direction: tuple[float, float, float],
) -> Driver:
    """The disc of the ellipsoid's surface seen under angle ``arc`` from its centre, around the
    ray at (azimuth, elevation); cut out by a cylinder along the surface normal."""
    ray = np.array(
        [
            np.cos(elevation) * np.cos(azimuth),
            np.cos(elevation) * np.sin(azimuth),
            np.sin(elevation),
        ]
    )
    centre = np.asarray(domain["centre_m"])
    point = centre + ray / ellipsoid_level(domain, (centre + ray)[None])[0]
    normal = _ellipsoid_normal(domain, point)
    radius = np.linalg.norm(point - centre) * np.sin(arc / 2)
    depth = _ellipsoid_sag(domain, point, normal, radius) + 0.25 * radius
    return Driver(
        start_angle_rad=float(azimuth - arc / 2),
        arc_rad=float(arc),
        amplitude_m=amplitude,
        direction=direction,
        centre_m=tuple(float(v) for v in point),
        axis=tuple(float(v) for v in normal),
        radius_m=float(radius),
        depth_m=float(depth),
    )


def _ellipsoid_frame(domain: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rotation = domain["rotation"]
    matrix = rotation_matrix(rotation["axis"], rotation["angle_rad"])
    return matrix, np.asarray(domain["centre_m"]), np.asarray(domain["semi_axes_m"])


def _ellipsoid_normal(domain: dict, point: np.ndarray) -> np.ndarray:
    matrix, centre, semi = _ellipsoid_frame(domain)
    local = matrix.T @ (point - centre)
    normal = matrix @ (local / semi**2)
    return normal / np.linalg.norm(normal)


def _ellipsoid_sag(domain: dict, point: np.ndarray, normal: np.ndarray, radius: float) -> float:
    """How far the surface falls below the tangent plane at ``point`` within ``radius``."""
    matrix, centre, semi = _ellipsoid_frame(domain)
    e1 = np.cross(normal, [0.0, 0.0, 1.0] if abs(normal[2]) < 0.9 else [1.0, 0.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(normal, e1)
    sag = 0.0
    for phi in np.linspace(0, 2 * np.pi, 72, endpoint=False):
        rim = point + radius * (np.cos(phi) * e1 + np.sin(phi) * e2)
        p = matrix.T @ (rim - centre) / semi
        d = matrix.T @ (-normal) / semi
        a, b, c = d @ d, 2 * p @ d, p @ p - 1
        disc = b * b - 4 * a * c
        if disc < 0:
            raise ValueError("driver patch wider than the domain")
        sag = max(sag, (-b - np.sqrt(disc)) / (2 * a))
    return float(sag)
