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
        colliding = dolfinx.geometry.compute_colliding_cells(mesh, candidates, points)
        counts = np.diff(colliding.offsets)
        found = counts > 0
        first_cell = np.full(self.num_points, -1, dtype=np.int32)
        first_cell[found] = colliding.array[colliding.offsets[:-1][found]]
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
