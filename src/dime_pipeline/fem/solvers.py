"""Harmonic solves: anti-plane shear (scalar P2) and plane strain (Taylor–Hood P2/P1), MUMPS LU.

Boundary data are given per facet tag: ``prescribed`` displacements (the driver), ``absorbing``
tags (Lysmer–Kuhlemeyer), and optional ``fixed_components`` (tag → displacement component held at
zero, e.g. rollers). Untagged boundaries are traction-free.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import basix.ufl
import numpy as np
import ufl

from dime_pipeline.fem.backend import PETSc, dolfinx
from dime_pipeline.fem.forms import antiplane_form, mixed_elastic_form
from dime_pipeline.fem.media import Medium

DIRECT_SOLVER = {
    "ksp_type": "preonly",
    "pc_type": "lu",
    "pc_factor_mat_solver_type": "mumps",
    "mat_mumps_icntl_14": 80,  # extra workspace: pivoting in the saddle-point system needs it
    "mat_mumps_icntl_24": 1,  # detect null pivots instead of failing silently
}


class SolverError(RuntimeError):
    """The linear solve did not converge or produced non-finite values."""


@dataclass
class Solution:
    field: dolfinx.fem.Function
    dofs: int


def solve_antiplane(
    medium: Medium,
    omega: float,
    facet_tags: dolfinx.mesh.MeshTags,
    prescribed: Mapping[int, complex],
    absorbing: Sequence[int],
    jit_options: dict | None = None,
    degree: int = 2,
) -> Solution:
    """Out-of-plane displacement W for a medium that does not vary along z."""
    mesh = medium.mesh
    space = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
    ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)
    form = antiplane_form(space, medium, omega, ds, absorbing)
    bcs = [
        _constant_bc(space, None, facet_tags, tag, np.array(value, dtype=complex))
        for tag, value in prescribed.items()
    ]
    field = _solve(form, space, bcs, "dime_antiplane_", jit_options)
    return Solution(field=field, dofs=space.dofmap.index_map.size_global)


def solve_plane_strain(
    medium: Medium,
    omega: float,
    facet_tags: dolfinx.mesh.MeshTags,
    prescribed: Mapping[int, Sequence[complex]],
    absorbing: Sequence[int],
    fixed_components: Mapping[int, int] | None = None,
    jit_options: dict | None = None,
) -> Solution:
    """In-plane displacement (U_x, U_y) from the mixed displacement–pressure form."""
    mesh = medium.mesh
    cell = mesh.basix_cell()
    vector = basix.ufl.element("Lagrange", cell, 2, shape=(mesh.geometry.dim,))
    scalar = basix.ufl.element("Lagrange", cell, 1)
    space = dolfinx.fem.functionspace(mesh, basix.ufl.mixed_element([vector, scalar]))
    ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)
    form = mixed_elastic_form(space, medium, omega, ds, absorbing)
    displacement_space = space.sub(0)
    bcs = [
        _constant_bc(space.sub(0), None, facet_tags, tag, np.asarray(value, dtype=complex))
        for tag, value in prescribed.items()
    ]
    for tag, component in (fixed_components or {}).items():
        bcs.append(_constant_bc(displacement_space, component, facet_tags, tag, np.array(0j)))
    mixed = _solve(form, space, bcs, "dime_plane_strain_", jit_options)
    displacement = mixed.sub(0).collapse()
    dofs = space.dofmap.index_map.size_global * space.dofmap.index_map_bs
    return Solution(field=displacement, dofs=dofs)


def _constant_bc(
    space: dolfinx.fem.FunctionSpace,
    component: int | None,
    facet_tags: dolfinx.mesh.MeshTags,
    tag: int,
    value: np.ndarray,
) -> dolfinx.fem.DirichletBC:
    """Dirichlet condition ``value`` on facets ``tag`` for ``space`` (or one of its components)."""
    target = space if component is None else space.sub(component)
    fdim = space.mesh.topology.dim - 1
    facets = facet_tags.find(tag)
    constant = np.asarray(value, dtype=complex).reshape(-1, 1)
    if not target.component():  # a whole space: the data live on it directly
        data = dolfinx.fem.Function(target)
        data.interpolate(lambda x: np.broadcast_to(constant, (constant.shape[0], x.shape[1])))
        return dolfinx.fem.dirichletbc(
            data, dolfinx.fem.locate_dofs_topological(target, fdim, facets)
        )
    collapsed, _ = target.collapse()
    dofs = dolfinx.fem.locate_dofs_topological((target, collapsed), fdim, facets)
    data = dolfinx.fem.Function(collapsed)
    data.interpolate(lambda x: np.broadcast_to(constant, (constant.shape[0], x.shape[1])))
    return dolfinx.fem.dirichletbc(data, dofs, target)


def _solve(
    form: ufl.Form,
    space: dolfinx.fem.FunctionSpace,
    bcs: list,
    prefix: str,
    jit_options: dict | None,
) -> dolfinx.fem.Function:
    zero = dolfinx.fem.Constant(space.mesh, PETSc.ScalarType(0))
    test = ufl.TestFunction(space)
    rhs = ufl.inner(zero, test[0] if test.ufl_shape else test) * ufl.dx  # no body force
    problem = dolfinx.fem.petsc.LinearProblem(
        form,
        rhs,
        bcs=bcs,
        petsc_options_prefix=prefix,
        petsc_options=DIRECT_SOLVER,
        jit_options=jit_options,
    )
    result = problem.solve()
    solution = result[0] if isinstance(result, tuple) else result
    reason = problem.solver.getConvergedReason()
    if reason < 0:
        raise SolverError(f"linear solver failed (PETSc KSP reason {reason})")
    if not np.all(np.isfinite(solution.x.array)):
        raise SolverError("linear solve produced non-finite values")
    return solution
