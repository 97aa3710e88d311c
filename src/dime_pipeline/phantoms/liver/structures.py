"""Structures inside the liver phantom's anatomy: portal and hepatic veins, the optional
spleen and focal lesions. Each is placed, shrunk or nudged until it fits (inside the liver, or
for the spleen inside the body and clear of the liver) and apart from the others, and is left
out when it does not; the placement rules live here, apart from the anatomy they query.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from dime_pipeline.config import PipelineConfig, Range
from dime_pipeline.phantoms.geometry import (
    outline_radius,
    polygon_contains,
    segments_distance,
    surface_points,
)
from dime_pipeline.phantoms.liver.anatomy import (
    FIRST_LESION_TAG,
    HEPATIC,
    PORTAL,
    SPLEEN,
    Anatomy,
    draw_count,
    draw_uniform,
    inside_body,
    inside_liver,
    liver_point,
    liver_section,
    outside_liver,
)

# Vessel courses in the frame (u, v[, t]); 2D hepatic veins are cut across, portal branches run
# in-plane (centre, angle in degrees); 3D tubes run from the first point to the second.
HEPATIC_2D = ((-0.70, -0.10), (-0.20, 0.00), (0.00, 0.60))
PORTAL_2D = (((-0.45, 0.35), -20.0), ((0.40, 0.47), 15.0), ((-0.35, -0.45), 25.0))
HEPATIC_3D = (  # from inferior-anterior up towards the confluence near the IVC
    ((-0.75, -0.35, -0.50), (-0.50, -0.45, 0.70)),
    ((-0.25, 0.40, -0.40), (-0.25, -0.15, 0.70)),
    ((0.10, 0.65, -0.30), (-0.05, 0.45, 0.70)),
)
PORTAL_3D = (  # right and left branches from the porta hepatis, below the confluence
    ((-0.25, -0.30, -0.30), (-0.65, 0.30, -0.20)),
    ((0.00, 0.15, -0.15), (0.50, 0.40, 0.05)),
)
TRIES = 8  # placement attempts before a structure is left out
LESION_TRIES = 30  # random positions per lesion size (then 10 % smaller, down to the floor)
INNER_MARGIN = 0.5  # voxels between a vessel or lesion and the liver surface (1 between them)
SPLEEN_ANGLES_DEG = (-70.0, -25.0)  # spleen centre: posterolateral left, from the body centre
SPLEEN_POINTS = 6  # crescent control points along each side


# ---------------------------------------------------------------- vessels


def _vessel_radius(
    config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy, bounds: Range
) -> float:
    floor = config.liver.vessels.min_radius_voxels * anatomy.voxel
    return max(draw_uniform(rng, bounds, 1e-3 * anatomy.scale), floor)


def draw_vessels(config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy) -> list[dict]:
    """Portal branches, then hepatic veins; each kept inside the liver and apart from the
    others, shrunk towards its middle when it does not fit, left out after ``TRIES``."""
    settings = config.liver.vessels
    three_d = anatomy.dim == 3
    portal = PORTAL_3D if three_d else PORTAL_2D
    hepatic = HEPATIC_3D if three_d else HEPATIC_2D
    kinds = (
        (PORTAL, portal, settings.portal_radius_mm),
        (HEPATIC, hepatic, settings.hepatic_radius_mm),
    )
    counts = (
        draw_count(rng, settings.portal_count, len(portal)),
        draw_count(rng, settings.hepatic_count, len(hepatic)),
    )
    placed: list[dict] = []
    for (region, courses, radii), count in zip(kinds, counts, strict=True):
        for course in courses[:count]:
            radius = _vessel_radius(config, rng, anatomy, radii)
            length = draw_uniform(rng, settings.portal_length_mm, 1e-3 * anatomy.scale)
            make = partial(
                _vessel, anatomy, course=course, radius=radius, length=length, region=region
            )
            _place(placed, make, anatomy, rng)
    return placed


def _place(
    placed: list[dict],
    make: Callable[[float], dict],
    anatomy: Anatomy,
    rng: np.random.Generator,
) -> None:
    """Try ``make(shrink)``, smaller and nudged each time, until it fits inside the liver apart
    from ``placed``; append it when it does."""
    margin = anatomy.voxel
    for attempt in range(TRIES):
        nudge = rng.uniform(-0.5, 0.5, anatomy.dim) * margin * attempt
        shape = _shifted(make(0.9**attempt), nudge)
        if inside_liver(anatomy, surface_points(shape), INNER_MARGIN * margin) and all(
            _apart(shape, other, margin) for other in placed
        ):
            placed.append(shape)
            return


def _shifted(shape: dict, shift: np.ndarray) -> dict:
    moved = dict(shape)
    for key in ("centre_m", "start_m", "end_m"):
        if key in moved:
            moved[key] = (np.asarray(moved[key]) + shift).tolist()
    return moved


def _vessel(
    anatomy: Anatomy, shrink: float, course: tuple, radius: float, length: float, region: int
) -> dict:
    """A vessel on its template course: a tube (3D); a cut-across hepatic vein or an in-plane
    portal branch of ``length`` (2D)."""
    frame = anatomy.frame
    if anatomy.dim == 3:
        start = liver_point(frame, *course[0])
        end = liver_point(frame, *course[1])
        middle = 0.5 * (start + end)
        return {
            "type": "cylinder",
            "region": region,
            "start_m": (middle + shrink * (start - middle)).tolist(),
            "end_m": (middle + shrink * (end - middle)).tolist(),
            "radius_m": float(radius),
        }
    if region == PORTAL:
        (u, v), angle = course
        semi = [max(shrink * length / 2, radius), radius]
    else:
        u, v = course
        semi, angle = [radius * 1.2, radius], 90.0
    return {
        "type": "ellipse",
        "region": region,
        "centre_m": liver_point(frame, u, v, None).tolist(),
        "semi_axes_m": [float(s) for s in semi],
        "angle_rad": float(np.deg2rad(angle)),
    }


# ---------------------------------------------------------------- spleen and lesions


def draw_spleen(config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy) -> dict | None:
    """A crescent along the posterolateral left wall, shrunk while it would come within
    ``gap`` of the liver; left out after ``TRIES``."""
    settings = config.liver.spleen
    present = rng.uniform() < settings.probability
    length = draw_uniform(rng, settings.length_mm, 1e-3 * anatomy.scale)
    thickness = draw_uniform(rng, settings.thickness_mm, 1e-3 * anatomy.scale)
    height = draw_uniform(rng, settings.height_mm, 1e-3 * anatomy.scale)
    angle = np.deg2rad(rng.uniform(*SPLEEN_ANGLES_DEG))
    if not present:
        return None
    for attempt in range(TRIES):
        shrink = 0.85**attempt
        shape = _spleen_shape(anatomy, angle, shrink * length, shrink * thickness, height)
        points = surface_points(shape)
        if inside_body(anatomy, points, 0.5 * anatomy.gap) and outside_liver(
            anatomy, points, anatomy.gap
        ):
            return shape
    return None


def _spleen_shape(
    anatomy: Anatomy, angle: float, length: float, thickness: float, height: float
) -> dict:
    """A spline crescent (2D) or a loft of crescents tapering up and down (3D)."""
    if anatomy.dim == 2:
        points = _crescent(anatomy, angle, length, thickness)
        return {"type": "spline", "region": SPLEEN, "points_m": points.tolist()}
    low, high = anatomy.z_range
    half = min(height / 2, 0.5 * (high - low) - 2 * anatomy.gap)
    z = min(0.25 * anatomy.frame["height_m"], high - anatomy.gap - half)
    sections = []
    for t in np.linspace(-1.0, 1.0, 5):
        taper = np.sqrt(1 - 0.75 * t * t)
        points = _crescent(anatomy, angle, taper * length, taper * thickness)
        sections.append({"z_m": float(z + t * half), "points_m": points.tolist()})
    return {"type": "loft", "region": SPLEEN, "sections": sections}


def _crescent(anatomy: Anatomy, angle: float, length: float, thickness: float) -> np.ndarray:
    """Control points of a crescent hugging the inner wall ``gap`` inside it: its convex side
    follows the wall over ``length``, its width tapers from ``thickness`` to the tips."""
    wall = outline_radius(anatomy.inner, np.array([angle]))[0]
    phi = angle + np.linspace(-0.5, 0.5, SPLEEN_POINTS) * length / wall
    outer = outline_radius(anatomy.inner, phi) - anatomy.gap
    width = thickness * (0.25 + 0.75 * np.sin(np.linspace(0.1, np.pi - 0.1, SPLEEN_POINTS)))
    radii = np.concatenate([outer, (outer - width)[::-1]])
    phis = np.concatenate([phi, phi[::-1]])
    return anatomy.centre + radii[:, None] * np.column_stack([np.cos(phis), np.sin(phis)])


def draw_lesions(
    config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy, vessels: list[dict]
) -> list[dict]:
    """Focal lesions at random places in the liver, apart from the vessels and each other;
    a lesion that finds no room shrinks (not below the floor) and is left out at the end."""
    settings = config.liver.lesions
    if rng.uniform() >= settings.probability:
        return []
    count = draw_count(rng, settings.count, settings.count.max)
    floor = settings.min_diameter_voxels * anatomy.voxel
    lesions: list[dict] = []
    for _ in range(count):
        diameter = max(draw_uniform(rng, settings.diameter_mm, 1e-3 * anatomy.scale), floor)
        for attempt in range(4 * LESION_TRIES):
            size = max(diameter * 0.9 ** (attempt // LESION_TRIES), floor)
            shape = _lesion_shape(rng, anatomy, size, FIRST_LESION_TAG + len(lesions))
            if shape is not None and _fits_liver(anatomy, shape, vessels + lesions):
                lesions.append(shape)
                break
    return lesions


def _fits_liver(anatomy: Anatomy, shape: dict, neighbours: list[dict]) -> bool:
    margin = anatomy.voxel
    return inside_liver(anatomy, surface_points(shape), INNER_MARGIN * margin) and all(
        _apart(shape, other, margin) for other in neighbours
    )


def _lesion_shape(
    rng: np.random.Generator, anatomy: Anatomy, diameter: float, region: int
) -> dict | None:
    """A slightly elongated disc/ellipsoid at a random point of the liver."""
    aspect = rng.uniform(1.0, 1.3)
    angle = float(rng.uniform(0, np.pi))
    t = float(rng.uniform(-0.6, 0.6)) if anatomy.dim == 3 else None
    z = None if t is None else t * anatomy.frame["height_m"] / 2
    polygon = liver_section(anatomy.frame, z)
    low, high = polygon.min(axis=0), polygon.max(axis=0)
    centre = rng.uniform(low, high)
    if not polygon_contains(polygon, centre[None])[0]:
        return None
    semi = [diameter / 2 * aspect, diameter / 2]
    if anatomy.dim == 2:
        return {
            "type": "ellipse",
            "region": region,
            "centre_m": centre.tolist(),
            "semi_axes_m": semi,
            "angle_rad": angle,
        }
    axis = rng.normal(size=3)
    return {
        "type": "ellipsoid",
        "region": region,
        "centre_m": [*centre.tolist(), float(z)],
        "semi_axes_m": [*semi, diameter / 2],
        "rotation": {"axis": (axis / np.linalg.norm(axis)).tolist(), "angle_rad": angle},
    }


# ---------------------------------------------------------------- spacing between structures


def _apart(a: dict, b: dict, margin: float) -> bool:
    """Two vessels/lesions at least ``margin`` apart."""
    if a["type"] == b["type"] == "cylinder":
        distance = segments_distance(a["start_m"], a["end_m"], b["start_m"], b["end_m"])
        return distance >= a["radius_m"] + b["radius_m"] + margin
    pa, pb = surface_points(a), surface_points(b)
    if a["type"] == "ellipse" and b["type"] == "ellipse":
        crossing = polygon_contains(pa, pb[:1]).any() or polygon_contains(pb, pa[:1]).any()
        gap = np.min(np.linalg.norm(pa[:, None] - pb[None], axis=2))
        return not crossing and gap >= margin
    return _bounding_apart(a, b, margin)


def _bounding_apart(a: dict, b: dict, margin: float) -> bool:
    """Conservative test for 3D pairs: bounding spheres, or sphere against a tube axis."""
    if a["type"] == "cylinder":
        a, b = b, a
    centre, reach = np.asarray(a["centre_m"]), max(a["semi_axes_m"])
    if b["type"] == "cylinder":
        distance = segments_distance(centre, centre, b["start_m"], b["end_m"], samples=2)
        return distance >= reach + b["radius_m"] + margin
    return (
        np.linalg.norm(centre - np.asarray(b["centre_m"])) >= reach + max(b["semi_axes_m"]) + margin
    )
