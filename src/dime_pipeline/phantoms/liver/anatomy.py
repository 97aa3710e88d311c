"""The liver phantom's anatomy: body outline and fat layer, the liver frame with its sections
(template, lobes, 3D taper) and where they sit, and the containment checks and measures that
inner structures and tests ask of them. Region tags of the whole family are fixed here, as the
anatomy is what every other part of the family is placed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dime_pipeline.config import IntRange, PipelineConfig, Range
from dime_pipeline.phantoms.common import slab_half_height
from dime_pipeline.phantoms.geometry import (
    closed_spline,
    inside_with_margin,
    outline_points,
    outline_radius,
    polygon_area,
    polygon_contains,
    polygon_distance,
)

BODY, FAT, LIVER, PORTAL, HEPATIC, SPLEEN = 1, 2, 3, 4, 5, 6
FIRST_LESION_TAG = 7

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
FIT_STEPS = 12  # liver placement: moves towards the centre, then shrinks


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


# ---------------------------------------------------------------- random draws


def draw_uniform(rng: np.random.Generator, bounds: Range, factor: float = 1.0) -> float:
    return float(factor * rng.uniform(bounds.min, bounds.max))


def draw_count(rng: np.random.Generator, bounds: IntRange, most: int) -> int:
    return min(int(rng.integers(bounds.min, bounds.max + 1)), most)


# ---------------------------------------------------------------- body and liver


def draw_body_and_liver(config: PipelineConfig, rng: np.random.Generator) -> Anatomy:
    settings, voxel = config.liver, config.grid.voxel_size_m
    fov_y, fov_x = config.grid.field_of_view_m
    width = draw_uniform(rng, settings.body.width_mm, 1e-3)
    depth = draw_uniform(rng, settings.body.depth_mm, 1e-3)
    scale = draw_uniform(rng, settings.body.fov_fill) * min(fov_x / width, fov_y / depth)
    exponent = draw_uniform(rng, settings.body.squareness)
    fat = max(draw_uniform(rng, settings.fat.thickness_mm, 1e-3 * scale), 2 * voxel)
    gap = max(draw_uniform(rng, settings.wall_gap_mm, 1e-3 * scale), voxel)
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
    width = draw_uniform(rng, settings.width_mm, 1e-3 * scale)
    depth = draw_uniform(rng, settings.depth_mm, 1e-3 * scale)
    return {
        "offset_m": [float(-room[0] + 0.5 * width), float(room[1] - 0.475 * depth)],
        "width_m": width,
        "depth_m": depth,
        "height_m": draw_uniform(rng, settings.height_mm, 1e-3 * scale),
        "left_extent": draw_uniform(rng, settings.left_lobe_extent),
        "left_thickness": draw_uniform(rng, settings.left_lobe_thickness),
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


def layer(anatomy: Anatomy, outline: dict, region: int) -> dict:
    """The region inside a body outline: a plane shape in 2D, a prism over the slab in 3D."""
    if anatomy.dim == 2:
        return {**outline, "region": region}
    return {"type": "prism", "region": region, "outline": outline, "z_m": list(anatomy.z_range)}


def liver_shape(anatomy: Anatomy) -> dict:
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


def inside_liver(anatomy: Anatomy, points: np.ndarray, margin: float) -> bool:
    """All points inside the liver, ``margin`` from its surface (3D: within each section, and
    from the flat top and bottom)."""
    if anatomy.dim == 3 and np.any(np.abs(points[:, 2]) > anatomy.frame["height_m"] / 2 - margin):
        return False
    return all(
        polygon is not None and inside_with_margin(polygon, chosen, margin)
        for polygon, chosen in _by_section(anatomy, points)
    )


def outside_liver(anatomy: Anatomy, points: np.ndarray, margin: float) -> bool:
    """No point inside the liver or within ``margin`` of it."""
    return all(
        polygon is None
        or not (
            polygon_contains(polygon, chosen).any()
            or np.min(polygon_distance(polygon, chosen)) < margin
        )
        for polygon, chosen in _by_section(anatomy, points)
    )


def inside_body(anatomy: Anatomy, points: np.ndarray, margin: float) -> bool:
    """Inside the fat's inner outline (and the slab) with ``margin``."""
    if anatomy.dim == 3:
        low, high = anatomy.z_range
        if np.any(points[:, 2] < low + margin) or np.any(points[:, 2] > high - margin):
            return False
    return inside_with_margin(outline_points(anatomy.inner), points, margin)


# ---------------------------------------------------------------- liver measures


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
