"""Voxel sampling: the fast simplex locator agrees with dolfinx's exact test, values are exact
for fields the elements represent, and the tissue mask follows the mesh."""

from __future__ import annotations

import numpy as np
import pytest

from dime_pipeline.fem.backend import dolfinx
from dime_pipeline.fem.meshes import tagged_box
from dime_pipeline.fem.sampling import PointSampler, _first_containing_simplex, _first_link


@pytest.mark.parametrize("dim", [2, 3])
def test_fast_locator_agrees_with_gjk(dim):
    mesh, _ = tagged_box([0.0] * dim, [1.0] * dim, [7] * dim)
    rng = np.random.default_rng(1)
    points = np.zeros((400, 3))
    points[:, :dim] = rng.uniform(-0.2, 1.2, size=(400, dim))  # some outside the box
    tdim = mesh.topology.dim
    tree = dolfinx.geometry.bb_tree(mesh, tdim)
    candidates = dolfinx.geometry.compute_collisions_points(tree, points)
    fast = _first_containing_simplex(mesh, candidates, points)
    exact = dolfinx.geometry.compute_colliding_cells(mesh, candidates, points)
    reference = _first_link(exact.offsets, exact.array)
    np.testing.assert_array_equal(fast >= 0, reference >= 0)
    for index in np.flatnonzero(fast >= 0):  # a point on a facet may pick either neighbour
        assert fast[index] in exact.links(index)


def test_quadratic_field_is_sampled_exactly():
    mesh, _ = tagged_box([0.0, 0.0], [1.0, 1.0], [6, 6])
    space = dolfinx.fem.functionspace(mesh, ("Lagrange", 2))
    field = dolfinx.fem.Function(space)
    field.interpolate(lambda x: (x[0] ** 2 - 2j * x[0] * x[1] + x[1]).astype(complex))
    points = np.column_stack([np.linspace(0.05, 0.95, 30), np.linspace(0.9, 0.1, 30), np.zeros(30)])
    sampler = PointSampler(mesh, points)
    values = sampler.evaluate(field)
    if mesh.comm.rank == 0:
        expected = points[:, 0] ** 2 - 2j * points[:, 0] * points[:, 1] + points[:, 1]
        np.testing.assert_allclose(values[:, 0], expected, atol=1e-12)
        assert sampler.inside.all()
