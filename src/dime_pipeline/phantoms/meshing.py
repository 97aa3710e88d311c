"""Phantom shapes and their gmsh meshes, deterministic: fixed random seed, one thread, MSH 4.1.

Two builders:

* the homogeneous 2D family keeps its original built-in-kernel outline (two splines: the driver
  arc and the rest), so its meshes stay byte-identical to earlier releases;
* every other phantom lists primitive ``shapes`` in ``geometry["shapes"]`` (painter's order: a
  later shape overrides an earlier one where they overlap), built with OpenCASCADE and
  ``fragment``-ed together so the mesh conforms to every interface.

Shapes (SI units; 2D: "star", "superellipse", "ellipse", "spline"; 3D: "ellipsoid", "prism",
"loft", "cylinder") each carry the ``region`` tag of the cells they own. Regions become physical
groups of dimension ``dim``; the outer boundary becomes physical groups of dimension ``dim - 1``
(``spec.DRIVER_TAG``, ``ABSORBING_TAG``, ``FREE_TAG``). Interfaces are not tagged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.path import Path as PolygonPath
from scipy.interpolate import CubicSpline

from dime_pipeline.phantoms.spec import (
    ABSORBING_TAG,
    DRIVER_TAG,
    FREE_TAG,
    PhantomSpec,
)

log = logging.getLogger(__name__)
OUTLINE_POINTS = 96  # spline points around a whole outer outline
BOUNDARY_KINDS = {"absorbing": ABSORBING_TAG, "free": FREE_TAG}


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


# ---------------------------------------------------------------- gmsh


@contextmanager
def gmsh_session(name: str) -> Iterator[Any]:
    """An initialised, deterministic gmsh (finalised on exit)."""
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.option.setNumber("Mesh.RandomSeed", 1)
        gmsh.option.setNumber("Mesh.MshFileVersion", 4.1)
        gmsh.option.setNumber("Mesh.Binary", 0)
        gmsh.model.add(name)
        yield gmsh
    finally:
        gmsh.finalize()


def mesh_phantom(spec: PhantomSpec, msh_path: Path) -> dict[str, int]:
    """Mesh ``spec`` with gmsh and write ``msh_path``; returns mesh counts."""
    with gmsh_session(f"{spec.family}-{spec.seed}") as gmsh:
        gmsh.option.setNumber("Mesh.MeshSizeMax", spec.mesh_size_m)
        if "shapes" in spec.geometry:
            _build_occ(spec)
        else:
            gmsh.option.setNumber("Mesh.MeshSizeMin", 0.5 * spec.mesh_size_m)
            _build_outline(spec)
        gmsh.model.mesh.generate(spec.dim)
        _check_cells(spec.dim)
        cell_type = 2 if spec.dim == 2 else 4
        counts = {
            "nodes": len(gmsh.model.mesh.getNodes()[0]),
            "cells": len(gmsh.model.mesh.getElementsByType(cell_type)[0]),
        }
        gmsh.write(str(msh_path))
    log.info("meshed %s: %d nodes, %d cells", msh_path, counts["nodes"], counts["cells"])
    return counts


def _check_cells(dim: int) -> None:
    """gmsh can leave an entity unmeshed with only a warning: fail instead of writing it."""
    import gmsh

    for _, tag in gmsh.model.getPhysicalGroups(dim):
        for entity in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
            if not any(len(cells) for cells in gmsh.model.mesh.getElements(dim, entity)[1]):
                raise RuntimeError(f"gmsh left entity {entity} of region {tag} without cells")


def _build_outline(spec: PhantomSpec) -> None:
    """Homogeneous 2D: two splines (driver arc, rest) closing one surface, with groups."""
    import gmsh

    geo = gmsh.model.geo
    theta, n_driver = split_angles(spec.driver.start_angle_rad, spec.driver.arc_rad)
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


def split_angles(start: float, arc: float) -> tuple[np.ndarray, int]:
    """Polar angles of an outline's spline points, the driver arc [start, start + arc] first
    (its n_driver + 1 points), then the rest; ``OUTLINE_POINTS`` in all."""
    n_driver = max(4, round(OUTLINE_POINTS * arc / (2 * np.pi)))
    n_rest = OUTLINE_POINTS - n_driver
    driver_theta = start + np.linspace(0.0, arc, n_driver + 1)
    rest_theta = start + arc + np.linspace(0.0, 2 * np.pi - arc, n_rest + 1)[1:-1]
    return np.concatenate([driver_theta, rest_theta]), n_driver


def _build_occ(spec: PhantomSpec) -> None:
    """OpenCASCADE shapes fragmented together; groups for regions and the outer boundary."""
    import gmsh

    occ, dim = gmsh.model.occ, spec.dim
    if dim == 3:  # frontal-Delaunay leaves some dilated spheres (ellipsoids) unmeshed
        gmsh.option.setNumber("Mesh.Algorithm", 5)
    shapes = spec.geometry["shapes"]
    entities = [(dim, _add_shape(occ, shape, spec, first=i == 0)) for i, shape in enumerate(shapes)]
    helpers = [(3, _add_driver_cylinder(occ, spec))] if dim == 3 else []
    tools = entities[1:] + helpers
    children = occ.fragment(entities[:1], tools)[1] if tools else [entities[:1]]
    owner, from_helper = _owners(children, len(shapes), dim)
    occ.remove([(dim, p) for p, i in owner.items() if i == -1], recursive=True)
    occ.synchronize()
    by_region: dict[int, list[int]] = {}
    for piece, index in sorted(owner.items()):
        if index >= 0:
            by_region.setdefault(shapes[index]["region"], []).append(piece)
    names = {region.tag: region.name for region in spec.regions}
    for tag, pieces in sorted(by_region.items()):
        gmsh.model.addPhysicalGroup(dim, pieces, tag=tag, name=names[tag])
    _tag_boundary(spec, {p for p in from_helper if owner[p] >= 0})
    _refine(spec, by_region)


def _owners(
    children: list[list[tuple[int, int]]], n_shapes: int, dim: int
) -> tuple[dict[int, int], set[int]]:
    """Painter's rule over fragment pieces: each piece belongs to the last shape covering it
    (-1 when only helpers cover it); also the pieces that came from a helper."""
    owner: dict[int, int] = {}
    from_helper: set[int] = set()
    for index, pieces in enumerate(children):
        shape_index = index if index < n_shapes else -1
        for piece_dim, piece in pieces:
            if piece_dim != dim:
                continue
            owner[piece] = max(owner.get(piece, -1), shape_index)
            if shape_index == -1:
                from_helper.add(piece)
    return owner, from_helper


def _add_shape(occ: Any, shape: dict, spec: PhantomSpec, first: bool) -> int:
    kind = shape["type"]
    if kind in ("star", "superellipse", "ellipse", "spline"):
        split = (spec.driver.start_angle_rad, spec.driver.arc_rad) if first else None
        return _add_curve_surface(occ, shape, split)
    if kind == "ellipsoid":
        return _add_ellipsoid(occ, shape)
    if kind == "cylinder":
        start, end = np.asarray(shape["start_m"]), np.asarray(shape["end_m"])
        return occ.addCylinder(*start, *(end - start), shape["radius_m"])
    if kind == "prism":
        z0, z1 = shape["z_m"]
        surface = _add_curve_surface(occ, shape["outline"], None, z=z0)
        extruded = occ.extrude([(2, surface)], 0.0, 0.0, z1 - z0)
        return next(tag for d, tag in extruded if d == 3)
    if kind == "loft":
        wires = [
            occ.addWire([_closed_spline_curve(occ, np.asarray(s["points_m"]), s["z_m"])])
            for s in shape["sections"]
        ]
        return occ.addThruSections(wires, makeSolid=True, makeRuled=False)[0][1]
    raise ValueError(f"unknown shape type {kind!r}")


def _closed_spline_curve(occ: Any, control: np.ndarray, z: float) -> int:
    """OCC's periodic C2 spline through the control points; it follows ``closed_spline`` (the
    point-set model the generators check against) to about 1 % of a voxel, and passing the few
    control points rather than a dense sampling keeps booleans with lofts fast."""
    points = [occ.addPoint(x, y, z) for x, y in control]
    return occ.addSpline([*points, points[0]])


def _add_curve_surface(
    occ: Any, shape: dict, split: tuple[float, float] | None, z: float = 0.0
) -> int:
    """A plane surface bounded by ``shape``; a radial outline with ``split`` = (start, arc)
    is made of two splines, the driver arc and the rest, like the homogeneous outline."""
    kind = shape["type"]
    if kind == "ellipse":
        (a, b), angle = shape["semi_axes_m"], shape["angle_rad"]
        if a < b:  # OCC wants the major axis first
            a, b, angle = b, a, angle + np.pi / 2
        disk = occ.addDisk(*shape["centre_m"][:2], z, a, b)
        occ.rotate([(2, disk)], *shape["centre_m"][:2], z, 0, 0, 1, angle)
        return disk
    if kind == "spline":
        curves = [_closed_spline_curve(occ, np.asarray(shape["points_m"]), z)]
    elif split is None:
        theta = np.linspace(0.0, 2 * np.pi, OUTLINE_POINTS, endpoint=False)
        points = [occ.addPoint(x, y, z) for x, y in radial_points(shape, theta)]
        curves = [occ.addSpline([*points, points[0]])]
    else:
        theta, n_driver = split_angles(*split)
        points = [occ.addPoint(x, y, z) for x, y in radial_points(shape, theta)]
        curves = [
            occ.addSpline(points[: n_driver + 1]),
            occ.addSpline([*points[n_driver:], points[0]]),
        ]
    return occ.addPlaneSurface([occ.addCurveLoop(curves)])


def _add_ellipsoid(occ: Any, shape: dict) -> int:
    sphere = occ.addSphere(0.0, 0.0, 0.0, 1.0)
    occ.dilate([(3, sphere)], 0.0, 0.0, 0.0, *shape["semi_axes_m"])
    rotation = shape.get("rotation")
    if rotation is not None and rotation["angle_rad"] != 0.0:
        occ.rotate([(3, sphere)], 0.0, 0.0, 0.0, *rotation["axis"], rotation["angle_rad"])
    occ.translate([(3, sphere)], *shape["centre_m"])
    return sphere


def _add_driver_cylinder(occ: Any, spec: PhantomSpec) -> int:
    """A cylinder through the driver patch: fragmenting cuts the patch out of the surface."""
    driver = spec.driver
    centre, axis = np.asarray(driver.centre_m), np.asarray(driver.axis)
    outside = max(driver.radius_m, driver.depth_m)  # reach well beyond the curved surface
    base = centre + outside * axis
    return occ.addCylinder(*base, *(-(outside + driver.depth_m) * axis), driver.radius_m)


def _outer_facets(dim: int) -> list[int]:
    """Facets bounding exactly one cell entity: the outer boundary."""
    import gmsh

    count: dict[int, int] = {}
    for entity in gmsh.model.getEntities(dim):
        for _, facet in gmsh.model.getBoundary([entity], combined=False, oriented=False):
            count[abs(facet)] = count.get(abs(facet), 0) + 1
    return sorted(f for f, c in count.items() if c == 1)


def _tag_boundary(spec: PhantomSpec, driver_pieces: set[int]) -> None:
    """Driver, absorbing and free facet groups (the kinds listed in ``spec.boundary_tags``)."""
    import gmsh

    dim = spec.dim
    groups: dict[int, list[int]] = {}
    rest = BOUNDARY_KINDS[spec.geometry["boundary"]["rest"]]
    caps = spec.geometry["boundary"].get("caps_z_m")
    driver_facets = set()
    for piece in driver_pieces:
        driver_facets |= {abs(f) for _, f in gmsh.model.getBoundary([(dim, piece)], oriented=False)}
    for facet in _outer_facets(dim):
        is_driver = _on_driver_arc(spec, facet) if dim == 2 else facet in driver_facets
        if is_driver:
            groups.setdefault(DRIVER_TAG, []).append(facet)
        elif caps is not None and _is_cap(facet, caps, 1e-3 * spec.mesh_size_m):
            groups.setdefault(ABSORBING_TAG, []).append(facet)
        else:
            groups.setdefault(rest, []).append(facet)
    names = {tag: name for name, tag in spec.boundary_tags.items()}
    if set(groups) != set(names):
        raise RuntimeError(f"boundary groups {sorted(groups)} differ from the spec's {names}")
    for tag, facets in sorted(groups.items()):
        gmsh.model.addPhysicalGroup(dim - 1, facets, tag=tag, name=names[tag])


def _on_driver_arc(spec: PhantomSpec, curve: int) -> bool:
    import gmsh

    low, high = gmsh.model.getParametrizationBounds(1, curve)
    x, y, _ = gmsh.model.getValue(1, curve, [0.5 * (low[0] + high[0])])
    cx, cy = spec.geometry["centre_m"][:2]
    angle = np.mod(np.arctan2(y - cy, x - cx) - spec.driver.start_angle_rad, 2 * np.pi)
    return bool(angle < spec.driver.arc_rad)


def _is_cap(facet: int, caps: list[float], tolerance: float) -> bool:
    """A flat face lying in one of the planes z = caps (OCC boxes carry a small tolerance)."""
    import gmsh

    box = gmsh.model.getBoundingBox(2, facet)
    flat = box[5] - box[2] < tolerance
    return flat and any(abs(box[2] - z) < tolerance for z in caps)


def _refine(spec: PhantomSpec, by_region: dict[int, list[int]]) -> None:
    """Smaller elements inside small features (``geometry["refine"]``: region tag -> size)."""
    import gmsh

    refine = {int(k): v for k, v in spec.geometry.get("refine", {}).items()}
    fields = []
    for tag, size in sorted(refine.items()):
        if tag not in by_region or size >= spec.mesh_size_m:
            continue
        field = gmsh.model.mesh.field.add("Constant")
        key = "SurfacesList" if spec.dim == 2 else "VolumesList"
        gmsh.model.mesh.field.setNumbers(field, key, by_region[tag])
        gmsh.model.mesh.field.setNumber(field, "VIn", size)
        gmsh.model.mesh.field.setNumber(field, "VOut", spec.mesh_size_m)
        gmsh.model.mesh.field.setNumber(field, "IncludeBoundary", 1)
        fields.append(field)
    if fields:
        smallest = gmsh.model.mesh.field.add("Min")
        gmsh.model.mesh.field.setNumbers(smallest, "FieldsList", fields)
        gmsh.model.mesh.field.setAsBackgroundMesh(smallest)


# ---------------------------------------------------------------- reading meshes back


def locate_labels(msh_path: Path, points: np.ndarray, dim: int) -> np.ndarray:
    """Region tag of the mesh cell holding each (N, 3) point; 0 outside the mesh."""
    with gmsh_session("locate") as gmsh:
        gmsh.open(str(msh_path))
        region_of: dict[int, int] = {}
        for _, tag in gmsh.model.getPhysicalGroups(dim):
            for entity in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
                for cells in gmsh.model.mesh.getElements(dim, entity)[1]:
                    region_of.update(dict.fromkeys(cells.tolist(), tag))
        labels = np.zeros(len(points), dtype=np.int32)
        for n, (x, y, z) in enumerate(np.asarray(points, dtype=float)):
            try:
                cell = gmsh.model.mesh.getElementByCoordinates(x, y, z, dim, True)[0]
            except Exception:  # gmsh raises when no cell holds the point
                continue
            labels[n] = region_of.get(cell, 0)
    return labels


def region_measures(msh_path: Path, dim: int) -> dict[int, float]:
    """Area (2D) or volume (3D) of every region's cells, in m² or m³."""
    with gmsh_session("measure") as gmsh:
        gmsh.open(str(msh_path))
        tags, coords, _ = gmsh.model.mesh.getNodes()
        xyz = np.zeros((int(tags.max()) + 1, 3))
        xyz[tags.astype(int)] = coords.reshape(-1, 3)
        measures = {}
        for _, tag in gmsh.model.getPhysicalGroups(dim):
            total = 0.0
            for entity in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
                _, _, nodes = gmsh.model.mesh.getElements(dim, entity)
                corners = xyz[nodes[0].astype(int).reshape(-1, dim + 1)]
                edges = corners[:, 1:] - corners[:, :1]
                if dim == 2:
                    a, b = edges[:, 0], edges[:, 1]
                    total += 0.5 * np.abs(a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]).sum()
                else:
                    total += np.abs(np.linalg.det(edges)).sum() / 6.0
            measures[tag] = float(total)
    return measures


def boundary_nodes(msh_path: Path, dim: int, tag: int) -> np.ndarray:
    """(N, 3) coordinates of the nodes of facet group ``tag``."""
    with gmsh_session("boundary") as gmsh:
        gmsh.open(str(msh_path))
        _, coords = gmsh.model.mesh.getNodesForPhysicalGroup(dim - 1, tag)
    return coords.reshape(-1, 3)


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
