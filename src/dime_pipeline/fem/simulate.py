"""``simulate``: solve one phantom and write its sample store (all ranks solve, rank 0 writes).

2D stores hold three displacement components (x, y, z): in-plane motion from plane strain and the
out-of-plane motion from anti-plane shear, both driven by the same driver vector. 3D stores hold
the three components of the 3D solve, sampled on axial slices averaged over the slice thickness.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from dime_pipeline import __version__
from dime_pipeline.errors import UserError
from dime_pipeline.fem.backend import MPI, checked_jit_options, dolfinx, read_mesh, versions
from dime_pipeline.fem.media import Medium, cell_region_tags, medium_from_regions
from dime_pipeline.fem.sampling import PointSampler
from dime_pipeline.fem.solvers import (
    DEFAULT_SOLVER,
    Boundary,
    Solution,
    SolverError,
    SolverOptions,
    solve_antiplane,
    solve_elastic,
)
from dime_pipeline.phantoms.fields import sample_field
from dime_pipeline.phantoms.spec import MESH_FILE, PhantomSpec, read_spec
from dime_pipeline.store import Sample, write_sample

log = logging.getLogger(__name__)
SLICE_POINTS = 5  # midpoint rule through the slice thickness (box slice profile)


def simulate(
    phantom_dir: Path,
    out: Path,
    jit_cache: Path,
    options: SolverOptions = DEFAULT_SOLVER,
) -> dict[str, float]:
    """Solve the phantom in ``phantom_dir`` on ``MPI.COMM_WORLD`` and write ``out``.

    Returns the stage timings (seconds) of this rank; they are also stored in the sample.
    """
    comm = MPI.COMM_WORLD
    spec = read_spec(phantom_dir)
    jit_options = checked_jit_options(jit_cache)
    timings: dict[str, float] = {}
    total = time.perf_counter()

    start = time.perf_counter()
    mesh, cell_tags, facet_tags = read_mesh(Path(phantom_dir) / MESH_FILE, comm, gdim=spec.dim)
    field = _modulus_field(spec, Path(phantom_dir))
    medium = medium_from_regions(
        mesh, cell_tags, spec.regions, _cell_multiplier(spec, field, mesh, cell_tags)
    )
    timings["mesh"] = time.perf_counter() - start

    try:
        solutions = _solve_fields(spec, medium, facet_tags, options, jit_options)
    except SolverError as error:
        raise UserError(f"simulation of {phantom_dir} failed: {error}") from None
    for name, solution in solutions.items():
        for stage, seconds in solution.seconds.items():
            timings[f"{name}_{stage}"] = seconds

    start = time.perf_counter()
    displacement, labels, inside = _sample(spec, mesh, cell_tags, solutions)
    timings["sample"] = time.perf_counter() - start

    if comm.rank == 0:
        start = time.perf_counter()
        facts = _solver_facts(mesh, solutions, options, timings)
        sample = _assemble_sample(spec, displacement, labels, inside, facts)
        if field is not None:  # ground truth carries the same smooth field as the solver
            multiplier = sample_field(spec.modulus_field, field, spec.grid.pixel_centres())
            applies = np.isin(sample.labels, spec.modulus_field.region_tags)
            sample.modulus[applies] *= multiplier.reshape(sample.modulus.shape)[applies]
        write_sample(out, sample)
        timings["write"] = time.perf_counter() - start
    timings["total"] = time.perf_counter() - total
    log.info("simulated %s: %s", out, {k: round(v, 3) for k, v in timings.items()})
    return timings


def _solve_fields(
    spec: PhantomSpec,
    medium: Medium,
    facet_tags: dolfinx.mesh.MeshTags,
    options: SolverOptions,
    jit_options: dict,
) -> dict[str, Solution]:
    """The harmonic displacement fields of the phantom, by problem name."""
    omega = spec.angular_frequency
    dim = spec.dim
    # Untagged and "free" facets are traction-free (skin against air); "absorbing" emulates an
    # unbounded medium.
    absorbing = [spec.boundary_tags[name] for name in ("absorbing",) if name in spec.boundary_tags]
    motions = driver_motions(spec)

    def boundary(components: slice | int) -> Boundary:
        return Boundary(
            prescribed={tag: _part(motion, components) for tag, motion in motions.items()},
            absorbing=absorbing,
        )

    elastic = solve_elastic(
        medium, omega, facet_tags, boundary(slice(0, dim)), options=options, jit_options=jit_options
    )
    if dim == 3:
        return {"elastic": elastic}
    antiplane = solve_antiplane(
        medium, omega, facet_tags, boundary(2), options=options, jit_options=jit_options
    )
    return {"plane_strain": elastic, "antiplane": antiplane}


Motion = np.ndarray | Callable[[np.ndarray], np.ndarray]


def driver_motions(spec: PhantomSpec) -> dict[int, Motion]:
    """The prescribed displacement (x, y, z) of each driver, by facet tag: a constant vector
    (a rigid piston), or, for a whole-outline driver pushing along the outline's normal or
    tangent, a function of position (x of shape (3, N) -> (3, N)) about the phantom's centre."""
    centre = np.zeros(3)
    given = spec.geometry.get("centre_m", [0.0, 0.0])
    centre[: len(given)] = given
    motions: dict[int, Motion] = {}
    for k, driver in enumerate(spec.drivers):
        amplitude = driver.complex_amplitude
        if driver.whole_outline and driver.direction_kind in ("normal", "tangential"):
            motions[spec.driver_tag(k)] = _outline_motion(
                amplitude, driver.direction_kind, centre, spec.dim
            )
        else:
            motions[spec.driver_tag(k)] = amplitude * np.asarray(driver.direction)
    return motions


def _outline_motion(
    amplitude: complex, kind: str, centre: np.ndarray, dim: int
) -> Callable[[np.ndarray], np.ndarray]:
    """Inward radial pulsation ("normal") or torsion about z ("tangential") of a whole outline
    (2D; 3D radial from the centre, torsion about the vertical axis through it)."""

    def motion(x: np.ndarray) -> np.ndarray:
        offset = x - centre[:, None]
        if dim == 2:
            offset[2] = 0.0
        if kind == "tangential":
            offset = np.stack([-offset[1], offset[0], np.zeros_like(offset[0])])
        else:
            offset = -offset
        length = np.maximum(np.linalg.norm(offset, axis=0), 1e-300)
        return amplitude * offset / length

    return motion


def _part(motion: Motion, components: slice | int) -> Motion:
    """The components of a driver's motion one problem solves for."""
    if callable(motion):
        return lambda x: motion(x)[components]
    return motion[components]


def _sample(
    spec: PhantomSpec,
    mesh: dolfinx.mesh.Mesh,
    cell_tags: dolfinx.mesh.MeshTags,
    solutions: dict[str, Solution],
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray]:
    """Displacement (N, 3), region labels (N,) and inside mask (N,) at the voxel centres, on
    rank 0; 3D voxels average the field over the slice thickness (points inside the tissue)."""
    centres = spec.grid.pixel_centres()
    offsets = _slice_offsets(spec)
    centre_sampler = PointSampler(mesh, centres)
    labels = centre_sampler.cell_values(cell_region_tags(mesh, cell_tags))
    if len(offsets) == 1:
        sampler, counts = centre_sampler, None
    else:
        points = (centres[:, None, :] + offsets[None, :, :]).reshape(-1, 3)
        sampler = PointSampler(mesh, points)
        counts = sampler.inside.reshape(len(centres), len(offsets)).sum(axis=1)
    values = [sampler.evaluate(solution.field) for solution in solutions.values()]
    if mesh.comm.rank != 0:
        return None, None, centre_sampler.inside
    displacement = np.concatenate(values, axis=1)  # 2D: (x, y) then z; 3D: (x, y, z)
    if counts is not None:
        summed = displacement.reshape(len(centres), len(offsets), 3).sum(axis=1)
        displacement = summed / np.maximum(counts, 1)[:, None]
    displacement[~centre_sampler.inside] = 0
    return displacement, labels[:, 0], centre_sampler.inside


def _modulus_field(spec: PhantomSpec, phantom_dir: Path) -> np.ndarray | None:
    """The smooth G* multiplier of the phantom (None when it has none)."""
    if spec.modulus_field is None:
        return None
    path = phantom_dir / spec.modulus_field.file
    try:
        values = np.load(path)
    except (OSError, ValueError) as error:
        raise UserError(
            f"{phantom_dir}: cannot read the modulus field {path.name} ({error})"
        ) from None
    if values.shape != tuple(spec.modulus_field.shape) or not np.all(np.isfinite(values)):
        raise UserError(f"{path}: modulus field does not match its description in phantom.json")
    return values


def _cell_multiplier(
    spec: PhantomSpec,
    field: np.ndarray | None,
    mesh: dolfinx.mesh.Mesh,
    cell_tags: dolfinx.mesh.MeshTags,
) -> np.ndarray | None:
    """The field at every local cell's midpoint for the regions it applies to, else 1."""
    if field is None:
        return None
    tdim = mesh.topology.dim
    index_map = mesh.topology.index_map(tdim)
    cells = np.arange(index_map.size_local + index_map.num_ghosts, dtype=np.int32)
    midpoints = dolfinx.mesh.compute_midpoints(mesh, tdim, cells)
    applies = np.isin(cell_region_tags(mesh, cell_tags), spec.modulus_field.region_tags)
    return np.where(applies, sample_field(spec.modulus_field, field, midpoints), 1.0)


def _slice_offsets(spec: PhantomSpec) -> np.ndarray:
    thickness = spec.grid.slice_thickness_m
    if spec.dim == 2 or not thickness:
        return np.zeros((1, 3))
    z = ((np.arange(SLICE_POINTS) + 0.5) / SLICE_POINTS - 0.5) * thickness
    return np.column_stack([np.zeros_like(z), np.zeros_like(z), z])


def _solver_facts(
    mesh: dolfinx.mesh.Mesh,
    solutions: dict[str, Solution],
    options: SolverOptions,
    timings: dict[str, float],
) -> dict:
    elements = {
        "antiplane": "P2",
        "plane_strain": "P2/P1 Taylor-Hood",
        "elastic": "P2/P1 Taylor-Hood",
    }
    return {
        "dofs": {name: solution.dofs for name, solution in solutions.items()},
        "iterations": {name: solution.iterations for name, solution in solutions.items()},
        "cells": mesh.topology.index_map(mesh.topology.dim).size_global,
        "ranks": mesh.comm.size,
        "seconds": {key: round(value, 4) for key, value in timings.items()},
        "versions": {**versions(), "dime_pipeline": __version__},
        "elements": {name: elements[name] for name in solutions},
        "linear_solver": options.kind,
        "factorisation": ("LDLT" if options.symmetric else "LU")
        if options.kind == "direct"
        else None,
        "restart": options.restart if options.kind == "iterative" else None,
        "boundary": "first-order absorbing (Lysmer-Kuhlemeyer) where the outer boundary is "
        "absorbing; traction-free where it is free; drivers prescribed",
    }


def _assemble_sample(
    spec: PhantomSpec,
    displacement: np.ndarray,
    labels: np.ndarray,
    inside: np.ndarray,
    solver_facts: dict,
) -> Sample:
    shape = spec.grid.shape
    modulus = np.zeros(labels.shape, dtype=complex)
    for region in spec.regions:
        modulus[labels == region.tag] = region.shear_modulus
    voxel = [spec.grid.voxel_size_m] * 2
    if spec.dim == 3:
        voxel = [spec.grid.slice_spacing_m, *voxel]
    attrs = {
        "family": spec.family,
        "seed": spec.seed,
        "dim": spec.dim,
        "frequency_hz": spec.frequency_hz,
        "voxel_size_m": voxel,
        # Inversions take one density: the median over the tissue voxels (regions may differ).
        "density_kg_m3": _median_density(spec, labels[inside]),
        "config_hash": spec.config_hash,
        "components": ["x", "y", "z"],
        "units": {"displacement": "m", "modulus": "Pa"},
        "convention": "u(x,t) = Re{U(x) exp(i omega t)}; G* = G' + i G''",
        "regions": [region.__dict__ for region in spec.regions],
        "driver": spec.driver.__dict__,  # the first; every one under "drivers"
        "drivers": [driver.__dict__ for driver in spec.drivers],
        "wave_pattern": spec.wave_pattern,
        "boundary": _boundary_facts(spec),
        "solver": solver_facts,
    }
    return Sample(
        displacement=displacement.T.reshape(3, *shape),
        modulus=modulus.reshape(shape),
        mask=inside.reshape(shape),
        labels=labels.reshape(shape).astype(np.int16),
        attrs=attrs,
    )


def _boundary_facts(spec: PhantomSpec) -> dict:
    """The outer boundary's kinds: the facet groups and where the free parts lie."""
    boundary = spec.geometry.get("boundary", {"rest": "absorbing"})
    return {
        "facet_tags": dict(spec.boundary_tags),
        "rest": None if spec.driver.whole_outline else boundary["rest"],
        "free_arcs": boundary.get("free_arcs", []),
        "free_patches": boundary.get("free_patches", []),
    }


def _median_density(spec: PhantomSpec, tissue_labels: np.ndarray) -> float:
    density = {region.tag: region.density_kg_m3 for region in spec.regions}
    values = [density[tag] for tag in tissue_labels.tolist() if tag in density]
    return float(np.median(values)) if values else spec.regions[0].density_kg_m3
