"""The one place that imports dolfinx, honouring the pip wheel's import order.

The ``dolfinx-solver-complex`` wheel needs ``import dolfinx_solver`` before ``import dolfinx``
(it loads the bundled PETSc); conda-forge installs have no such module and need nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
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

from dime_pipeline.errors import UserError, one_line

if not np.issubdtype(PETSc.ScalarType, np.complexfloating):
    raise ImportError(
        "dime-pipeline needs PETSc built with complex scalars (pip: dolfinx-solver-complex; "
        "conda-forge: petsc=*=*complex*)"
    )

__all__ = ["MPI", "PETSc", "checked_jit_options", "dolfinx", "read_mesh", "versions"]

log = logging.getLogger(__name__)


def checked_jit_options(jit_cache: str | Path) -> dict[str, str]:
    """FFCx options for the JIT cache folder ``jit_cache``, created if missing, after checking
    that nobody else can plant a module there: every solve loads the compiled shared objects
    it finds in it, so a file put there by another user would run as ours. A folder that
    others can write (or an ancestor others can rename it in) is refused; a group-writable one
    is allowed with a warning (on systems with a private group per user it is common)."""
    folder = Path(jit_cache).expanduser().resolve()
    try:
        folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        mode = folder.stat().st_mode
    except OSError as error:
        raise UserError(f"JIT cache {folder}: cannot create it ({one_line(error)})") from None
    if folder.stat().st_uid not in (os.getuid(), 0):
        raise UserError(
            f"JIT cache {folder} belongs to another user: the modules it holds would run in "
            "every solve; use a folder of your own (--jit-cache, solver.jit_cache)"
        )
    if mode & stat.S_IWOTH:
        raise UserError(
            f"JIT cache {folder} is writable by every user (mode {stat.filemode(mode)}): a "
            "module planted there would run in every solve; `chmod o-w` it or use another "
            "folder (--jit-cache, solver.jit_cache)"
        )
    for parent in folder.parents:
        parent_mode = parent.stat().st_mode
        if parent_mode & stat.S_IWOTH and not parent_mode & stat.S_ISVTX:
            raise UserError(
                f"JIT cache {folder}: its folder {parent} is writable by every user without "
                "the sticky bit, so anyone can replace the cache; use another folder"
            )
    if mode & stat.S_IWGRP:
        log.warning(
            "JIT cache %s is group-writable (mode %s): members of its group could plant "
            "modules that every solve runs",
            folder,
            stat.filemode(mode),
        )
    return {"cache_dir": str(folder)}


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
            try:
                gmsh.open(str(msh_path))
            except Exception as error:  # gmsh raises plain Exceptions; rank 0 ends the job
                raise UserError(
                    f"{msh_path}: not a readable gmsh mesh ({one_line(error)})"
                ) from None
        data = dolfinx.io.gmsh.model_to_mesh(gmsh.model, comm, 0, gdim=gdim)
    finally:
        gmsh.finalize()
    return data.mesh, data.cell_tags, data.facet_tags
