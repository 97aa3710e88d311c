"""Sampling FEM fields at voxel centres in MPI parallel.

Each point is owned by the lowest rank that has an owned cell containing it and is evaluated
there only; rank 0 gathers the values. Points in no cell are outside the tissue (mask False).
"""

from __future__ import annotations

import numpy as np

from dime_pipeline.fem.backend import MPI, dolfinx


class PointSampler:
    """Locates ``points`` (N, 3) once; evaluates any function on the same mesh many times."""

    def __init__(self, mesh: dolfinx.mesh.Mesh, points: np.ndarray) -> None:
        self.mesh = mesh
        self.comm = mesh.comm
        self.num_points = len(points)
        tdim = mesh.topology.dim
        owned_cells = np.arange(mesh.topology.index_map(tdim).size_local, dtype=np.int32)
        tree = dolfinx.geometry.bb_tree(mesh, tdim, entities=owned_cells)
        candidates = dolfinx.geometry.compute_collisions_points(tree, points)
        if mesh.geometry.cmaps[0].degree == 1 and mesh.topology.cell_name() in AFFINE_SIMPLICES:
            first_cell = _first_containing_simplex(mesh, candidates, points)
        else:  # curved cells: dolfinx's exact (GJK) test
            colliding = dolfinx.geometry.compute_colliding_cells(mesh, candidates, points)
            first_cell = _first_link(colliding.offsets, colliding.array)
        found = first_cell >= 0
        claim = np.where(found, self.comm.rank, self.comm.size).astype(np.int32)
        owner = np.empty_like(claim)
        self.comm.Allreduce(claim, owner, op=MPI.MIN)
        self.inside = owner < self.comm.size
        self.local_points = np.flatnonzero(owner == self.comm.rank)
        self.local_cells = first_cell[self.local_points]
        self._points = points[self.local_points]

    def evaluate(self, function: dolfinx.fem.Function) -> np.ndarray | None:
        """Values (N, value_size) on rank 0 (zero outside the mesh); None on other ranks."""
        local = function.eval(self._points, self.local_cells) if len(self._points) else None
        value_size = int(np.prod(function.ufl_shape)) if function.ufl_shape else 1
        local = np.zeros((0, value_size), dtype=function.x.array.dtype) if local is None else local
        return self._gather(local.reshape(-1, value_size))

    def cell_values(self, per_cell: np.ndarray) -> np.ndarray | None:
        """A per-local-cell array (e.g. region tags) at each point, gathered on rank 0."""
        local = np.asarray(per_cell)[self.local_cells].reshape(len(self.local_points), -1)
        return self._gather(local)

    def _gather(self, local: np.ndarray) -> np.ndarray | None:
        pieces = self.comm.gather((self.local_points, local), root=0)
        if self.comm.rank != 0:
            return None
        width = local.shape[1]
        result = np.zeros((self.num_points, width), dtype=local.dtype)
        for indices, values in pieces:
            result[indices] = values
        return result


AFFINE_SIMPLICES = ("triangle", "tetrahedron")
_INSIDE_TOLERANCE = 1e-10  # barycentric slack: points on a shared facet belong to both cells


def _first_link(offsets: np.ndarray, links: np.ndarray) -> np.ndarray:
    """The first entry of each row of an adjacency list, −1 for empty rows."""
    first = np.full(len(offsets) - 1, -1, dtype=np.int32)
    nonempty = np.diff(offsets) > 0
    first[nonempty] = links[offsets[:-1][nonempty]]
    return first


def _first_containing_simplex(
    mesh: dolfinx.mesh.Mesh, candidates: dolfinx.graph.AdjacencyList, points: np.ndarray
) -> np.ndarray:
    """For straight-sided simplices: the first candidate cell whose barycentric coordinates of
    the point are all ≥ 0, vectorised over every (point, candidate) pair (−1 if none).

    Much faster than the general GJK test for the 10⁴–10⁵ voxel centres of an image."""
    tdim = mesh.topology.dim
    offsets, cells = candidates.offsets, candidates.array
    point_index = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    # (pairs, tdim + 1, tdim) vertex coordinates of every candidate cell
    vertices = mesh.geometry.x[mesh.geometry.dofmaps[0][cells]][:, :, :tdim]
    edges = vertices[:, 1:, :] - vertices[:, :1, :]  # (pairs, tdim, tdim)
    rhs = points[point_index, :tdim] - vertices[:, 0, :]
    local = np.linalg.solve(np.transpose(edges, (0, 2, 1)), rhs[..., None])[..., 0]
    barycentric = np.column_stack([1.0 - local.sum(axis=1), local])
    inside = np.all(barycentric >= -_INSIDE_TOLERANCE, axis=1)
    first = np.full(len(offsets) - 1, -1, dtype=np.int32)
    hits = np.flatnonzero(inside)[::-1]  # reversed, so the first candidate of a point wins
    first[point_index[hits]] = cells[hits]
    return first
