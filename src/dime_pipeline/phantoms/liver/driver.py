"""The liver phantom's driver: a patch on the anterior skin over the liver pushing into the
body (an arc of the skin in 2D, a disc cut out of the skin by a cylinder in 3D). Kept apart
because it needs the skin's local shape (point, normal, sag under the patch), which nothing else
in the family does.
"""

from __future__ import annotations

import numpy as np

from dime_pipeline.config import PipelineConfig
from dime_pipeline.phantoms.geometry import (
    outline_point_normal,
    outline_points,
    outline_radius,
    polygon_contains,
)
from dime_pipeline.phantoms.liver.anatomy import Anatomy, draw_uniform
from dime_pipeline.phantoms.spec import Driver


def draw_driver(config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy) -> Driver:
    """A patch on the anterior skin, shifted towards the patient's right (over the liver); it
    pushes in a random direction into the body."""
    settings = config.liver.driver
    theta = np.pi / 2 + np.deg2rad(draw_uniform(rng, settings.offset_deg))
    width = draw_uniform(rng, settings.width_mm, 1e-3 * anatomy.scale)
    direction = rng.normal(size=3)
    z_shift = float(rng.uniform(-0.2, 0.2)) * anatomy.frame["height_m"] / 2
    inward = -np.array([np.cos(theta), np.sin(theta), 0.0])
    if direction @ inward < 0:
        direction = -direction
    unit = tuple(float(d) for d in direction / np.linalg.norm(direction))
    amplitude = config.driver.amplitude_um * 1e-6
    if anatomy.dim == 2:
        arc = width / float(outline_radius(anatomy.outer, np.array([theta]))[0])
        return Driver(float(theta - arc / 2), float(arc), amplitude, unit)
    skin = (anatomy.outer, anatomy.z_range, anatomy.fat_thickness, anatomy.voxel, anatomy.centre)
    return skin_patch(*skin, theta, width / 2, z_shift, amplitude, unit)


def skin_patch(
    outer: dict,
    z_range: tuple[float, float],
    fat_thickness: float,
    voxel: float,
    centre: np.ndarray,
    theta: float,
    radius: float,
    z_shift: float,
    amplitude: float,
    direction: tuple[float, float, float],
) -> Driver:
    """3D: a disc-shaped patch of the skin (the prism ``outer`` between ``z_range``) at polar
    angle ``theta``; the cylinder that cuts it out reaches halfway between the skin's sag under
    the patch and the fat's inner surface (narrowed until the sag is small)."""
    low, high = z_range
    point, normal = outline_point_normal(outer, theta)
    radius = min(radius, 0.5 * (high - low) - 2 * voxel)
    sag = _prism_sag(outer, point, normal, radius)
    while sag > 0.4 * fat_thickness:
        radius *= 0.8
        sag = _prism_sag(outer, point, normal, radius)
    z = float(np.clip(z_shift, low + radius + voxel, high - radius - voxel))
    arc = 2 * radius / float(np.linalg.norm(point - np.asarray(centre)[:2]))
    return Driver(
        start_angle_rad=float(theta - arc / 2),
        arc_rad=float(arc),
        amplitude_m=amplitude,
        direction=direction,
        centre_m=(float(point[0]), float(point[1]), z),
        axis=(float(normal[0]), float(normal[1]), 0.0),
        radius_m=float(radius),
        depth_m=float(sag + 0.5 * (fat_thickness - sag)),
    )


def _prism_sag(outline: dict, point: np.ndarray, normal: np.ndarray, radius: float) -> float:
    """How far the skin falls below its tangent plane within ``radius`` of ``point``."""
    tangent = np.array([-normal[1], normal[0]])
    polygon = outline_points(outline, 720)
    steps = np.linspace(0.0, radius, 201)
    sag = 0.0
    for side in (-1.0, 1.0):
        rim = point + side * radius * tangent
        probes = rim[None] - steps[:, None] * normal[None]
        inside = polygon_contains(polygon, probes)
        sag = max(sag, float(steps[np.argmax(inside)]) if inside.any() else radius)
    return sag
