"""Homogeneous phantoms: a rounded tissue domain of random size and one random material.

2D: a star-shaped outline with a driver arc. 3D: an ellipsoid (random semi-axes, rotated about
z) with a circular driver patch on its side. The rest of the boundary is absorbing: the domain
stands for a piece of an unbounded medium. The building blocks (shared with the other families)
are in ``common``; this module only draws them in the family's order.
"""

from __future__ import annotations

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
    volume_geometry,
)
from dime_pipeline.phantoms.spec import PhantomSpec
from dime_pipeline.seeding import generator


def draw_homogeneous(config: PipelineConfig, seed: int) -> PhantomSpec:
    """Draw every random choice of one homogeneous phantom from its own stream."""
    rng = generator(seed)
    frequency = rng.uniform(config.frequency_hz.min, config.frequency_hz.max)
    storage_ref, loss_ref = draw_storage_loss(config, rng)
    tissue = material_region(config, 1, "tissue", storage_ref, loss_ref, frequency)
    if config.dim == 2:
        grid = make_grid(config)
        geometry = draw_outline(config, rng)
        driver = draw_arc_driver(config, rng)
    else:
        grid = make_grid(config)
        ellipsoid = draw_ellipsoid(config, rng, region=1)
        driver = draw_patch_driver(config, rng, ellipsoid)
        geometry = volume_geometry(ellipsoid)
    return PhantomSpec(
        family="homogeneous",
        seed=seed,
        dim=config.dim,
        frequency_hz=frequency,
        regions=(tissue,),
        driver=driver,
        grid=grid,
        mesh_size_m=mesh_size(config, (tissue,), frequency),
        geometry=geometry,
        config_hash=config.digest(),
    )
