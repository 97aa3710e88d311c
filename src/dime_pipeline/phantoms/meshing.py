"""gmsh work for phantoms: meshing a spec and reading meshes back (region labels at points,
region measures, boundary nodes). Every gmsh call of the package is here, gmsh imported where it
is used; the shape geometry the builders follow is plain numpy in ``geometry``. Meshing is
deterministic: fixed random seed, one thread, MSH 4.1.

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

from dime_pipeline.phantoms.geometry import (
    OUTLINE_POINTS,
    outline_radius,
    radial_points,
    segment_angles,
    split_angles,
)
from dime_pipeline.phantoms.spec import (
    ABSORBING_TAG,
    DRIVER_TAG,
    FREE_TAG,
    Driver,
    PhantomSpec,
)
from dime_pipeline.phantoms.waves import boundary_tag_at, free_patch_drivers, outline_breaks

log = logging.getLogger(__name__)
BOUNDARY_KINDS = {"absorbing": ABSORBING_TAG, "free": FREE_TAG}


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
    breaks = outline_breaks(spec)
    if breaks is not None:
        _build_segmented_outline(spec, breaks)
        return
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


def _build_segmented_outline(spec: PhantomSpec, breaks: list[float]) -> None:
    """Homogeneous 2D with several boundary pieces: a spline per piece between ``breaks``."""
    import gmsh

    geo = gmsh.model.geo
    segments = segment_angles(breaks)
    cx, cy = spec.geometry["centre_m"]
    starts = []
    for theta in segments:  # each piece's points but its last (the next piece's first)
        radius = outline_radius(spec.geometry, theta[:-1])
        starts.append(
            [
                geo.addPoint(cx + r * np.cos(t), cy + r * np.sin(t), 0.0)
                for r, t in zip(radius, theta[:-1], strict=True)
            ]
        )
    curves = [
        geo.addSpline([*points, starts[(i + 1) % len(starts)][0]])
        for i, points in enumerate(starts)
    ]
    surface = geo.addPlaneSurface([geo.addCurveLoop(curves)])
    geo.synchronize()
    region = spec.regions[0]
    gmsh.model.addPhysicalGroup(2, [surface], tag=region.tag, name=region.name)
    groups: dict[int, list[int]] = {}
    for curve, theta in zip(curves, segments, strict=True):
        tag = boundary_tag_at(spec, 0.5 * (theta[0] + theta[-1]))
        groups.setdefault(tag, []).append(curve)
    _add_boundary_groups(spec, groups)


def _add_boundary_groups(spec: PhantomSpec, groups: dict[int, list[int]]) -> None:
    """Facet physical groups, checked against the spec: every group is one the spec names, and
    every driver has facets."""
    import gmsh

    names = {tag: name for name, tag in spec.boundary_tags.items()}
    drivers = {spec.driver_tag(k) for k in range(len(spec.drivers))}
    if not set(groups) <= set(names) or not drivers <= set(groups):
        raise RuntimeError(f"boundary groups {sorted(groups)} differ from the spec's {names}")
    for tag, facets in sorted(groups.items()):
        gmsh.model.addPhysicalGroup(spec.dim - 1, facets, tag=tag, name=names[tag])


def _build_occ(spec: PhantomSpec) -> None:
    """OpenCASCADE shapes fragmented together; groups for regions and the outer boundary."""
    import gmsh

    occ, dim = gmsh.model.occ, spec.dim
    if dim == 3:  # frontal-Delaunay leaves some dilated spheres (ellipsoids) unmeshed
        gmsh.option.setNumber("Mesh.Algorithm", 5)
    shapes = spec.geometry["shapes"]
    entities = [(dim, _add_shape(occ, shape, spec, first=i == 0)) for i, shape in enumerate(shapes)]
    patches = _patches(spec) if dim == 3 else []
    helpers = [(3, _add_patch_cylinder(occ, patch)) for _, patch in patches]
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
    inside = {piece: helper for piece, helper in from_helper.items() if owner[piece] >= 0}
    _tag_boundary(spec, {piece: patches[helper][0] for piece, helper in inside.items()})
    _refine(spec, by_region)


def _patches(spec: PhantomSpec) -> list[tuple[int, Driver]]:
    """3D: the patches cut out of the outer surface, drivers first: (facet tag, placement)."""
    patches = [
        (spec.driver_tag(k), driver)
        for k, driver in enumerate(spec.drivers)
        if not driver.whole_outline
    ]
    free = free_patch_drivers(spec.geometry.get("boundary", {}))
    return patches + [(FREE_TAG, patch) for patch in free]


def _owners(
    children: list[list[tuple[int, int]]], n_shapes: int, dim: int
) -> tuple[dict[int, int], dict[int, int]]:
    """Painter's rule over fragment pieces: each piece belongs to the last shape covering it
    (-1 when only helpers cover it); also, for the pieces that came from a helper, the first
    helper's index (helpers do not overlap)."""
    owner: dict[int, int] = {}
    from_helper: dict[int, int] = {}
    for index, pieces in enumerate(children):
        shape_index = index if index < n_shapes else -1
        for piece_dim, piece in pieces:
            if piece_dim != dim:
                continue
            owner[piece] = max(owner.get(piece, -1), shape_index)
            if shape_index == -1:
                from_helper.setdefault(piece, index - n_shapes)
    return owner, from_helper


def _add_shape(occ: Any, shape: dict, spec: PhantomSpec, first: bool) -> int:
    kind = shape["type"]
    if kind in ("star", "superellipse", "ellipse", "spline"):
        if not first:
            return _add_curve_surface(occ, shape, None)
        breaks = outline_breaks(spec)
        if breaks is None:
            breaks = (spec.driver.start_angle_rad, spec.driver.arc_rad)
        return _add_curve_surface(occ, shape, breaks)
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
    occ: Any, shape: dict, split: tuple[float, float] | list[float] | None, z: float = 0.0
) -> int:
    """A plane surface bounded by ``shape``; a radial outline with ``split`` = (start, arc)
    is made of two splines, the driver arc and the rest, like the homogeneous outline; with
    ``split`` a list of break angles, of a spline between each two."""
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
    elif isinstance(split, tuple):
        theta, n_driver = split_angles(*split)
        points = [occ.addPoint(x, y, z) for x, y in radial_points(shape, theta)]
        curves = [
            occ.addSpline(points[: n_driver + 1]),
            occ.addSpline([*points[n_driver:], points[0]]),
        ]
    else:
        starts = [
            [occ.addPoint(x, y, z) for x, y in radial_points(shape, theta[:-1])]
            for theta in segment_angles(split)
        ]
        curves = [
            occ.addSpline([*points, starts[(i + 1) % len(starts)][0]])
            for i, points in enumerate(starts)
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


def _add_patch_cylinder(occ: Any, patch: Driver) -> int:
    """A cylinder through a patch of the surface: fragmenting cuts the patch out of it."""
    centre, axis = np.asarray(patch.centre_m), np.asarray(patch.axis)
    outside = max(patch.radius_m, patch.depth_m)  # reach well beyond the curved surface
    base = centre + outside * axis
    return occ.addCylinder(*base, *(-(outside + patch.depth_m) * axis), patch.radius_m)


def _outer_facets(dim: int) -> list[int]:
    """Facets bounding exactly one cell entity: the outer boundary."""
    import gmsh

    count: dict[int, int] = {}
    for entity in gmsh.model.getEntities(dim):
        for _, facet in gmsh.model.getBoundary([entity], combined=False, oriented=False):
            count[abs(facet)] = count.get(abs(facet), 0) + 1
    return sorted(f for f, c in count.items() if c == 1)


def _tag_boundary(spec: PhantomSpec, patch_pieces: dict[int, int]) -> None:
    """Driver, absorbing and free facet groups (the kinds listed in ``spec.boundary_tags``).
    2D: by the polar angle of each outer curve's midpoint; 3D: the facets of the pieces cut out
    by a patch's cylinder (``patch_pieces``: piece -> its patch's tag), the slab's caps, the
    rest (all of it a whole-outline driver's)."""
    import gmsh

    dim = spec.dim
    groups: dict[int, list[int]] = {}
    rest = BOUNDARY_KINDS[spec.geometry["boundary"]["rest"]]
    if spec.driver.whole_outline:
        rest = DRIVER_TAG
    caps = spec.geometry["boundary"].get("caps_z_m")
    patch_facets: dict[int, int] = {}
    for piece, tag in sorted(patch_pieces.items()):
        for _, facet in gmsh.model.getBoundary([(dim, piece)], oriented=False):
            patch_facets.setdefault(abs(facet), tag)
    for facet in _outer_facets(dim):
        if dim == 2:
            tag = boundary_tag_at(spec, _midpoint_angle(spec, facet))
        elif facet in patch_facets:
            tag = patch_facets[facet]
        elif caps is not None and _is_cap(facet, caps, 1e-3 * spec.mesh_size_m):
            tag = ABSORBING_TAG
        else:
            tag = rest
        groups.setdefault(tag, []).append(facet)
    _add_boundary_groups(spec, groups)


def _midpoint_angle(spec: PhantomSpec, curve: int) -> float:
    import gmsh

    low, high = gmsh.model.getParametrizationBounds(1, curve)
    x, y, _ = gmsh.model.getValue(1, curve, [0.5 * (low[0] + high[0])])
    cx, cy = spec.geometry["centre_m"][:2]
    return float(np.arctan2(y - cy, x - cx))


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
