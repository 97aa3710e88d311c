"""Harmonic solves: anti-plane shear (scalar P2) and elasticity (Taylor–Hood P2/P1, plane strain
in 2D, full 3D), with MUMPS (LDLᵀ: the forms are complex symmetric) by default or preconditioned
GMRES for large 3D problems.

Boundary data are given per facet tag (:class:`Boundary`); untagged boundaries are traction-free.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import basix.ufl
import numpy as np
import ufl

from dime_pipeline.fem.backend import PETSc, dolfinx
from dime_pipeline.fem.forms import (
    Pml,
    antiplane_form,
    component_form,
    divergence_form,
    mixed_elastic_form,
    schur_forms,
)
from dime_pipeline.fem.media import Medium
from dime_pipeline.fem.preconditioners import (
    DAMPED_AMG,
    DAMPED_AMG_STRETCHED,
    DAMPED_LU,
    PRESSURE_HELMHOLTZ,
    PRESSURE_MASS,
    BlockTriangular,
    FieldScatter,
    PressureSchur,
    configured_ksp,
)

log = logging.getLogger(__name__)

# A boundary value: a constant (scalar or vector) or a function of x (3, N) -> (value size, N).
BoundaryValue = complex | Sequence[complex] | np.ndarray | Callable[[np.ndarray], np.ndarray]
LoadHook = Callable[[ufl.Argument], ufl.Form]


@dataclass(frozen=True)
class Boundary:
    """Boundary conditions by facet tag.

    prescribed: displacement imposed on the facets (the MRE driver, or exact data in tests);
    traction: surface traction (Pa) applied on the facets (a traction driver);
    absorbing: first-order Lysmer–Kuhlemeyer condition; clamped: zero displacement;
    fixed_components: tag → displacement component held at zero (rollers).
    """

    prescribed: Mapping[int, BoundaryValue] = field(default_factory=dict)
    traction: Mapping[int, BoundaryValue] = field(default_factory=dict)
    absorbing: Sequence[int] = ()
    clamped: Sequence[int] = ()
    fixed_components: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SolverOptions:
    """``direct``: MUMPS (``ordering``: METIS 7 / PORD 4 / AMD 0 …; ``blr``: block low-rank
    compression with tolerance ``blr_tolerance``, worth it above ~10⁵ dofs in 3D). Every form
    here is complex *symmetric* (real basis functions, symmetric weak forms, Dirichlet rows and
    columns eliminated together, the PML stretching applied to both sides), so ``symmetric``
    factorises LDLᵀ: about 30 % less memory and time than LU on the 3D block.
    ``iterative``: flexible GMRES to relative residual ``rtol``. Anti-plane shear is
    preconditioned by AMG (or LU) of the damped ("shifted") operator ρω² → (1 − i·shift) ρω²;
    the displacement–pressure forms by the block preconditioner of ``preconditioners`` (AMG or
    LU of one damped scalar operator per displacement component, a compressional-Helmholtz
    Schur approximation).
    ``restart``: Krylov vectors kept (memory: 2 × restart vectors of the system's size)."""

    kind: Literal["direct", "iterative"] = "direct"
    ordering: int = 7
    symmetric: bool = True
    blr: bool = False
    blr_tolerance: float = 1e-8
    shift: float = 0.5
    rtol: float = 1e-8
    max_iterations: int = 500
    restart: int = 100
    preconditioner: Literal["lu", "gamg"] = "gamg"

    def petsc_options(self) -> dict[str, Any]:
        """The outer solver's options; for ``iterative`` without its preconditioner."""
        if self.kind == "direct":
            options = {
                "ksp_type": "preonly",
                "pc_type": "cholesky" if self.symmetric else "lu",
                "pc_factor_mat_solver_type": "mumps",
                "mat_mumps_icntl_7": self.ordering,
                "mat_mumps_icntl_14": 80,  # workspace headroom: pivoting in the saddle point
                "mat_mumps_icntl_24": 1,  # detect null pivots instead of failing silently
            }
            if self.blr:
                options |= {"mat_mumps_icntl_35": 2, "mat_mumps_cntl_7": self.blr_tolerance}
            return options
        return {
            "ksp_type": "fgmres",
            "ksp_gmres_restart": self.restart,
            "ksp_rtol": self.rtol,
            "ksp_max_it": self.max_iterations,
            "ksp_norm_type": "unpreconditioned",  # converged means the true residual is small
        }

    def damped_solver(self, stretched: bool = False) -> dict[str, Any]:
        """How a damped scalar operator (anti-plane, or one displacement component of the block
        preconditioner) is inverted; ``stretched``: the operator carries a PML."""
        if self.preconditioner == "lu":
            return DAMPED_LU
        return DAMPED_AMG_STRETCHED if stretched else DAMPED_AMG


DEFAULT_SOLVER = SolverOptions()


class SolverError(RuntimeError):
    """The linear solve did not converge or produced non-finite values."""


@dataclass
class Solution:
    field: dolfinx.fem.Function
    dofs: int
    iterations: int = 0
    seconds: dict[str, float] = field(default_factory=dict)  # compile, assemble, solve


def solve_antiplane(
    medium: Medium,
    omega: float,
    facet_tags: dolfinx.mesh.MeshTags,
    boundary: Boundary,
    *,
    pml: Pml | None = None,
    load: LoadHook | None = None,
    options: SolverOptions = DEFAULT_SOLVER,
    jit_options: dict | None = None,
    degree: int = 2,
) -> Solution:
    """Out-of-plane displacement W for a 2D medium that does not vary along z."""
    mesh = medium.mesh
    space = dolfinx.fem.functionspace(mesh, ("Lagrange", degree))
    ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)

    a = antiplane_form(space, medium, omega, ds, boundary.absorbing, pml)
    rhs = _load_form(space, ds, boundary, load)
    bcs = _dirichlet(space, None, facet_tags, boundary)

    def damped_operator() -> Preconditioner:  # ω² → (1 − i·shift) ω², by AMG or LU
        damped = omega * np.sqrt(1 - 1j * options.shift)
        form = antiplane_form(space, medium, damped, ds, boundary.absorbing, pml)
        matrix = _assembled(dolfinx.fem.form(form, jit_options=jit_options), bcs)
        solver = options.damped_solver(stretched=pml is not None)
        inner = {k: v for k, v in solver.items() if k != "ksp_type"}
        return Preconditioner(options=inner, matrix=matrix)

    preconditioner = damped_operator if options.kind == "iterative" else None
    field_, iterations, seconds = _solve(
        space, a, rhs, bcs, "antiplane", options, jit_options, preconditioner
    )
    return Solution(field_, space.dofmap.index_map.size_global, iterations, seconds)


def solve_elastic(
    medium: Medium,
    omega: float,
    facet_tags: dolfinx.mesh.MeshTags,
    boundary: Boundary,
    *,
    pml: Pml | None = None,
    load: LoadHook | None = None,
    options: SolverOptions = DEFAULT_SOLVER,
    jit_options: dict | None = None,
) -> Solution:
    """Displacement U (plane strain in 2D, 3D in 3D) from the mixed displacement–pressure form."""
    mesh = medium.mesh
    cell = mesh.basix_cell()
    vector = basix.ufl.element("Lagrange", cell, 2, shape=(mesh.geometry.dim,))
    scalar = basix.ufl.element("Lagrange", cell, 1)
    space = dolfinx.fem.functionspace(mesh, basix.ufl.mixed_element([vector, scalar]))
    ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)

    a = mixed_elastic_form(space, medium, omega, ds, boundary.absorbing, pml)
    rhs = _load_form(space, ds, boundary, load)
    bcs = _dirichlet(space, 0, facet_tags, boundary)

    def block_preconditioner() -> Preconditioner:
        return _block_preconditioner(
            space, medium, omega, facet_tags, ds, boundary, pml, options, jit_options
        )

    preconditioner = block_preconditioner if options.kind == "iterative" else None
    mixed, iterations, seconds = _solve(
        space, a, rhs, bcs, "elastic", options, jit_options, preconditioner
    )
    dofs = space.dofmap.index_map.size_global * space.dofmap.index_map_bs
    # A view of the displacement, not a collapsed copy: evaluating and integrating work on it,
    # and collapsing costs as much as sampling (3 % of a 2D sample).
    return Solution(mixed.sub(0), dofs, iterations, seconds)


def _load_form(
    space: dolfinx.fem.FunctionSpace, ds: ufl.Measure, boundary: Boundary, load: LoadHook | None
) -> ufl.Form:
    """Right-hand side: tractions, an optional extra load (body force, scattering source)."""
    v = _displacement_part(space, ufl.TestFunction(space))
    zero = dolfinx.fem.Constant(space.mesh, PETSc.ScalarType(0))
    rhs = ufl.inner(zero, v[0] if v.ufl_shape else v) * ufl.dx
    for tag, value in boundary.traction.items():
        rhs += ufl.inner(_ufl_value(space.mesh, value, v.ufl_shape), v) * ds(tag)
    if load is not None:
        rhs += load(v)
    return rhs


def _displacement_part(space: dolfinx.fem.FunctionSpace, test: ufl.Argument) -> ufl.core.expr.Expr:
    return ufl.split(test)[0] if space.num_sub_spaces == 2 else test


def _ufl_value(mesh: dolfinx.mesh.Mesh, value: BoundaryValue, shape: tuple) -> ufl.core.expr.Expr:
    if callable(value):
        raise TypeError("tractions must be constants")
    data = np.broadcast_to(np.asarray(value, dtype=PETSc.ScalarType), shape)
    return dolfinx.fem.Constant(mesh, data.copy())


def _dirichlet(
    space: dolfinx.fem.FunctionSpace,
    component: int | None,
    facet_tags: dolfinx.mesh.MeshTags,
    boundary: Boundary,
) -> list[dolfinx.fem.DirichletBC]:
    """Prescribed, clamped and roller conditions on ``space`` (or its displacement sub-space)."""
    target = space if component is None else space.sub(component)
    bcs = [
        bc
        for tag, value in boundary.prescribed.items()
        for bc in _bcs(target, facet_tags, tag, value)
    ]
    bcs += [bc for tag in boundary.clamped for bc in _bcs(target, facet_tags, tag, 0.0)]
    bcs += [
        bc
        for tag, axis in boundary.fixed_components.items()
        for bc in _bcs(target.sub(axis), facet_tags, tag, 0.0)
    ]
    return bcs


def _bcs(
    target: dolfinx.fem.FunctionSpace,
    facet_tags: dolfinx.mesh.MeshTags,
    tag: int,
    value: BoundaryValue,
) -> list[dolfinx.fem.DirichletBC]:
    """Dirichlet conditions ``value`` on facets ``tag`` for ``target`` (a space or sub-space).

    A constant on a vector sub-space of a mixed space becomes one condition per component:
    dolfinx takes constants only for a (sub-)space's own block size, and the alternative, a
    function on a collapsed copy of the sub-space, costs more than the condition itself."""
    fdim = target.mesh.topology.dim - 1
    facets = facet_tags.find(tag)
    if callable(value):
        return [_function_bc(target, facets, value)]
    data = np.broadcast_to(np.asarray(value, dtype=PETSc.ScalarType), target.value_shape)
    if target.component() and data.ndim:
        return [
            bc for i in range(data.size) for bc in _bcs(target.sub(i), facet_tags, tag, data[i])
        ]
    dofs = dolfinx.fem.locate_dofs_topological(target, fdim, facets)
    return [dolfinx.fem.dirichletbc(data.copy(), dofs, target)]


def _function_bc(
    target: dolfinx.fem.FunctionSpace,
    facets: np.ndarray,
    value: Callable[[np.ndarray], np.ndarray],
) -> dolfinx.fem.DirichletBC:
    """Dirichlet condition given as a function of x, interpolated into (a copy of) ``target``."""
    fdim = target.mesh.topology.dim - 1
    is_subspace = bool(target.component())
    collapsed = target.collapse()[0] if is_subspace else target
    data = dolfinx.fem.Function(collapsed)
    data.interpolate(value)
    if is_subspace:
        dofs = dolfinx.fem.locate_dofs_topological((target, collapsed), fdim, facets)
        return dolfinx.fem.dirichletbc(data, dofs, target)
    return dolfinx.fem.dirichletbc(data, dolfinx.fem.locate_dofs_topological(target, fdim, facets))


@dataclass
class Preconditioner:
    """What an iterative solve adds to its outer Krylov solver: PETSc PC ``options``, and a
    preconditioning ``matrix`` or a Python PC (``python``, freed with its PC); ``owned``:
    objects to free after the solve."""

    options: dict[str, Any] = field(default_factory=dict)
    matrix: PETSc.Mat | None = None
    python: BlockTriangular | None = None
    owned: list = field(default_factory=list)

    def destroy(self) -> None:
        for obj in [self.matrix, *self.owned]:
            if obj is not None:
                obj.destroy()


def _block_preconditioner(
    space: dolfinx.fem.FunctionSpace,
    medium: Medium,
    omega: float,
    facet_tags: dolfinx.mesh.MeshTags,
    ds: ufl.Measure,
    boundary: Boundary,
    pml: Pml | None,
    options: SolverOptions,
    jit_options: dict | None,
) -> Preconditioner:
    """The block lower-triangular preconditioner of a displacement–pressure system."""
    dim = space.mesh.geometry.dim
    components = [FieldScatter(space.sub(0).sub(axis)) for axis in range(dim)]
    pressure = FieldScatter(space.sub(1))
    p_space = pressure.space

    def assembled(form: ufl.Form, bcs: list | None = None) -> PETSc.Mat:
        return _assembled(dolfinx.fem.form(form, jit_options=jit_options), bcs or [])

    damped = omega * np.sqrt(1 - 1j * options.shift)
    operators, divergences = [], []
    for axis, field_ in enumerate(components):
        bcs = _component_bcs(field_.space, axis, facet_tags, boundary)  # the rows A has fixed
        form = component_form(field_.space, medium, damped, ds, boundary.absorbing, axis, pml)
        operators.append(assembled(form, bcs))
        divergences.append(assembled(divergence_form(field_.space, p_space, axis, pml), bcs))
    mass_form, helmholtz_form = schur_forms(p_space, medium, omega, ds, boundary.absorbing)
    mass, helmholtz = assembled(mass_form), assembled(helmholtz_form)
    _pin_free_surface_pressure(helmholtz, p_space, facet_tags, boundary)
    component_solvers = [
        configured_ksp(operator, f"dime_u{axis}", options.damped_solver(stretched=pml is not None))
        for axis, operator in enumerate(operators)
    ]
    schur = PressureSchur(
        helmholtz=configured_ksp(helmholtz, "dime_h", PRESSURE_HELMHOLTZ),
        mass=configured_ksp(mass, "dime_m", PRESSURE_MASS),
    )
    python = BlockTriangular(components, pressure, component_solvers, divergences, schur)
    owned = [*component_solvers, schur.helmholtz, schur.mass, *operators, *divergences]
    owned += [mass, helmholtz, *components, pressure]
    return Preconditioner(python=python, owned=owned)


def _component_bcs(
    space: dolfinx.fem.FunctionSpace,
    axis: int,
    facet_tags: dolfinx.mesh.MeshTags,
    boundary: Boundary,
) -> list[dolfinx.fem.DirichletBC]:
    """Where displacement component ``axis`` is held (its value does not matter here)."""
    tags = [*boundary.prescribed, *boundary.clamped]
    tags += [tag for tag, held in boundary.fixed_components.items() if held == axis]
    return [bc for tag in tags for bc in _bcs(space, facet_tags, tag, 0.0)]


def _pin_free_surface_pressure(
    helmholtz: PETSc.Mat,
    space: dolfinx.fem.FunctionSpace,
    facet_tags: dolfinx.mesh.MeshTags,
    boundary: Boundary,
) -> None:
    """Traction-free surfaces hold p ≈ 2G*ε_nn ≈ 0: there H⁻¹ must vanish (Dirichlet), not
    the natural Neumann condition (the demo's three 2D livers, by hand: 220, 138, 154 → 192,
    73, 156 iterations). A huge diagonal on those rows makes H⁻¹ ≈ 0 there."""
    mesh = space.mesh
    fdim = mesh.topology.dim - 1
    mesh.topology.create_connectivity(fdim, mesh.topology.dim)
    exterior = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    held = [
        *boundary.prescribed,
        *boundary.absorbing,
        *boundary.clamped,
        *boundary.fixed_components,
    ]
    tagged = facet_tags.indices[np.isin(facet_tags.values, held)]
    free = np.setdiff1d(exterior, tagged).astype(np.int32)
    dofs = dolfinx.fem.locate_dofs_topological(space, fdim, free)
    owned = dofs[dofs < space.dofmap.index_map.size_local]
    rows = space.dofmap.index_map.local_range[0] + owned
    scale = helmholtz.getDiagonal().norm(PETSc.NormType.INFINITY)
    helmholtz.zeroRowsColumns(rows.astype(PETSc.IntType), diag=1e12 * scale)


def _assembled(form: dolfinx.fem.Form, bcs: list) -> PETSc.Mat:
    matrix = dolfinx.fem.petsc.assemble_matrix(form, bcs=bcs)
    matrix.assemble()
    return matrix


def _solve(
    space: dolfinx.fem.FunctionSpace,
    a: ufl.Form,
    rhs: ufl.Form,
    bcs: list,
    name: str,
    options: SolverOptions,
    jit_options: dict | None,
    preconditioner: Callable[[], Preconditioner] | None,
) -> tuple[dolfinx.fem.Function, int, dict[str, float]]:
    """Compile, assemble and solve; returns the solution, iterations and stage timings
    (``precondition``: assembling and setting up an iterative solve's preconditioner)."""
    petsc = dolfinx.fem.petsc
    seconds: dict[str, float] = {}
    start = time.perf_counter()
    a_form, rhs_form = (dolfinx.fem.form(f, jit_options=jit_options) for f in (a, rhs))
    seconds["compile"] = time.perf_counter() - start

    start = time.perf_counter()
    matrix = _assembled(a_form, bcs)
    vector = petsc.assemble_vector(rhs_form)
    petsc.apply_lifting(vector, [a_form], bcs=[bcs])
    vector.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    petsc.set_bc(vector, bcs)
    seconds["assemble"] = time.perf_counter() - start

    built = Preconditioner()
    if preconditioner is not None:
        start = time.perf_counter()
        built = preconditioner()
        seconds["precondition"] = time.perf_counter() - start

    start = time.perf_counter()
    ksp = configured_ksp(
        matrix, f"dime_{name}", options.petsc_options() | built.options, built.matrix, built.python
    )
    solution = dolfinx.fem.Function(space)
    ksp.solve(vector, solution.x.petsc_vec)
    solution.x.scatter_forward()
    seconds["solve"] = time.perf_counter() - start
    reason, iterations = ksp.getConvergedReason(), ksp.getIterationNumber()
    for obj in (ksp, matrix, vector, built):
        obj.destroy()
    if reason < 0:
        raise SolverError(f"{name} solve failed (PETSc KSP reason {reason}, {iterations} its)")
    if not np.all(np.isfinite(solution.x.array)):
        raise SolverError(f"{name} solve produced non-finite values")
    log.info("%s solve: %d iterations, %s", name, iterations, _rounded(seconds))
    return solution, iterations, seconds


def _rounded(seconds: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 4) for key, value in seconds.items()}
