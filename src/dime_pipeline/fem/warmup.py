"""Fill the JIT cache with a study's forms before its solves start.

Every solve of a study uses the same forms (frequency and materials are form coefficients, not
literals), so one small solve per form variant compiles everything: dimension × with/without an
absorbing boundary, through the same ``solve_*`` calls as ``simulate``. Hundreds of cluster jobs
then load the kernels instead of compiling them at once (FFCx serialises compilers with a
lock file per form; a job killed while holding it would stall the others).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from dime_pipeline.fem.backend import MPI, checked_jit_options, dolfinx, read_mesh
from dime_pipeline.fem.meshes import uniform_medium
from dime_pipeline.fem.solvers import Boundary, SolverOptions, solve_antiplane, solve_elastic
from dime_pipeline.phantoms.spec import ABSORBING_TAG, DRIVER_TAG, FREE_TAG

_EDGE = 0.05  # m; the kernels do not depend on the mesh size
_OMEGA = 2 * np.pi * 60.0  # any value: ω is a form constant


def warm_jit_cache(
    dims: Iterable[int], jit_cache: Path, options: SolverOptions
) -> dict[str, float]:
    """Compile the forms of ``simulate`` for each dimension in ``dims``; seconds per variant."""
    jit_options = checked_jit_options(jit_cache)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="dime-warm-up-") as tmp:
        _warm(sorted(set(dims)), Path(tmp), options, jit_options, seconds)
    return seconds


def _warm(
    dims: list[int], folder: Path, options: SolverOptions, jit_options: dict, seconds: dict
) -> None:
    for dim in dims:
        mesh, facet_tags = _phantom_like_box(dim, folder)
        medium = uniform_medium(mesh, 1.5e3 * (1 + 0.2j), 2.2e9, 1.0e3)
        for absorbing in ([], [ABSORBING_TAG]):
            start = time.perf_counter()
            driver = Boundary(prescribed={DRIVER_TAG: np.full(dim, 1e-6)}, absorbing=absorbing)
            solve_elastic(
                medium, _OMEGA, facet_tags, driver, options=options, jit_options=jit_options
            )
            if dim == 2:
                scalar = Boundary(prescribed={DRIVER_TAG: 1e-6}, absorbing=absorbing)
                solve_antiplane(
                    medium, _OMEGA, facet_tags, scalar, options=options, jit_options=jit_options
                )
            label = f"{dim}d_{'absorbing' if absorbing else 'free'}"
            seconds[label] = time.perf_counter() - start


def _phantom_like_box(dim: int, folder: Path) -> tuple[dolfinx.mesh.Mesh, dolfinx.mesh.MeshTags]:
    """A small gmsh box read like a phantom (the coordinate element is part of the kernels'
    signature, and gmsh meshes differ from dolfinx's built-in ones there): driver, absorbing
    and traction-free facets, on this rank alone (no communication needed)."""
    import gmsh

    path = folder / f"box-{dim}d.msh"
    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        occ = gmsh.model.occ
        body = (
            occ.addRectangle(0, 0, 0, _EDGE, _EDGE)
            if dim == 2
            else occ.addBox(0, 0, 0, _EDGE, _EDGE, _EDGE)
        )
        occ.synchronize()
        facets = [tag for _, tag in gmsh.model.getBoundary([(dim, body)], oriented=False)]
        gmsh.model.addPhysicalGroup(dim, [body], 1)
        gmsh.model.addPhysicalGroup(dim - 1, facets[:1], DRIVER_TAG)
        gmsh.model.addPhysicalGroup(dim - 1, facets[1:2], ABSORBING_TAG)
        gmsh.model.addPhysicalGroup(dim - 1, facets[2:], FREE_TAG)
        gmsh.option.setNumber("Mesh.MeshSizeMax", _EDGE / 2)
        gmsh.model.mesh.generate(dim)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    mesh, _, facet_tags = read_mesh(path, MPI.COMM_SELF, gdim=dim)
    return mesh, facet_tags
