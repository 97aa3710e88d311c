"""Homogeneous 2D phantoms: a rounded tissue domain of random size and one random material."""

from __future__ import annotations

import numpy as np

from dime_pipeline.config import PipelineConfig
from dime_pipeline.materials import complex_modulus
from dime_pipeline.phantoms.spec import Driver, Grid, PhantomSpec, Region
from dime_pipeline.seeding import generator

SHAPE_MODES = (2, 3, 4)  # Fourier modes of the boundary radius: smooth, organ-like outlines


def draw_homogeneous(config: PipelineConfig, seed: int) -> PhantomSpec:
    """Draw every random choice of one homogeneous phantom from its own stream."""
    rng = generator(seed)
    frequency = rng.uniform(config.frequency_hz.min, config.frequency_hz.max)
    materials = config.materials
    storage_ref = 1e3 * rng.uniform(
        materials.storage_modulus_kpa.min, materials.storage_modulus_kpa.max
    )
    loss_ref = storage_ref * rng.uniform(materials.loss_ratio.min, materials.loss_ratio.max)
    # The ranges apply at the reference frequency; the frequency model carries G* to this one.
    modulus = complex_modulus(
        materials.frequency_model,
        storage_ref,
        loss_ref,
        materials.reference_frequency_hz,
        frequency,
    )
    tissue = Region(
        tag=1,
        name="tissue",
        storage_modulus_pa=modulus.real,
        loss_modulus_pa=modulus.imag,
        density_kg_m3=materials.density_kg_m3,
        bulk_modulus_pa=materials.bulk_modulus_gpa * 1e9,
    )
    grid = Grid(shape=tuple(config.grid.shape), voxel_size_m=config.grid.voxel_size_m)
    geometry = _draw_outline(config, rng)
    driver = _draw_driver(config, rng)
    wavelength = shear_wavelength(tissue.shear_modulus, tissue.density_kg_m3, frequency)
    mesh_size = min(
        wavelength / config.mesh.elements_per_wavelength,
        config.mesh.max_size_voxels * grid.voxel_size_m,
    )
    return PhantomSpec(
        family="homogeneous",
        seed=seed,
        dim=2,
        frequency_hz=frequency,
        regions=(tissue,),
        driver=driver,
        grid=grid,
        mesh_size_m=mesh_size,
        geometry=geometry,
        config_hash=config.digest(),
    )


def shear_wavelength(shear_modulus: complex, density: float, frequency_hz: float) -> float:
    """λ = 2π / Re(k) with k = ω sqrt(ρ / G*)."""
    k = 2 * np.pi * frequency_hz * np.sqrt(density / complex(shear_modulus))
    return float(2 * np.pi / k.real)


def _draw_outline(config: PipelineConfig, rng: np.random.Generator) -> dict:
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


def _draw_driver(config: PipelineConfig, rng: np.random.Generator) -> Driver:
    """Driver arc at a random angle; direction uniform on the sphere, so every sample has in-plane
    and through-plane motion in random proportions."""
    start = rng.uniform(0, 2 * np.pi)
    arc = np.deg2rad(rng.uniform(config.driver.arc_deg.min, config.driver.arc_deg.max))
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    return Driver(
        start_angle_rad=float(start),
        arc_rad=float(arc),
        amplitude_m=config.driver.amplitude_um * 1e-6,
        direction=tuple(float(d) for d in direction),
    )
