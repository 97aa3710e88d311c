"""gmsh meshing of phantom outlines, deterministic: fixed random seed, one thread, ASCII MSH 4.1.

Region tags become physical surface groups (cell tags); the driver arc and the absorbing rest of
the boundary become physical curve groups (facet tags, see ``spec.DRIVER_TAG``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from dime_pipeline.phantoms.spec import ABSORBING_TAG, DRIVER_TAG, PhantomSpec

log = logging.getLogger(__name__)
OUTLINE_POINTS = 96  # spline control points around the whole outline


def outline_radius(geometry: dict, theta: np.ndarray) -> np.ndarray:
    """r(θ) of a star-shaped outline description (see ``homogeneous._draw_outline``)."""
    radius = np.full_like(theta, geometry["radius_m"], dtype=float)
    for mode, amplitude, phase in zip(
        geometry["modes"], geometry["amplitudes"], geometry["phases_rad"], strict=True
    ):
        radius += geometry["radius_m"] * amplitude * np.cos(mode * theta + phase)
    return radius


def outline_contains(geometry: dict, points: np.ndarray) -> np.ndarray:
    """True for (N, 2+) points strictly inside the outline."""
    dx = points[:, 0] - geometry["centre_m"][0]
    dy = points[:, 1] - geometry["centre_m"][1]
    return np.hypot(dx, dy) < outline_radius(geometry, np.arctan2(dy, dx))


def mesh_phantom(spec: PhantomSpec, msh_path: Path) -> dict[str, int]:
    """Mesh the outline of ``spec`` with gmsh and write ``msh_path``; returns mesh counts."""
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.option.setNumber("Mesh.RandomSeed", 1)
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.Binary", 0)
        gmsh.option.setNumber("Mesh.MeshSizeMax", spec.mesh_size_m)
        gmsh.option.setNumber("Mesh.MeshSizeMin", 0.5 * spec.mesh_size_m)
        gmsh.model.add(f"{spec.family}-{spec.seed}")
        _build_outline(spec)
        gmsh.model.mesh.generate(2)
        counts = {
            "nodes": len(gmsh.model.mesh.getNodes()[0]),
            "triangles": len(gmsh.model.mesh.getElementsByType(2)[0]),
        }
        gmsh.write(str(msh_path))
    finally:
        gmsh.finalize()
    log.info("meshed %s: %d nodes, %d triangles", msh_path, counts["nodes"], counts["triangles"])
    return counts


def _build_outline(spec: PhantomSpec) -> None:
    """Two splines (driver arc, rest) closing one surface, with physical groups."""
    import gmsh

    geo = gmsh.model.geo
    start, arc = spec.driver.start_angle_rad, spec.driver.arc_rad
    n_driver = max(4, round(OUTLINE_POINTS * arc / (2 * np.pi)))
    n_rest = OUTLINE_POINTS - n_driver
    driver_theta = start + np.linspace(0.0, arc, n_driver + 1)
    rest_theta = start + arc + np.linspace(0.0, 2 * np.pi - arc, n_rest + 1)[1:-1]
    theta = np.concatenate([driver_theta, rest_theta])
    radius = outline_radius(spec.geometry, theta)
    cx, cy = spec.geometry["centre_m"]
    points = [
        geo.addPoint(cx + r * np.cos(t), cy + r * np.sin(t), 0.0)
        for r, t in zip(radius, theta, strict=True)
    ]
    driver_curve = geo.addSpline(points[: n_driver + 1])
    rest_curve = geo.addSpline([*points[n_driver:], points[0]])
    loop = geo.addCurveLoop([driver_curve, rest_curve])
    surface = geo.addPlaneSurface([loop])
    geo.synchronize()
    region = spec.regions[0]
    gmsh.model.addPhysicalGroup(2, [surface], tag=region.tag, name=region.name)
    gmsh.model.addPhysicalGroup(1, [driver_curve], tag=DRIVER_TAG, name="driver")
    gmsh.model.addPhysicalGroup(1, [rest_curve], tag=ABSORBING_TAG, name="absorbing")
