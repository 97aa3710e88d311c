"""Phantom shapes as point sets: outlines, polygons, ellipsoids, lofts and cylinders sampled,
measured and tested for containment and distance with numpy (scipy's splines, matplotlib's
point-in-polygon), never gmsh. The generators place and check shapes with these functions and
previews draw them, while ``meshing`` turns the same shape descriptions (the dicts of
``geometry["shapes"]``, SI units) into gmsh entities; kept apart so that drawing a phantom, and
its tests, need no gmsh.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.path import Path as PolygonPath
from scipy.interpolate import CubicSpline

OUTLINE_POINTS = 96  # spline points around a whole outer outline


# ---------------------------------------------------------------- 2D shapes as point sets


def outline_radius(geometry: dict, theta: np.ndarray) -> np.ndarray:
    """r(θ) of a star-shaped outline r = R (1 + Σ a_m cos(mθ + φ_m)), or of a superellipse
    |x/A|^p + |y/B|^p = 1 times (1 + Σ a_m cos(mθ + φ_m))."""
    theta = np.asarray(theta, dtype=float)
    modes = zip(
        geometry.get("modes", []),
        geometry.get("amplitudes", []),
        geometry.get("phases_rad", []),
        strict=True,
    )
    if geometry.get("type") == "superellipse":
        (a, b), p = geometry["semi_axes_m"], geometry["exponent"]
        factor = np.ones_like(theta)
        for mode, amplitude, phase in modes:
            factor += amplitude * np.cos(mode * theta + phase)
        return factor * (np.abs(np.cos(theta) / a) ** p + np.abs(np.sin(theta) / b) ** p) ** (
            -1 / p
        )
    # Summed term by term, as in the first release: homogeneous meshes stay byte-identical.
    radius = np.full_like(theta, geometry["radius_m"], dtype=float)
    for mode, amplitude, phase in modes:
        radius += geometry["radius_m"] * amplitude * np.cos(mode * theta + phase)
    return radius


def outline_contains(geometry: dict, points: np.ndarray) -> np.ndarray:
    """True for (N, 2+) points strictly inside a radial outline (star or superellipse)."""
    dx = points[:, 0] - geometry["centre_m"][0]
    dy = points[:, 1] - geometry["centre_m"][1]
    return np.hypot(dx, dy) < outline_radius(geometry, np.arctan2(dy, dx))


def radial_points(shape: dict, theta: np.ndarray) -> np.ndarray:
    """Points of a radial outline at polar angles ``theta`` about its centre."""
    radius = outline_radius(shape, theta)
    cx, cy = shape["centre_m"][:2]
    return np.column_stack([cx + radius * np.cos(theta), cy + radius * np.sin(theta)])


def closed_spline(points: np.ndarray, n: int) -> np.ndarray:
    """n points of the periodic cubic spline through ``points`` (chord-length parameter)."""
    points = np.asarray(points, dtype=float)
    closed = np.vstack([points, points[:1]])
    t = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(closed, axis=0), axis=1))])
    spline = CubicSpline(t, closed, bc_type="periodic")
    return spline(np.linspace(0.0, t[-1], n, endpoint=False))


def ellipse_points(centre: Any, semi_axes: Any, angle: float, n: int) -> np.ndarray:
    theta = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    local = np.column_stack([semi_axes[0] * np.cos(theta), semi_axes[1] * np.sin(theta)])
    c, s = np.cos(angle), np.sin(angle)
    return local @ np.array([[c, s], [-s, c]]) + np.asarray(centre[:2])


def outline_points(shape: dict, n: int = 256) -> np.ndarray:
    """A closed polygon (n, 2), anticlockwise, tracing a 2D shape."""
    kind = shape["type"]
    if kind in ("star", "superellipse"):
        return radial_points(shape, np.linspace(0.0, 2 * np.pi, n, endpoint=False))
    if kind == "ellipse":
        return ellipse_points(shape["centre_m"], shape["semi_axes_m"], shape["angle_rad"], n)
    if kind == "spline":
        return closed_spline(np.asarray(shape["points_m"]), n)
    raise ValueError(f"not a 2D shape: {kind!r}")


def polygon_contains(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    return PolygonPath(polygon).contains_points(np.asarray(points)[:, :2])


def polygon_distance(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance of each (N, 2+) point to the edges of a closed polygon."""
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    p = np.asarray(points)[:, None, :2]
    edge = b - a
    t = np.clip(np.sum((p - a) * edge, axis=2) / np.sum(edge * edge, axis=1), 0.0, 1.0)
    nearest = a + t[..., None] * edge
    return np.min(np.linalg.norm(p - nearest, axis=2), axis=1)


def polygon_area(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return float(0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def inside_with_margin(polygon: np.ndarray, points: np.ndarray, margin: float) -> bool:
    """All points inside ``polygon`` and at least ``margin`` from its edges."""
    return bool(
        np.all(polygon_contains(polygon, points))
        and np.min(polygon_distance(polygon, points)) >= margin
    )


# ---------------------------------------------------------------- 3D shapes as point sets


def rotation_matrix(axis: Any, angle: float) -> np.ndarray:
    """Rodrigues rotation by ``angle`` about unit ``axis``."""
    x, y, z = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
    k = np.array([[0, -z, y], [z, 0, -x], [-y, x, 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def sphere_directions(n: int) -> np.ndarray:
    """n nearly uniform unit vectors (Fibonacci sphere)."""
    k = np.arange(n) + 0.5
    polar = np.arccos(1 - 2 * k / n)
    azimuth = np.pi * (1 + 5**0.5) * k
    return np.column_stack(
        [np.sin(polar) * np.cos(azimuth), np.sin(polar) * np.sin(azimuth), np.cos(polar)]
    )


def ellipsoid_points(shape: dict, n: int = 200) -> np.ndarray:
    rotation = shape.get("rotation", {"axis": [0.0, 0.0, 1.0], "angle_rad": 0.0})
    local = sphere_directions(n) * np.asarray(shape["semi_axes_m"])
    matrix = rotation_matrix(rotation["axis"], rotation["angle_rad"])
    return local @ matrix.T + np.asarray(shape["centre_m"])


def ellipsoid_level(shape: dict, points: np.ndarray) -> np.ndarray:
    """sqrt(Σ (x'_i / a_i)²) in the ellipsoid's frame: < 1 inside."""
    rotation = shape.get("rotation", {"axis": [0.0, 0.0, 1.0], "angle_rad": 0.0})
    matrix = rotation_matrix(rotation["axis"], rotation["angle_rad"])
    local = (np.asarray(points) - np.asarray(shape["centre_m"])) @ matrix
    return np.linalg.norm(local / np.asarray(shape["semi_axes_m"]), axis=1)


def loft_section(shape: dict, z: float, n: int = 128) -> np.ndarray | None:
    """The cross-section polygon of a loft at height ``z`` (control points interpolated
    linearly between the neighbouring sections; None outside the loft)."""
    heights = np.array([s["z_m"] for s in shape["sections"]])
    if not heights[0] <= z <= heights[-1]:
        return None
    k = int(np.clip(np.searchsorted(heights, z) - 1, 0, len(heights) - 2))
    w = (z - heights[k]) / (heights[k + 1] - heights[k])
    lower = np.asarray(shape["sections"][k]["points_m"])
    upper = np.asarray(shape["sections"][k + 1]["points_m"])
    return closed_spline((1 - w) * lower + w * upper, n)


def segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of (N, 3) points to the segment ab."""
    ab = b - a
    t = np.clip((p - a) @ ab / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def segments_distance(a0: Any, a1: Any, b0: Any, b1: Any, samples: int = 32) -> float:
    """Approximate distance between segments a0a1 and b0b1 (sampled on the first)."""
    a0, a1, b0, b1 = (np.asarray(v, dtype=float) for v in (a0, a1, b0, b1))
    t = np.linspace(0.0, 1.0, samples)[:, None]
    return float(np.min(segment_distance(a0 + t * (a1 - a0), b0, b1)))


# ---------------------------------------------------------------- boundary samples


def cylinder_points(shape: dict, rings: int = 10, around: int = 12) -> np.ndarray:
    """Points on the mantle of a ``cylinder`` shape (``rings`` circles of ``around`` points)."""
    start, end = np.asarray(shape["start_m"]), np.asarray(shape["end_m"])
    axis = (end - start) / np.linalg.norm(end - start)
    e1 = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    phi = np.linspace(0, 2 * np.pi, around, endpoint=False)
    ring = shape["radius_m"] * (np.outer(np.cos(phi), e1) + np.outer(np.sin(phi), e2))
    centres = start + np.linspace(0, 1, rings)[:, None] * (end - start)
    return (centres[:, None, :] + ring[None]).reshape(-1, 3)


def surface_points(
    shape: dict, outline: int = 64, ellipsoid: int = 120, section: int = 64
) -> np.ndarray:
    """Points on the boundary of any shape description, for containment and spacing checks;
    the counts set the sampling density per kind of shape."""
    if shape["type"] == "ellipsoid":
        return ellipsoid_points(shape, ellipsoid)
    if shape["type"] == "cylinder":
        return cylinder_points(shape)
    if shape["type"] == "loft":
        rings = [
            np.column_stack(
                [outline_points({"type": "spline", **s}, section), np.full(section, s["z_m"])]
            )
            for s in shape["sections"]
        ]
        return np.vstack(rings)
    return outline_points(shape, outline)


# ---------------------------------------------------------------- outline splines


def in_arc(theta: float | np.ndarray, start: float, arc: float) -> np.ndarray:
    """Whether polar angle(s) ``theta`` lie on the arc [start, start + arc] (mod 2π)."""
    return np.mod(np.asarray(theta) - start, 2 * np.pi) < arc


def segment_angles(breaks: list[float]) -> list[np.ndarray]:
    """The outline cut at the polar angles ``breaks`` (at least two): for each segment, from
    one break to the next anticlockwise, the angles of its spline points, both ends included
    (a segment's last point is the next one's first). ``OUTLINE_POINTS`` intervals in all, at
    least 4 per segment."""
    ordered = np.sort(np.mod(np.asarray(breaks, dtype=float), 2 * np.pi))
    lengths = np.diff(np.append(ordered, ordered[0] + 2 * np.pi))
    return [
        start + np.linspace(0.0, length, max(4, round(OUTLINE_POINTS * length / (2 * np.pi))) + 1)
        for start, length in zip(ordered, lengths, strict=True)
    ]


def outline_point_normal(outline: dict, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Point of a radial outline at polar angle ``theta`` and its outward unit normal."""
    step = 1e-4
    before, point, after = radial_points(outline, np.array([theta - step, theta, theta + step]))
    tangent = (after - before) / np.linalg.norm(after - before)
    return point, np.array([tangent[1], -tangent[0]])  # anticlockwise outline: normal to the right


def split_angles(start: float, arc: float) -> tuple[np.ndarray, int]:
    """Polar angles of an outline's spline points, the driver arc [start, start + arc] first
    (its n_driver + 1 points), then the rest; ``OUTLINE_POINTS`` in all."""
    n_driver = max(4, round(OUTLINE_POINTS * arc / (2 * np.pi)))
    n_rest = OUTLINE_POINTS - n_driver
    driver_theta = start + np.linspace(0.0, arc, n_driver + 1)
    rest_theta = start + arc + np.linspace(0.0, 2 * np.pi - arc, n_rest + 1)[1:-1]
    return np.concatenate([driver_theta, rest_theta]), n_driver
