"""Anatomy-informed liver phantoms (axial slice in 2D, a slab of the upper abdomen in 3D).

Coordinates follow the radiological display: x increases towards the patient's left (image
right), y towards anterior (up); z is cranio-caudal (+z superior). The model, from outside in:

* body: a superellipse outline of an adult abdomen (``liver.body``), the skin;
* fat: subcutaneous fat, the layer between the skin and an inner outline ``fat.thickness_mm``
  deeper; inside it, "body" stands for the body-wall muscle and other abdominal tissue;
* liver: a smooth closed spline through a 14-point template (right lobe on the patient's right,
  left lobe reaching across the midline anteriorly), jittered, stretched to the drawn width and
  depth, the left lobe's reach and thickness drawn separately; placed against the right and
  anterior inner wall, ``wall_gap_mm`` away (moved towards the body centre, then shrunk, if it
  would not fit). In 3D the liver is a loft through seven such sections whose size tapers
  towards the dome and the inferior tip, the left lobe fading inferiorly. Lobes are split at the
  falciform line (template u = 0.05): the anatomical right lobe holds about 75-85 %;
* vessels: portal and hepatic veins as soft, lossy tubes kept inside the liver (2D: hepatic
  veins cut across, portal branches running in-plane; 3D: cylinders along anatomical courses);
* optional spleen (a crescent along the posterolateral left wall; 3D: a loft of crescents) and
  focal lesions (slightly elongated discs/ellipsoids) inside the liver.

All lengths in ``liver.*_mm`` are adult anatomy; the phantom is that anatomy times one scale
s = fov_fill × min(FOV_x / body width, FOV_y / body depth), so the body fills ``fov_fill`` of
the field of view whatever the grid (s ≈ 0.21-0.29 for the default 64 × 1.5 mm grid, ≈ 1 for a
clinical 36 cm FOV). Wavelengths are not scaled: a small FOV holds fewer wavelengths. Floors in
voxels keep small features (fat, vessels, lesions) resolvable.

Region tags (fixed; absent regions are skipped): body 1, fat 2, liver 3, portal_vein 4,
hepatic_veins 5, spleen 6, lesion_k 6 + k. The liver's median |G*| comes from the fibrosis
stage (``liver.stage_modulus_kpa``), and a random field exp(σ g) (``heterogeneity_sigma``)
multiplies it. The driver is a patch on the anterior skin over the liver; the rest of the
skin is traction-free; in 3D the slab's top and bottom cuts are absorbing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from dime_pipeline.config import IntRange, PipelineConfig, Range, TissueConfig
from dime_pipeline.phantoms.fields import draw_modulus_field, realize
from dime_pipeline.phantoms.homogeneous import (
    make_grid,
    material_region,
    mesh_size,
    slab_half_height,
)
from dime_pipeline.phantoms.meshing import (
    closed_spline,
    inside_with_margin,
    outline_points,
    outline_radius,
    polygon_area,
    polygon_contains,
    polygon_distance,
    radial_points,
    segments_distance,
    surface_points,
)
from dime_pipeline.phantoms.spec import (
    ABSORBING_TAG,
    DRIVER_TAG,
    FREE_TAG,
    Driver,
    ModulusField,
    PhantomSpec,
    Region,
)
from dime_pipeline.seeding import generator

BODY, FAT, LIVER, PORTAL, HEPATIC, SPLEEN = 1, 2, 3, 4, 5, 6
FIRST_LESION_TAG = 7
STAGES = ("F0", "F1", "F2", "F3", "F4")

# Liver outline in its own frame: u from the right-lateral edge (-1) to the left-lobe tip (+1),
# v from posterior (-1) to anterior (+1); anticlockwise, starting at the lateral edge.
TEMPLATE = np.array(
    [
        (-1.00, 0.00),
        (-0.88, -0.50),
        (-0.60, -0.82),
        (-0.25, -0.85),
        (-0.08, -0.55),  # posteromedial notch: IVC and porta hepatis
        (0.05, -0.15),
        (0.40, 0.10),
        (0.80, 0.30),
        (1.00, 0.45),  # left-lobe tip
        (0.85, 0.62),
        (0.45, 0.78),
        (0.00, 0.92),
        (-0.45, 0.95),
        (-0.82, 0.62),
    ]
)
LOBE_SPLIT_U = 0.05  # the falciform line between right and left lobe, in the template frame
LEFT_LOBE_V = 0.45  # left-lobe thickness scales about this v
JITTER = 0.04  # template jitter, frame units
SECTION_T = np.linspace(-1.0, 1.0, 7)  # 3D: loft sections, inferior (-1) to superior (+1)
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
VESSEL_ELEMENTS = 3  # elements across a vessel's diameter
LESION_ELEMENTS = 4
FIT_STEPS = 12  # liver placement: moves towards the centre, then shrinks
TRIES = 8  # placement attempts before a structure is left out
LESION_TRIES = 30  # random positions per lesion size (then 10 % smaller, down to the floor)
INNER_MARGIN = 0.5  # voxels between a vessel or lesion and the liver surface (1 between them)
SPLEEN_ANGLES_DEG = (-70.0, -25.0)  # spleen centre: posterolateral left, from the body centre
SPLEEN_POINTS = 6  # crescent control points along each side


@dataclass
class Anatomy:
    """Scaled anatomy of one phantom (metres), built up as the random draws proceed."""

    dim: int
    voxel: float
    scale: float
    centre: np.ndarray  # body centre (x, y)
    outer: dict  # skin outline (superellipse)
    inner: dict  # fat's inner outline
    fat_thickness: float
    gap: float
    frame: dict  # liver frame: centre, width, depth, height, left lobe, jitter
    z_range: tuple[float, float] = (0.0, 0.0)  # 3D body slab
    sections: dict = field(default_factory=dict)  # liver polygons by height (placement cache)


def draw_liver(config: PipelineConfig, seed: int) -> PhantomSpec:
    """Draw every random choice of one liver phantom from its own stream."""
    rng = generator(seed)
    frequency = float(rng.uniform(config.frequency_hz.min, config.frequency_hz.max))
    anatomy = _draw_body_and_liver(config, rng)
    shapes = [
        _layer(anatomy, anatomy.outer, FAT),
        _layer(anatomy, anatomy.inner, BODY),
        _liver_shape(anatomy),
    ]
    vessels = _draw_vessels(config, rng, anatomy)
    spleen = _draw_spleen(config, rng, anatomy)
    lesions = _draw_lesions(config, rng, anatomy, vessels)
    shapes += vessels + ([spleen] if spleen else []) + lesions
    stage, regions = _draw_materials(config, rng, frequency, shapes)
    driver = _draw_driver(config, rng, anatomy)
    heterogeneity = _draw_field(config, rng, anatomy)
    softest = {LIVER: float(realize(heterogeneity).min())} if heterogeneity else {}
    size = mesh_size(config, regions, frequency, softest)
    z_centre = 0.0  # the liver is centred on z = 0; so is the slice stack
    return PhantomSpec(
        family="liver",
        seed=seed,
        dim=config.dim,
        frequency_hz=frequency,
        regions=tuple(regions),
        driver=driver,
        grid=make_grid(config, z_centre),
        mesh_size_m=size,
        geometry=_geometry(anatomy, shapes, stage, regions, size),
        config_hash=config.digest(),
        modulus_field=heterogeneity,
        boundary_tags=_boundary_tags(anatomy.dim),
    )


def _boundary_tags(dim: int) -> dict[str, int]:
    tags = {"driver": DRIVER_TAG, "free": FREE_TAG}
    return {**tags, "absorbing": ABSORBING_TAG} if dim == 3 else tags


# ---------------------------------------------------------------- body and liver


def _uniform(rng: np.random.Generator, bounds: Range, factor: float = 1.0) -> float:
    return float(factor * rng.uniform(bounds.min, bounds.max))


def _count(rng: np.random.Generator, bounds: IntRange, most: int) -> int:
    return min(int(rng.integers(bounds.min, bounds.max + 1)), most)


def _draw_body_and_liver(config: PipelineConfig, rng: np.random.Generator) -> Anatomy:
    settings, voxel = config.liver, config.grid.voxel_size_m
    fov_y, fov_x = config.grid.field_of_view_m
    width = _uniform(rng, settings.body.width_mm, 1e-3)
    depth = _uniform(rng, settings.body.depth_mm, 1e-3)
    scale = _uniform(rng, settings.body.fov_fill) * min(fov_x / width, fov_y / depth)
    exponent = _uniform(rng, settings.body.squareness)
    fat = max(_uniform(rng, settings.fat.thickness_mm, 1e-3 * scale), 2 * voxel)
    gap = max(_uniform(rng, settings.wall_gap_mm, 1e-3 * scale), voxel)
    centre = np.array([0.5 * fov_x, 0.5 * fov_y])
    half = np.array([0.5 * scale * width, 0.5 * scale * depth])
    outer = _superellipse(centre, half, exponent)
    inner = _superellipse(centre, half - fat, exponent)
    frame = _draw_frame(config, rng, scale, centre, half - fat - gap)
    anatomy = Anatomy(config.dim, voxel, scale, centre, outer, inner, fat, gap, frame)
    _fit_liver(anatomy)
    if config.dim == 3:
        margin = max(1e-3 * scale * settings.body.slab_margin_mm, 2 * voxel)
        reach = max(0.5 * anatomy.frame["height_m"] + margin, slab_half_height(config) + voxel)
        anatomy.z_range = (-reach, reach)
    return anatomy


def _draw_frame(
    config: PipelineConfig,
    rng: np.random.Generator,
    scale: float,
    centre: np.ndarray,
    room: np.ndarray,
) -> dict:
    """The liver frame, placed against the wall on the patient's right and anteriorly
    (``room``: half-axes of the space inside the wall gap)."""
    settings = config.liver
    width = _uniform(rng, settings.width_mm, 1e-3 * scale)
    depth = _uniform(rng, settings.depth_mm, 1e-3 * scale)
    return {
        "offset_m": [float(-room[0] + 0.5 * width), float(room[1] - 0.475 * depth)],
        "width_m": width,
        "depth_m": depth,
        "height_m": _uniform(rng, settings.height_mm, 1e-3 * scale),
        "left_extent": _uniform(rng, settings.left_lobe_extent),
        "left_thickness": _uniform(rng, settings.left_lobe_thickness),
        "jitter": rng.uniform(-JITTER, JITTER, TEMPLATE.shape).tolist(),
        "centre_m": centre.tolist(),
    }


def _superellipse(centre: np.ndarray, half: np.ndarray, exponent: float) -> dict:
    return {
        "type": "superellipse",
        "centre_m": [float(c) for c in centre],
        "semi_axes_m": [float(h) for h in half],
        "exponent": float(exponent),
    }


def _fit_liver(anatomy: Anatomy) -> None:
    """Keep every liver section ``gap`` radially inside the fat's inner outline: first move the
    liver towards the body centre, then (if that is not enough) shrink it about that centre."""
    frame = anatomy.frame
    frame["fit_ratio"] = 1.0
    for step in range(FIT_STEPS):
        ratio = _room_ratio(anatomy)
        if ratio >= 1.0:
            return
        frame["offset_m"] = [ratio * v for v in frame["offset_m"]]
        if step >= FIT_STEPS // 2:  # moving alone did not do: shrink too
            for key in ("width_m", "depth_m", "height_m"):
                frame[key] *= ratio
            frame["fit_ratio"] *= ratio


def _room_ratio(anatomy: Anatomy) -> float:
    """min over the liver's outline of (inner-wall radius - gap) / radius, about the body centre."""
    dense = np.vstack(
        [closed_spline(liver_control_points(anatomy.frame, t), 128) for t in _section_ts(anatomy)]
    )
    offset = dense - anatomy.centre
    radius = np.hypot(offset[:, 0], offset[:, 1])
    room = outline_radius(anatomy.inner, np.arctan2(offset[:, 1], offset[:, 0])) - anatomy.gap
    return float(np.min(room / radius))


def _section_ts(anatomy: Anatomy) -> list[float | None]:
    return [None] if anatomy.dim == 2 else [float(t) for t in SECTION_T]


def liver_control_points(frame: dict, t: float | None = None) -> np.ndarray:
    """The 14 spline control points (x, y) of the liver section at height t ∈ [-1, 1] (3D) or
    of the 2D slice (t None)."""
    u, v = (TEMPLATE + np.asarray(frame["jitter"])).T
    return _frame_to_xy(frame, u, v, t, left=TEMPLATE[:, 0] > 0.2)


def _frame_to_xy(
    frame: dict, u: np.ndarray, v: np.ndarray, t: float | None, left: np.ndarray
) -> np.ndarray:
    """Frame (u, v) to (x, y): left-lobe reach/thickness, the 3D taper, width and depth."""
    extent, taper = frame["left_extent"], 1.0
    if t is not None:
        taper = np.sqrt(1 - 0.8 * t * t)  # towards the dome (t = 1) and the inferior tip
        extent *= float(np.clip(0.8 + 0.5 * t, 0.25, 1.0))  # the left lobe fades inferiorly
    u = np.where(u > 0, u * extent, u)
    v = np.where(left, LEFT_LOBE_V + (v - LEFT_LOBE_V) * frame["left_thickness"], v)
    cx = frame["centre_m"][0] + frame["offset_m"][0]
    cy = frame["centre_m"][1] + frame["offset_m"][1]
    return np.column_stack(
        [cx + taper * u * frame["width_m"] / 2, cy + taper * v * frame["depth_m"] / 2]
    )


def liver_point(frame: dict, u: float, v: float, t: float | None) -> np.ndarray:
    """A point given in the liver frame: (x, y) in 2D, (x, y, z) in 3D."""
    xy = _frame_to_xy(frame, np.array([u]), np.array([v]), t, left=np.array([u > 0.2]))[0]
    if t is None:
        return xy
    return np.array([*xy, t * frame["height_m"] / 2])


def liver_section(frame: dict, z: float | None, n: int = 128) -> np.ndarray | None:
    """The liver's polygon at height z (3D; None outside), or the 2D outline (z None)."""
    if z is None:
        return closed_spline(liver_control_points(frame), n)
    t = 2 * z / frame["height_m"]
    if not -1 <= t <= 1:
        return None
    return closed_spline(liver_control_points(frame, t), n)


def lobe_split_x(frame: dict, t: float | None = None) -> float:
    """x of the falciform line (right lobe: x below it)."""
    return float(liver_point(frame, LOBE_SPLIT_U, 0.0, t)[0])


def _layer(anatomy: Anatomy, outline: dict, region: int) -> dict:
    """The region inside a body outline: a plane shape in 2D, a prism over the slab in 3D."""
    if anatomy.dim == 2:
        return {**outline, "region": region}
    return {"type": "prism", "region": region, "outline": outline, "z_m": list(anatomy.z_range)}


def _liver_shape(anatomy: Anatomy) -> dict:
    if anatomy.dim == 2:
        points = liver_control_points(anatomy.frame)
        return {"type": "spline", "region": LIVER, "points_m": points.tolist()}
    sections = [
        {
            "z_m": float(t * anatomy.frame["height_m"] / 2),
            "points_m": liver_control_points(anatomy.frame, t).tolist(),
        }
        for t in SECTION_T
    ]
    return {"type": "loft", "region": LIVER, "sections": sections}


# ---------------------------------------------------------------- containment helpers


def _by_section(anatomy: Anatomy, points: np.ndarray) -> list[tuple[np.ndarray | None, np.ndarray]]:
    """Points grouped by liver section (3D: heights snapped to a quarter voxel; the sections
    are cached, as placement asks for the same heights many times)."""
    if anatomy.dim == 2:
        return [(anatomy.sections.setdefault(None, liver_section(anatomy.frame, None)), points)]
    step = anatomy.voxel / 4
    levels = np.round(points[:, 2] / step).astype(int)
    groups = []
    for level in np.unique(levels):
        if level not in anatomy.sections:
            anatomy.sections[level] = liver_section(anatomy.frame, float(level * step))
        groups.append((anatomy.sections[level], points[levels == level]))
    return groups


def _inside_liver(anatomy: Anatomy, points: np.ndarray, margin: float) -> bool:
    """All points inside the liver, ``margin`` from its surface (3D: within each section, and
    from the flat top and bottom)."""
    if anatomy.dim == 3 and np.any(np.abs(points[:, 2]) > anatomy.frame["height_m"] / 2 - margin):
        return False
    return all(
        polygon is not None and inside_with_margin(polygon, chosen, margin)
        for polygon, chosen in _by_section(anatomy, points)
    )


def _outside_liver(anatomy: Anatomy, points: np.ndarray, margin: float) -> bool:
    """No point inside the liver or within ``margin`` of it."""
    return all(
        polygon is None
        or not (
            polygon_contains(polygon, chosen).any()
            or np.min(polygon_distance(polygon, chosen)) < margin
        )
        for polygon, chosen in _by_section(anatomy, points)
    )


def _inside_body(anatomy: Anatomy, points: np.ndarray, margin: float) -> bool:
    """Inside the fat's inner outline (and the slab) with ``margin``."""
    if anatomy.dim == 3:
        low, high = anatomy.z_range
        if np.any(points[:, 2] < low + margin) or np.any(points[:, 2] > high - margin):
            return False
    return inside_with_margin(outline_points(anatomy.inner), points, margin)


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


# ---------------------------------------------------------------- vessels


def _vessel_radius(
    config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy, bounds: Range
) -> float:
    floor = config.liver.vessels.min_radius_voxels * anatomy.voxel
    return max(_uniform(rng, bounds, 1e-3 * anatomy.scale), floor)


def _draw_vessels(config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy) -> list[dict]:
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
        _count(rng, settings.portal_count, len(portal)),
        _count(rng, settings.hepatic_count, len(hepatic)),
    )
    placed: list[dict] = []
    for (region, courses, radii), count in zip(kinds, counts, strict=True):
        for course in courses[:count]:
            radius = _vessel_radius(config, rng, anatomy, radii)
            length = _uniform(rng, settings.portal_length_mm, 1e-3 * anatomy.scale)
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
        if _inside_liver(anatomy, surface_points(shape), INNER_MARGIN * margin) and all(
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


def _draw_spleen(config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy) -> dict | None:
    """A crescent along the posterolateral left wall, shrunk while it would come within
    ``gap`` of the liver; left out after ``TRIES``."""
    settings = config.liver.spleen
    present = rng.uniform() < settings.probability
    length = _uniform(rng, settings.length_mm, 1e-3 * anatomy.scale)
    thickness = _uniform(rng, settings.thickness_mm, 1e-3 * anatomy.scale)
    height = _uniform(rng, settings.height_mm, 1e-3 * anatomy.scale)
    angle = np.deg2rad(rng.uniform(*SPLEEN_ANGLES_DEG))
    if not present:
        return None
    for attempt in range(TRIES):
        shrink = 0.85**attempt
        shape = _spleen_shape(anatomy, angle, shrink * length, shrink * thickness, height)
        points = surface_points(shape)
        if _inside_body(anatomy, points, 0.5 * anatomy.gap) and _outside_liver(
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


def _draw_lesions(
    config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy, vessels: list[dict]
) -> list[dict]:
    """Focal lesions at random places in the liver, apart from the vessels and each other;
    a lesion that finds no room shrinks (not below the floor) and is left out at the end."""
    settings = config.liver.lesions
    if rng.uniform() >= settings.probability:
        return []
    count = _count(rng, settings.count, settings.count.max)
    floor = settings.min_diameter_voxels * anatomy.voxel
    lesions: list[dict] = []
    for _ in range(count):
        diameter = max(_uniform(rng, settings.diameter_mm, 1e-3 * anatomy.scale), floor)
        for attempt in range(4 * LESION_TRIES):
            size = max(diameter * 0.9 ** (attempt // LESION_TRIES), floor)
            shape = _lesion_shape(rng, anatomy, size, FIRST_LESION_TAG + len(lesions))
            if shape is not None and _fits_liver(anatomy, shape, vessels + lesions):
                lesions.append(shape)
                break
    return lesions


def _fits_liver(anatomy: Anatomy, shape: dict, neighbours: list[dict]) -> bool:
    margin = anatomy.voxel
    return _inside_liver(anatomy, surface_points(shape), INNER_MARGIN * margin) and all(
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


# ---------------------------------------------------------------- materials, driver, field


def _tissue(
    config: PipelineConfig,
    rng: np.random.Generator,
    tissue: TissueConfig,
    tag: int,
    name: str,
    frequency: float,
) -> Region:
    """|G*| and loss ratio at the reference frequency -> G', G'' -> G* at ``frequency``."""
    modulus = _uniform(rng, tissue.modulus_kpa, 1e3)
    ratio = _uniform(rng, tissue.loss_ratio)
    storage = modulus / np.hypot(1.0, ratio)
    return material_region(
        config, tag, name, storage, ratio * storage, frequency, tissue.density_kg_m3
    )


def _draw_materials(
    config: PipelineConfig, rng: np.random.Generator, frequency: float, shapes: list[dict]
) -> tuple[str, list[Region]]:
    settings = config.liver
    stages = [s for s in STAGES if settings.stage_probabilities.get(s, 0.0) > 0]
    odds = np.array([settings.stage_probabilities[s] for s in stages])
    stage = stages[int(rng.choice(len(stages), p=odds / odds.sum()))]
    liver = TissueConfig(
        modulus_kpa=settings.stage_modulus_kpa[stage],
        loss_ratio=settings.loss_ratio,
        density_kg_m3=settings.density_kg_m3,
    )
    present = {shape["region"] for shape in shapes}
    catalogue = [
        (BODY, "body", settings.body.tissue),
        (FAT, "fat", settings.fat.tissue),
        (LIVER, "liver", liver),
        (PORTAL, "portal_vein", settings.vessels.tissue),
        (HEPATIC, "hepatic_veins", settings.vessels.tissue),
        (SPLEEN, "spleen", settings.spleen.tissue),
    ]
    regions = [
        _tissue(config, rng, tissue, tag, name, frequency)
        for tag, name, tissue in catalogue
        if tag in present
    ]
    for tag in sorted(t for t in present if t >= FIRST_LESION_TAG):
        name = f"lesion_{tag - FIRST_LESION_TAG + 1}"
        regions.append(_tissue(config, rng, settings.lesions.tissue, tag, name, frequency))
    return stage, regions


def _draw_driver(config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy) -> Driver:
    """A patch on the anterior skin, shifted towards the patient's right (over the liver); it
    pushes in a random direction into the body."""
    settings = config.liver.driver
    theta = np.pi / 2 + np.deg2rad(_uniform(rng, settings.offset_deg))
    width = _uniform(rng, settings.width_mm, 1e-3 * anatomy.scale)
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
    return _patch_driver(anatomy, theta, width / 2, z_shift, amplitude, unit)


def _patch_driver(
    anatomy: Anatomy,
    theta: float,
    radius: float,
    z_shift: float,
    amplitude: float,
    direction: tuple[float, float, float],
) -> Driver:
    """3D: a disc-shaped patch; the cylinder that cuts it out reaches halfway between the
    skin's sag under the patch and the fat's inner surface (narrowed until the sag is small)."""
    low, high = anatomy.z_range
    point, normal = _outline_point_normal(anatomy.outer, theta)
    radius = min(radius, 0.5 * (high - low) - 2 * anatomy.voxel)
    sag = _prism_sag(anatomy.outer, point, normal, radius)
    while sag > 0.4 * anatomy.fat_thickness:
        radius *= 0.8
        sag = _prism_sag(anatomy.outer, point, normal, radius)
    z = float(np.clip(z_shift, low + radius + anatomy.voxel, high - radius - anatomy.voxel))
    arc = 2 * radius / float(np.linalg.norm(point - anatomy.centre))
    return Driver(
        start_angle_rad=float(theta - arc / 2),
        arc_rad=float(arc),
        amplitude_m=amplitude,
        direction=direction,
        centre_m=(float(point[0]), float(point[1]), z),
        axis=(float(normal[0]), float(normal[1]), 0.0),
        radius_m=float(radius),
        depth_m=float(sag + 0.5 * (anatomy.fat_thickness - sag)),
    )


def _outline_point_normal(outline: dict, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """Point of a radial outline at angle theta and its outward unit normal."""
    step = 1e-4
    before, point, after = radial_points(outline, np.array([theta - step, theta, theta + step]))
    tangent = (after - before) / np.linalg.norm(after - before)
    return point, np.array([tangent[1], -tangent[0]])  # anticlockwise outline: normal to the right


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


def _draw_field(
    config: PipelineConfig, rng: np.random.Generator, anatomy: Anatomy
) -> ModulusField | None:
    """The liver's random heterogeneity on the body's bounding box (None when σ = 0)."""
    settings = config.liver
    if settings.heterogeneity_sigma == 0:
        return None
    correlation = settings.heterogeneity_correlation_mm * 1e-3
    spacing = min(anatomy.voxel, correlation / 4)
    half = np.asarray(anatomy.outer["semi_axes_m"])
    lower, upper = anatomy.centre - half - spacing, anatomy.centre + half + spacing
    if anatomy.dim == 3:
        lower = np.append(lower, anatomy.z_range[0] - spacing)
        upper = np.append(upper, anatomy.z_range[1] + spacing)
    return draw_modulus_field(
        rng, lower, upper, spacing, settings.heterogeneity_sigma, correlation, [LIVER]
    )


# ---------------------------------------------------------------- geometry record


def _geometry(
    anatomy: Anatomy, shapes: list[dict], stage: str, regions: list[Region], size: float
) -> dict:
    refine: dict[str, float] = {}
    for shape in shapes:
        if shape["region"] in (PORTAL, HEPATIC):
            feature = 2 * (shape["radius_m"] if "radius_m" in shape else min(shape["semi_axes_m"]))
            elements = VESSEL_ELEMENTS
        elif shape["region"] >= FIRST_LESION_TAG:
            feature, elements = 2 * min(shape["semi_axes_m"]), LESION_ELEMENTS
        else:
            continue
        key = str(shape["region"])
        refine[key] = min(refine.get(key, size), feature / elements)
    liver = next(r for r in regions if r.tag == LIVER)
    return {
        "kind": "liver",
        "centre_m": anatomy.centre.tolist(),
        "scale": anatomy.scale,
        "fat_thickness_m": anatomy.fat_thickness,
        "wall_gap_m": anatomy.gap,
        "liver_frame": anatomy.frame,
        "stage": stage,
        "liver_modulus_pa": abs(liver.shear_modulus),
        "anatomy": _anatomy_summary(anatomy, shapes),
        "shapes": shapes,
        "boundary": {
            "rest": "free",
            "caps_z_m": list(anatomy.z_range) if anatomy.dim == 3 else None,
        },
        "refine": refine,
    }


def _anatomy_summary(anatomy: Anatomy, shapes: list[dict]) -> dict:
    measure, right = liver_measures(anatomy.frame, anatomy.dim)
    counts = {
        name: sum(s["region"] == tag for s in shapes)
        for name, tag in (("portal_vein", PORTAL), ("hepatic_veins", HEPATIC), ("spleen", SPLEEN))
    }
    counts["lesions"] = sum(s["region"] >= FIRST_LESION_TAG for s in shapes)
    key = "liver_area_m2" if anatomy.dim == 2 else "liver_volume_m3"
    return {key: measure, "right_lobe_fraction": right, **counts}


def liver_measures(frame: dict, dim: int) -> tuple[float, float]:
    """Liver area (2D, m²) or volume (3D, m³, sections integrated) and the right lobe's share."""
    if dim == 2:
        return _section_measures(frame, None)
    half = frame["height_m"] / 2
    zs = np.linspace(-half, half, 41)
    areas = np.array([_section_measures(frame, float(z)) for z in zs])
    total = np.trapezoid(areas[:, 0], zs)
    right = np.trapezoid(areas[:, 0] * areas[:, 1], zs)
    return float(total), float(right / total)


def _section_measures(frame: dict, z: float | None) -> tuple[float, float]:
    polygon = liver_section(frame, z, 256)
    t = None if z is None else 2 * z / frame["height_m"]
    split = lobe_split_x(frame, t)
    total = polygon_area(polygon)
    return total, polygon_area(_clip_left_of(polygon, split)) / total


def _clip_left_of(polygon: np.ndarray, x_max: float) -> np.ndarray:
    """The part of a polygon with x <= x_max (Sutherland-Hodgman, one half-plane)."""
    kept = []
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        a_in, b_in = a[0] <= x_max, b[0] <= x_max
        if a_in:
            kept.append(a)
        if a_in != b_in:
            w = (x_max - a[0]) / (b[0] - a[0])
            kept.append(a + w * (b - a))
    return np.array(kept) if len(kept) >= 3 else np.zeros((3, 2))
