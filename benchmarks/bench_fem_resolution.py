"""Error of the P2 harmonic solvers against exact plane waves vs elements per wavelength.

    python benchmarks/bench_fem_resolution.py [--elements 2 3 4 ...] [--loss-ratios 0.1 0.3]
        [--out benchmarks/results/fem_resolution.json]

A channel [0, L] × [0, λ] with L = 6 λ: the driver at x = 0 prescribes the wave, the first-order
absorbing boundary at x = L is exact at normal incidence, so the only error left is the
discretisation's (interpolation and the phase error that accumulates along the channel). Six
wavelengths is the longest path in the default study: a tissue outline spans at most the 96 mm
field of view, and the shortest shear wavelength (G' = 1 kPa, 70 Hz) is 14.3 mm.

Cases: anti-plane shear W = exp(−ikx) and the plane-strain shear wave U = (0, exp(−ikx)) at
K/G = 10⁶ (walls on rollers U_x = 0), each at loss ratios G''/G' of 0.1 and 0.3, on the
structured mesh of ``tagged_box`` and on an unstructured gmsh mesh sized like the pipeline's
(``Mesh.MeshSizeMax`` = h, ``Mesh.MeshSizeMin`` = h/2, fixed seed), h = λ / (elements per
wavelength), λ = 2π / Re(k).

Error: max over a grid of points of |U_h − U| / max |U| (as in tests/test_fem_planewaves.py); the
JSON also holds the pointwise max |U_h − U| / |U|, which does not credit the damping for hiding
the phase error far from the driver. tests/test_fem_resolution.py checks two points of this table.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from common import machine, write_report

from dime_pipeline.fem.backend import MPI, dolfinx, versions
from dime_pipeline.fem.meshes import SIDES, tagged_box, uniform_medium
from dime_pipeline.fem.sampling import PointSampler
from dime_pipeline.fem.solvers import Boundary, solve_antiplane, solve_elastic

STORAGE, RHO, FREQUENCY = 2000.0, 1000.0, 60.0  # the result depends only on the ratios below
OMEGA = 2 * np.pi * FREQUENCY
LENGTH_WAVELENGTHS = 6.0
HEIGHT_WAVELENGTHS = 1.0
BULK_OVER_SHEAR = 1e6
TOLERANCE = 0.01
MARGIN = 2.0  # the recommended resolution keeps the worst error below TOLERANCE / MARGIN
ELEMENTS = (2, 3, 4, 5, 6, 7, 8, 10, 12, 16)
LOSS_RATIOS = (0.1, 0.3)
PHYSICS = ("antiplane", "plane_strain")
MESHES = ("structured", "unstructured")


@dataclass(frozen=True)
class Case:
    physics: str  # "antiplane" or "plane_strain"
    loss_ratio: float
    mesh: str  # "structured" or "unstructured"

    @property
    def shear(self) -> complex:
        return STORAGE * (1 + 1j * self.loss_ratio)

    @property
    def wavenumber(self) -> complex:
        return OMEGA * np.sqrt(RHO / self.shear)  # Im(k) < 0: exp(−ikx) decays along +x

    @property
    def wavelength(self) -> float:
        return float(2 * np.pi / self.wavenumber.real)


def channel_mesh(
    case: Case, elements_per_wavelength: float, comm: MPI.Comm = MPI.COMM_WORLD
) -> tuple[dolfinx.mesh.Mesh, dolfinx.mesh.MeshTags]:
    """The channel, side tags as in ``meshes.SIDES``."""
    length = LENGTH_WAVELENGTHS * case.wavelength
    height = HEIGHT_WAVELENGTHS * case.wavelength
    size = case.wavelength / elements_per_wavelength
    if case.mesh == "structured":
        cells = [max(1, round(length / size)), max(1, round(height / size))]
        return tagged_box([0.0, 0.0], [length, height], cells, comm)
    return _gmsh_channel(length, height, size, comm)


def _gmsh_channel(
    length: float, height: float, size: float, comm: MPI.Comm
) -> tuple[dolfinx.mesh.Mesh, dolfinx.mesh.MeshTags]:
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.option.setNumber("Mesh.RandomSeed", 1)
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)  # as phantoms/meshing.py
        gmsh.option.setNumber("Mesh.MeshSizeMin", 0.5 * size)
        if comm.rank == 0:
            surface = gmsh.model.occ.addRectangle(0.0, 0.0, 0.0, length, height)
            gmsh.model.occ.synchronize()
            gmsh.model.addPhysicalGroup(2, [surface], tag=1)
            for _, curve in gmsh.model.getEntities(1):
                x, y, _ = gmsh.model.occ.getCenterOfMass(1, curve)
                side = (
                    ("xmin" if x < 0.5 * length else "xmax")
                    if abs(y - 0.5 * height) < 1e-9 * length
                    else ("ymin" if y < 0.5 * height else "ymax")
                )
                gmsh.model.addPhysicalGroup(1, [curve], tag=SIDES[side])
            gmsh.model.mesh.generate(2)
        data = dolfinx.io.gmsh.model_to_mesh(gmsh.model, comm, 0, gdim=2)
    finally:
        gmsh.finalize()
    return data.mesh, data.facet_tags


def sample_points(case: Case) -> np.ndarray:
    """(N, 3): 97 points per wavelength along x (not aligned with the P2 nodes, where the error
    is superconvergent), 5 heights across the channel."""
    length = LENGTH_WAVELENGTHS * case.wavelength
    height = HEIGHT_WAVELENGTHS * case.wavelength
    x = np.linspace(0.0, length, round(97 * LENGTH_WAVELENGTHS) + 1)
    y = np.linspace(0.05, 0.95, 5) * height
    xx, yy = np.meshgrid(x, y)
    return np.column_stack([xx.ravel(), yy.ravel(), np.zeros(xx.size)])


def run_case(
    case: Case, elements_per_wavelength: float, jit_cache: Path | None = None
) -> dict[str, float] | None:
    """Solve one case; rank 0 gets the errors, dofs and solve seconds, other ranks None."""
    mesh, tags = channel_mesh(case, elements_per_wavelength)
    medium = uniform_medium(mesh, case.shear, BULK_OVER_SHEAR * abs(case.shear), RHO)
    jit_options = {"cache_dir": str(jit_cache)} if jit_cache else None
    left, right = SIDES["xmin"], SIDES["xmax"]
    start = time.perf_counter()
    if case.physics == "antiplane":
        boundary = Boundary(prescribed={left: 1.0}, absorbing=[right])
        solution = solve_antiplane(medium, OMEGA, tags, boundary, jit_options=jit_options)
    else:
        walls = (SIDES["ymin"], SIDES["ymax"])
        boundary = Boundary(
            prescribed={left: (0.0, 1.0)},
            absorbing=[right],
            fixed_components=dict.fromkeys(walls, 0),
        )
        solution = solve_elastic(medium, OMEGA, tags, boundary, jit_options=jit_options)
    seconds = time.perf_counter() - start
    points = sample_points(case)
    values = PointSampler(mesh, points).evaluate(solution.field)
    cells = mesh.topology.index_map(mesh.topology.dim).size_global
    if mesh.comm.rank != 0:
        return None
    wave = np.exp(-1j * case.wavenumber * points[:, 0])
    exact = wave[:, None] if case.physics == "antiplane" else np.column_stack([0 * wave, wave])
    difference = np.linalg.norm(values - exact, axis=1)
    magnitude = np.linalg.norm(exact, axis=1)
    return {
        "elements_per_wavelength": float(elements_per_wavelength),
        "error": float(difference.max() / magnitude.max()),
        "pointwise_error": float(np.max(difference / magnitude)),
        "dofs": int(solution.dofs),
        "cells": int(cells),
        "solve_seconds": seconds,
    }


def recommend(results: list[dict]) -> int:
    """Smallest tried resolution whose worst error over all cases is below TOLERANCE / MARGIN,
    with every finer resolution tried also below it."""
    by_resolution: dict[float, float] = {}
    for case in results:
        for row in case["rows"]:
            resolution = row["elements_per_wavelength"]
            by_resolution[resolution] = max(by_resolution.get(resolution, 0.0), row["error"])
    passing = [n for n in sorted(by_resolution) if by_resolution[n] < TOLERANCE / MARGIN]
    candidates = [n for n in passing if all(m in passing for m in by_resolution if m >= n)]
    return int(min(candidates)) if candidates else -1


def main(argv: list[str] | None = None) -> dict[str, object] | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elements", type=float, nargs="+", default=list(ELEMENTS))
    parser.add_argument("--loss-ratios", type=float, nargs="+", default=list(LOSS_RATIOS))
    parser.add_argument("--physics", nargs="+", choices=PHYSICS, default=list(PHYSICS))
    parser.add_argument("--meshes", nargs="+", choices=MESHES, default=list(MESHES))
    parser.add_argument(
        "--jit-cache",
        type=Path,
        default=Path(os.environ.get("DIME_JIT_CACHE", "~/.cache/dime-pipeline/fenics")),
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "fem_resolution.json"
    )
    args = parser.parse_args(argv)
    jit_cache = args.jit_cache.expanduser()
    rank0 = MPI.COMM_WORLD.rank == 0

    results = []
    for physics in args.physics:
        for loss_ratio in args.loss_ratios:
            for mesh in args.meshes:
                case = Case(physics, loss_ratio, mesh)
                run_case(case, 4, jit_cache)  # warm-up: JIT compilation out of the timings
                rows = [run_case(case, n, jit_cache) for n in args.elements]
                if rank0:
                    results.append({"physics": physics, "loss_ratio": loss_ratio, "mesh": mesh})
                    results[-1]["rows"] = rows
                    _print_case(results[-1])
    if not rank0:
        return None
    report = {
        "benchmark": "fem_resolution",
        "description": __doc__.splitlines()[0],
        "element": "P2 (anti-plane), P2/P1 Taylor-Hood (plane strain)",
        "channel_wavelengths": [LENGTH_WAVELENGTHS, HEIGHT_WAVELENGTHS],
        "storage_modulus_pa": STORAGE,
        "density_kg_m3": RHO,
        "frequency_hz": FREQUENCY,
        "bulk_over_shear": BULK_OVER_SHEAR,
        "error_definition": "max |U_h - U| / max |U| on 583 x 5 points",
        "tolerance": TOLERANCE,
        "margin": MARGIN,
        "recommended_elements_per_wavelength": recommend(results),
        "cases": results,
        "machine": machine(ranks=MPI.COMM_WORLD.size, **versions()),
    }
    write_report(args.out, report)
    print(
        f"recommended elements per wavelength: {report['recommended_elements_per_wavelength']}"
        f" (worst error < {TOLERANCE / MARGIN:.1%} over all cases)"
    )
    return report


def _print_case(case: dict) -> None:
    print(f"\n{case['physics']}, loss ratio {case['loss_ratio']}, {case['mesh']} mesh")
    print(f"{'el/λ':>6} {'error':>9} {'pointwise':>10} {'dofs':>8} {'solve s':>8}")
    for row in case["rows"]:
        print(
            f"{row['elements_per_wavelength']:6.0f} {row['error']:9.2e} "
            f"{row['pointwise_error']:10.2e} {row['dofs']:8d} {row['solve_seconds']:8.3f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
