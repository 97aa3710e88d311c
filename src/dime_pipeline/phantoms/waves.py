"""Wave-field variety: more drivers, whole-outline drivers, driver directions and outer
boundaries, added to a family's phantom after the family has drawn it (``draw_phantom``).

A learned inversion fails silently on wave patterns it never saw, and real fields are richer
than one arc on an absorbing outline: waves enter from several places and interfere, stand
between traction-free boundaries, converge from a whole boundary. Every family gets the same
options (``driver`` and ``boundary`` in the config): the family's own first driver is kept (the
liver's stays over the liver) and may be turned into a whole-outline driver; extra drivers go
anywhere on the outer boundary without overlapping; directions are drawn by kind; the outer
boundary outside the drivers is absorbing, traction-free or mixed (traction-free on some arcs,
3D: patches). All draws come from the phantom's own ``wave-field`` stream, so the family's draws,
and phantoms with every option off (returned untouched), keep their bytes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dime_pipeline.config import PipelineConfig
from dime_pipeline.phantoms.common import DRIVER_ELEVATION_RAD, ellipsoid_patch, random_direction
from dime_pipeline.phantoms.geometry import in_arc, outline_point_normal
from dime_pipeline.phantoms.liver.driver import skin_patch
from dime_pipeline.phantoms.spec import (
    ABSORBING_TAG,
    EXTRA_DRIVER_TAG,
    FREE_TAG,
    FULL_TURN,
    Driver,
    PhantomSpec,
)
from dime_pipeline.seeding import generator, sample_seed

PLACEMENT_TRIES = 50  # random placements per extra driver or free patch before giving up on it
GAP_RAD = np.deg2rad(10.0)  # 2D: least angle between two drivers' arcs
SNAP_RAD = np.deg2rad(3.0)  # 2D: a free arc's end this close to a driver's end moves onto it
MAX_FREE_PATCH_RAD = np.pi / 2  # 3D: a patch wider than this no longer fits an ellipsoid's side


def vary_wave_field(spec: PhantomSpec, config: PipelineConfig) -> PhantomSpec:
    """``spec`` with the configured wave-field variety drawn (unchanged when all is off)."""
    drivers_on, boundary_on = config.driver.varied, config.boundary.varied(spec.family)
    if not (drivers_on or boundary_on):
        return spec
    rng = generator(sample_seed(spec.seed, f"wave-field:{spec.family}", 0))
    settings = config.driver
    whole = bool(rng.uniform() < settings.whole_outline)
    count = int(rng.integers(settings.count.min, settings.count.max + 1))
    kinds, odds = zip(*sorted(config.boundary.family_odds(spec.family).items()), strict=True)
    boundary = str(rng.choice(kinds, p=np.asarray(odds) / sum(odds)))
    outline = _Outline(spec)
    first = outline.whole_driver(spec.driver) if whole else spec.driver
    drivers = [_directed(first, settings, rng, outline, keep=True)]
    for _ in range(0 if whole else count - 1):
        placed = outline.place(drivers, settings, rng)
        if placed is not None:
            drivers.append(_directed(placed, settings, rng, outline, keep=False))
    geometry = {
        **spec.geometry,
        "boundary": dict(spec.geometry.get("boundary", {"rest": "absorbing"})),
    }
    geometry["boundary"]["rest"] = "absorbing" if boundary == "absorbing" else "free"
    if boundary == "mixed" and not whole:  # absorbing, but traction-free on some arcs
        geometry["boundary"]["rest"] = "absorbing"
        geometry["boundary"].update(outline.free_parts(drivers, config, rng))
    return dataclasses.replace(
        spec,
        driver=drivers[0],
        extra_drivers=tuple(drivers[1:]),
        geometry=geometry,
        boundary_tags=boundary_tags(drivers, geometry["boundary"], spec.dim),
    )


def boundary_tags(drivers: list[Driver], boundary: dict, dim: int) -> dict[str, int]:
    """The facet groups a phantom's mesh holds (name -> tag); a whole-outline driver leaves
    only the 3D slab's caps to other kinds."""
    n = len(drivers)
    tags = {"driver": 1, **{f"driver_{k}": EXTRA_DRIVER_TAG + k for k in range(1, n)}}
    rest = None if drivers[0].whole_outline else boundary["rest"]
    free = rest == "free" or boundary.get("free_arcs") or boundary.get("free_patches")
    absorbing = rest == "absorbing" or (dim == 3 and boundary.get("caps_z_m"))
    if free:
        tags["free"] = FREE_TAG
    if absorbing:
        tags["absorbing"] = ABSORBING_TAG
    return tags


def _directed(
    driver: Driver, settings, rng: np.random.Generator, outline: _Outline, keep: bool
) -> Driver:
    """``driver`` with a direction of a kind drawn from the odds (the family's own random
    direction is kept for the first driver when "random" comes up)."""
    kinds, odds = zip(*sorted(settings.directions.items()), strict=True)
    kind = str(rng.choice(kinds, p=np.asarray(odds) / sum(odds)))
    spare = random_direction(rng)  # drawn whatever the kind: one sequence of draws
    if kind == "random":
        direction = driver.direction if keep else spare
    elif kind == "through_plane":
        direction = (0.0, 0.0, 1.0)
    else:
        normal = outline.inward_normal(driver)
        if kind == "normal":
            direction = tuple(float(v) for v in normal)
        else:  # tangential: in plane in 2D; in 3D the tangent plane's direction nearest `spare`
            if outline.dim == 2:
                tangent = np.array([-normal[1], normal[0], 0.0])
            else:
                tangent = np.asarray(spare) - (np.asarray(spare) @ normal) * normal
            direction = tuple(float(v) for v in tangent / np.linalg.norm(tangent))
    return dataclasses.replace(driver, direction=direction, direction_kind=kind)


class _Outline:
    """The phantom's outer boundary as the placement code needs it: a radial 2D outline, an
    ellipsoid, or the liver's skin prism."""

    def __init__(self, spec: PhantomSpec) -> None:
        self.spec, self.dim = spec, spec.dim
        geometry = spec.geometry
        self.shape = geometry["shapes"][0] if "shapes" in geometry else geometry
        self.centre = np.asarray(geometry["centre_m"], dtype=float)

    # -------------------------------------------------------------- directions

    def inward_normal(self, driver: Driver) -> np.ndarray:
        """Unit vector into the body at the patch centre (for a whole-outline driver, the
        normal at its start; the solver makes it follow the outline)."""
        if self.dim == 3 and driver.axis is not None:
            return -np.asarray(driver.axis)
        theta = driver.start_angle_rad + (0.0 if driver.whole_outline else driver.arc_rad / 2)
        if self.dim == 3:  # a whole 3D surface: the horizontal direction towards the centre
            return -np.array([np.cos(theta), np.sin(theta), 0.0])
        _, normal = outline_point_normal(self.shape, theta)
        return -np.array([normal[0], normal[1], 0.0])

    # -------------------------------------------------------------- drivers

    def whole_driver(self, driver: Driver) -> Driver:
        """``driver`` spread over the whole outer boundary."""
        return dataclasses.replace(
            driver,
            arc_rad=FULL_TURN,
            centre_m=None,
            axis=None,
            radius_m=None,
            depth_m=None,
        )

    def place(self, drivers: list[Driver], settings, rng: np.random.Generator) -> Driver | None:
        """An extra driver clear of ``drivers`` (None when none fits in PLACEMENT_TRIES)."""
        amplitude = settings.amplitude_um * 1e-6
        for _ in range(PLACEMENT_TRIES):
            relative = rng.uniform(settings.relative_amplitude.min, settings.relative_amplitude.max)
            phase = float(rng.uniform(0, 2 * np.pi))
            arc = np.deg2rad(rng.uniform(settings.arc_deg.min, settings.arc_deg.max))
            candidate = self._patch(rng, arc, amplitude * relative)
            if candidate is not None and self._clear(candidate, drivers):
                return dataclasses.replace(candidate, phase_rad=phase)
        return None

    def _patch(self, rng: np.random.Generator, arc: float, amplitude: float) -> Driver | None:
        """A patch (2D: an arc) of angular size ``arc`` at a random place."""
        azimuth = float(rng.uniform(0, 2 * np.pi))
        elevation = float(rng.uniform(-DRIVER_ELEVATION_RAD, DRIVER_ELEVATION_RAD))
        z_shift = float(rng.uniform(-0.2, 0.2))
        unit = (1.0, 0.0, 0.0)  # replaced by _directed
        if self.dim == 2:
            return Driver(float(azimuth - arc / 2), float(arc), amplitude, unit)
        if self.shape["type"] == "ellipsoid":
            try:
                return ellipsoid_patch(
                    self.shape, azimuth, elevation, min(arc, MAX_FREE_PATCH_RAD), amplitude, unit
                )
            except ValueError:  # wider than the side it sits on
                return None
        return self._skin_patch(azimuth, arc, z_shift, amplitude, unit)

    def _skin_patch(
        self, theta: float, arc: float, z_shift: float, amplitude: float, unit: tuple
    ) -> Driver:
        """The liver's skin (a prism): a disc of diameter arc × the local radius."""
        geometry, outer = self.spec.geometry, self.shape["outline"]
        low, high = geometry["boundary"]["caps_z_m"]
        point, _ = outline_point_normal(outer, theta)
        radius = 0.5 * arc * float(np.linalg.norm(point - self.centre[:2]))
        return skin_patch(
            outer,
            (low, high),
            geometry["fat_thickness_m"],
            self.spec.grid.voxel_size_m,
            self.centre,
            theta,
            radius,
            z_shift * (high - low) / 2,
            amplitude,
            unit,
        )

    def _clear(self, candidate: Driver, others: list[Driver]) -> bool:
        if self.dim == 2:
            return all(_arcs_apart(candidate, other, GAP_RAD) for other in others)
        margin = 2 * self.spec.grid.voxel_size_m
        return all(
            np.linalg.norm(np.subtract(candidate.centre_m, other.centre_m))
            > candidate.radius_m + other.radius_m + margin
            for other in others
            if other.centre_m is not None and other.radius_m is not None
        )

    # -------------------------------------------------------------- mixed boundaries

    def free_parts(
        self, drivers: list[Driver], config: PipelineConfig, rng: np.random.Generator
    ) -> dict:
        """Traction-free arcs (2D) or patches (3D) of a mixed boundary; drivers win where they
        overlap a free part."""
        settings = config.boundary
        count = int(rng.integers(settings.free_arcs.min, settings.free_arcs.max + 1))
        if self.dim == 2:
            ends = [(d.start_angle_rad, d.start_angle_rad + d.arc_rad) for d in drivers]
            breaks = [angle for pair in ends for angle in pair]
            arcs = []
            for _ in range(count):
                arc = np.deg2rad(rng.uniform(settings.free_arc_deg.min, settings.free_arc_deg.max))
                start = float(rng.uniform(0, 2 * np.pi))
                start, end = (_snapped(a, breaks) for a in (start, start + arc))
                arcs.append([start, float(np.mod(end - start, 2 * np.pi)) or float(arc)])
            return {"free_arcs": arcs}
        patches: list[Driver] = []
        for _ in range(count):
            for _ in range(PLACEMENT_TRIES):
                arc = np.deg2rad(rng.uniform(settings.free_arc_deg.min, settings.free_arc_deg.max))
                patch = self._patch(rng, arc, 0.0)
                if patch is not None and self._clear(patch, drivers + patches):
                    patches.append(patch)
                    break
        return {"free_patches": [_placement(patch) for patch in patches]}


def _arcs_apart(a: Driver, b: Driver, gap: float) -> bool:
    """Two arcs, each widened by ``gap`` / 2 at both ends, do not overlap."""
    if a.whole_outline or b.whole_outline:
        return False
    start_a, arc_a = a.start_angle_rad - gap / 2, a.arc_rad + gap
    start_b, arc_b = b.start_angle_rad - gap / 2, b.arc_rad + gap
    return not (in_arc(start_b, start_a, arc_a) or in_arc(start_a, start_b, arc_b))


def _snapped(angle: float, breaks: list[float]) -> float:
    """``angle`` moved onto the nearest of ``breaks`` within SNAP_RAD (no sliver segments)."""
    for other in breaks:
        if abs(np.angle(np.exp(1j * (angle - other)))) < SNAP_RAD:
            return float(np.mod(other, 2 * np.pi))
    return float(np.mod(angle, 2 * np.pi))


def _placement(patch: Driver) -> dict:
    """Where a 3D free patch is: the placement fields of a driver, nothing about motion."""
    keys = ("start_angle_rad", "arc_rad", "centre_m", "axis", "radius_m", "depth_m")
    values = {key: getattr(patch, key) for key in keys}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}  # as JSON


def free_patch_drivers(boundary: dict) -> list[Driver]:
    """The 3D free patches of ``geometry["boundary"]`` as placements (motionless drivers)."""
    return [
        Driver(
            start_angle_rad=p["start_angle_rad"],
            arc_rad=p["arc_rad"],
            amplitude_m=0.0,
            direction=(0.0, 0.0, 0.0),
            centre_m=tuple(p["centre_m"]),
            axis=tuple(p["axis"]),
            radius_m=p["radius_m"],
            depth_m=p["depth_m"],
        )
        for p in boundary.get("free_patches", [])
    ]


# ---------------------------------------------------------------- where each boundary kind is


def outline_breaks(spec: PhantomSpec) -> list[float] | None:
    """2D: the polar angles where the outline is cut into pieces of one boundary kind each;
    None for the first release's layout (one driver arc and the rest), which keeps its meshes."""
    free = spec.geometry.get("boundary", {}).get("free_arcs", [])
    if len(spec.drivers) == 1 and not free and not spec.driver.whole_outline:
        return None
    breaks: list[float] = []
    for driver in spec.drivers:
        end = np.pi if driver.whole_outline else driver.arc_rad  # a closed curve needs two
        breaks += [driver.start_angle_rad, driver.start_angle_rad + end]
    for start, arc in free:
        breaks += [start, start + arc]
    unique: list[float] = []
    for angle in sorted(float(np.mod(b, 2 * np.pi)) for b in breaks):
        if not unique or angle - unique[-1] > 1e-9:
            unique.append(angle)
    if len(unique) > 1 and unique[0] + 2 * np.pi - unique[-1] <= 1e-9:
        unique.pop()
    return unique


def boundary_tag_at(spec: PhantomSpec, theta: float) -> int:
    """2D: the facet tag of the outline at polar angle ``theta``: a driver's (drivers first),
    traction-free on a free arc, else the rest's kind."""
    for k, driver in enumerate(spec.drivers):
        if driver.whole_outline or in_arc(theta, driver.start_angle_rad, driver.arc_rad):
            return spec.driver_tag(k)
    boundary = spec.geometry.get("boundary", {"rest": "absorbing"})
    for start, arc in boundary.get("free_arcs", []):
        if in_arc(theta, start, arc):
            return FREE_TAG
    return FREE_TAG if boundary["rest"] == "free" else ABSORBING_TAG
