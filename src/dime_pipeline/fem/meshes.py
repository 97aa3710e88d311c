"""Structured boxes with tagged sides, for verification problems and benchmarks.

Side tags: x-min 1, x-max 2, y-min 3, y-max 4, z-min 5, z-max 6.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dime_pipeline.fem.backend import MPI, dolfinx

SIDES = {"xmin": 1, "xmax": 2, "ymin": 3, "ymax": 4, "zmin": 5, "zmax": 6}


def tagged_box(
    lower: Sequence[float],
    upper: Sequence[float],
    cells: Sequence[int],
    comm: MPI.Comm = MPI.COMM_WORLD,
) -> tuple[dolfinx.mesh.Mesh, dolfinx.mesh.MeshTags]:
    """A triangle (2D) or tetrahedron (3D) mesh of the box, and its side facet tags."""
    dim = len(lower)
    if dim == 2:
        mesh = dolfinx.mesh.create_rectangle(comm, [list(lower), list(upper)], list(cells))
    else:
        mesh = dolfinx.mesh.create_box(
            comm, [list(lower), list(upper)], list(cells), dolfinx.mesh.CellType.tetrahedron
        )
    fdim = dim - 1
    facets, values = [], []
    for axis in range(dim):
        for side, bound in enumerate((lower[axis], upper[axis])):
            found = dolfinx.mesh.locate_entities_boundary(
                mesh, fdim, lambda x, a=axis, b=bound: np.isclose(x[a], b)
            )
            facets.append(found)
            values.append(np.full(len(found), 2 * axis + side + 1, dtype=np.int32))
    facets_all, values_all = np.concatenate(facets), np.concatenate(values)
    # Edges and corners belong to several sides: keep the first tag (facets are unique per side
    # in practice, since a facet lies in one plane).
    unique, first = np.unique(facets_all, return_index=True)
    return mesh, dolfinx.mesh.meshtags(mesh, fdim, unique, values_all[first])


def uniform_medium(
    mesh: dolfinx.mesh.Mesh, shear: complex, bulk: float, density: float
):  # -> Medium (import kept local to avoid a cycle in type checking tools)
    from dime_pipeline.fem.media import medium_from_cell_values

    index_map = mesh.topology.index_map(mesh.topology.dim)
    ones = np.ones(index_map.size_local + index_map.num_ghosts)
    return medium_from_cell_values(mesh, shear * ones, bulk * ones, density * ones)
