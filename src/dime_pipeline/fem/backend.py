"""The one place that imports dolfinx, honouring the pip wheel's import order.

The ``dolfinx-solver-complex`` wheel needs ``import dolfinx_solver`` before ``import dolfinx``
(it loads the bundled PETSc); conda-forge installs have no such module and need nothing.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # MPI ranks own the cores; no nested threading

with contextlib.suppress(ImportError):
    import dolfinx_solver  # noqa: F401

import dolfinx
import dolfinx.fem.petsc
import dolfinx.io.gmsh
import numpy as np
from mpi4py import MPI
from petsc4py import PETSc

if not np.issubdtype(PETSc.ScalarType, np.complexfloating):
    raise ImportError(
        "dime-pipeline needs PETSc built with complex scalars (pip: dolfinx-solver-complex; "
        "conda-forge: petsc=*=*complex*)"
    )

__all__ = ["MPI", "PETSc", "dolfinx", "read_mesh", "versions"]


def versions() -> dict[str, str]:
    """Versions of the numerical stack, for provenance in sample stores."""
    import gmsh

    petsc = ".".join(str(v) for v in PETSc.Sys.getVersion())
    return {"dolfinx": dolfinx.__version__, "petsc": petsc, "gmsh": gmsh.__version__}


def read_mesh(
    msh_path: Path, comm: MPI.Comm, gdim: int
) -> tuple[dolfinx.mesh.Mesh, dolfinx.mesh.MeshTags, dolfinx.mesh.MeshTags]:
    """Read a gmsh file on rank 0 and distribute it: (mesh, cell tags, facet tags).

    gmsh stays silent (its messages would interleave with our logs on every rank).
    """
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        if comm.rank == 0:
            gmsh.open(str(msh_path))
        data = dolfinx.io.gmsh.model_to_mesh(gmsh.model, comm, 0, gdim=gdim)
    finally:
        gmsh.finalize()
    return data.mesh, data.cell_tags, data.facet_tags
