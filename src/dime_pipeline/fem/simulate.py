"""``simulate``: solve one phantom and write its sample store (all ranks solve, rank 0 writes).

2D stores hold three displacement components (x, y, z): in-plane motion from plane strain and
the out-of-plane motion from anti-plane shear, both driven by the same driver vector.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from dime_pipeline import __version__
from dime_pipeline.errors import UserError
from dime_pipeline.fem.backend import MPI, read_mesh, versions
from dime_pipeline.fem.media import cell_region_tags, medium_from_regions
from dime_pipeline.fem.sampling import PointSampler
from dime_pipeline.fem.solvers import Boundary, SolverError, solve_antiplane, solve_elastic
from dime_pipeline.phantoms.spec import ABSORBING_TAG, DRIVER_TAG, MESH_FILE, PhantomSpec, read_spec
from dime_pipeline.store import Sample, write_sample

log = logging.getLogger(__name__)


def simulate(phantom_dir: Path, out: Path, jit_cache: Path) -> None:
    """Solve the phantom in ``phantom_dir`` on ``MPI.COMM_WORLD`` and write ``out``."""
    comm = MPI.COMM_WORLD
    spec = read_spec(phantom_dir)
    if spec.dim != 2:
        raise UserError(f"{phantom_dir}: only 2D phantoms can be simulated so far")
    jit_options = {"cache_dir": str(Path(jit_cache).resolve())}
    timings: dict[str, float] = {}

    start = time.perf_counter()
    mesh, cell_tags, facet_tags = read_mesh(Path(phantom_dir) / MESH_FILE, comm, gdim=2)
    medium = medium_from_regions(mesh, cell_tags, spec.regions)
    timings["mesh"] = time.perf_counter() - start

    amplitude, direction = spec.driver.amplitude_m, np.asarray(spec.driver.direction)
    omega = spec.angular_frequency
    try:
        start = time.perf_counter()
        in_plane = solve_elastic(
            medium,
            omega,
            facet_tags,
            Boundary(prescribed={DRIVER_TAG: amplitude * direction[:2]}, absorbing=[ABSORBING_TAG]),
            jit_options=jit_options,
        )
        timings["plane_strain"] = time.perf_counter() - start
        start = time.perf_counter()
        out_of_plane = solve_antiplane(
            medium,
            omega,
            facet_tags,
            Boundary(prescribed={DRIVER_TAG: amplitude * direction[2]}, absorbing=[ABSORBING_TAG]),
            jit_options=jit_options,
        )
        timings["antiplane"] = time.perf_counter() - start
    except SolverError as error:
        raise UserError(f"simulation of {phantom_dir} failed: {error}") from None

    start = time.perf_counter()
    sampler = PointSampler(mesh, spec.grid.pixel_centres())
    u_xy = sampler.evaluate(in_plane.field)
    u_z = sampler.evaluate(out_of_plane.field)
    labels = sampler.cell_values(cell_region_tags(mesh, cell_tags))
    timings["sample"] = time.perf_counter() - start

    if comm.rank == 0:
        solver_facts = {
            "dofs": {"plane_strain": in_plane.dofs, "antiplane": out_of_plane.dofs},
            "cells": mesh.topology.index_map(mesh.topology.dim).size_global,
            "ranks": comm.size,
            "seconds": {k: round(v, 4) for k, v in timings.items()},
            "versions": {**versions(), "dime_pipeline": __version__},
            "elements": {"plane_strain": "P2/P1 Taylor-Hood", "antiplane": "P2"},
            "boundary": "first-order absorbing (Lysmer-Kuhlemeyer)",
        }
        start = time.perf_counter()
        sample = _assemble_sample(spec, u_xy, u_z, labels[:, 0], sampler.inside, solver_facts)
        write_sample(out, sample)
        log.info("wrote %s in %.2f s", out, time.perf_counter() - start)


def _assemble_sample(
    spec: PhantomSpec,
    u_xy: np.ndarray,
    u_z: np.ndarray,
    labels: np.ndarray,
    inside: np.ndarray,
    solver_facts: dict,
) -> Sample:
    shape = spec.grid.shape
    displacement = np.concatenate([u_xy, u_z], axis=1).T.reshape(3, *shape)
    modulus = np.zeros(labels.shape, dtype=complex)
    for region in spec.regions:
        modulus[labels == region.tag] = region.shear_modulus
    attrs = {
        "family": spec.family,
        "seed": spec.seed,
        "dim": spec.dim,
        "frequency_hz": spec.frequency_hz,
        "voxel_size_m": [spec.grid.voxel_size_m] * 2,
        "density_kg_m3": spec.regions[0].density_kg_m3,
        "config_hash": spec.config_hash,
        "components": ["x", "y", "z"],
        "units": {"displacement": "m", "modulus": "Pa"},
        "convention": "u(x,t) = Re{U(x) exp(i omega t)}; G* = G' + i G''",
        "regions": [region.__dict__ for region in spec.regions],
        "driver": spec.driver.__dict__,
        "solver": solver_facts,
    }
    return Sample(
        displacement=displacement,
        modulus=modulus.reshape(shape),
        mask=inside.reshape(shape),
        labels=labels.reshape(shape).astype(np.int16),
        attrs=attrs,
    )
