"""Block preconditioner for iterative displacement–pressure (Taylor–Hood) solves.

FGMRES runs on the whole mixed system [A Bᵀ; B −C] and is preconditioned by the block
lower-triangular [Â 0; B Ŝ]:

- Â = diag(K_x, K_y, K_z): one scalar damped wave operator per displacement component
  (``forms.component_form``, ω² → (1 − i·shift) ω²), each inverted by PETSc GAMG. The vector
  operator 2G*ε:ε differs from G*∇:∇ only by a G*∇·U ∇·V term, which the pressure block
  dominates; dropping it decouples the components, so each scalar operator has a ninth of the
  vector block's entries in 3D, and AMG needs no rigid-body near null space. On the 3D
  benchmark block at 150 k dofs this took FGMRES from 91 to 107 iterations but the time from
  62 s to 14 s and the memory from 1.29 to 0.90 GB.
- Ŝ⁻¹ = H⁻¹ − M⁻¹ for the Schur complement S = −C − B A⁻¹ Bᵀ (``forms.schur_forms``). On
  compressional (gradient) fields A acts like 2G*k² − ρω², so S⁻¹ ≈ −2G* + ρω²/k²: a pressure
  mass alone (the Stokes choice) is wrong for every pressure mode longer than a shear
  wavelength, and for the global compression that only the absorbing boundary's dashpots
  resist. The compressional Helmholtz operator H, with the P-wave impedance on absorbing
  boundaries, supplies the ρω²/k² part and that boundary response.

The blocks are assembled on collapsed component and pressure spaces, and PETSc scatters move
values between them and the mixed vector: no block of the mixed matrix is copied, and a
collapsed space need not number or own its dofs as the mixed space does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dime_pipeline.fem.backend import PETSc, dolfinx

# AMG of a damped scalar wave operator (a displacement component, or anti-plane shear). GMRES
# smoothing: the coarse levels of the damped operator are still indefinite, where Chebyshev
# (GAMG's default) and Richardson let the outer iterations grow or diverge. Jacobi inside is
# the cheapest for the same outer iterations (150 k-dof block, run by hand: 3 Jacobi steps
# 107 iterations, 9 s of solve; 2 forward-SOR steps 112, 12 s; 2 symmetric-SOR steps 106, 17 s).
DAMPED_AMG = {
    "ksp_type": "preonly",
    "pc_type": "gamg",
    "pc_gamg_threshold": 0.05,
    "mg_levels_ksp_type": "gmres",
    "mg_levels_pc_type": "jacobi",
    "mg_levels_ksp_max_it": 3,
}
# Inside a PML the stretched operator's coefficients turn through large complex phases, and
# Jacobi smoothing stalls there; SOR does not (by hand: a 24² box with rollers and a PML,
# 460 → 181 iterations; an 8³ box with a PML, no convergence in 500 → 268).
DAMPED_AMG_STRETCHED = DAMPED_AMG | {"mg_levels_pc_type": "sor"}
DAMPED_LU = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
# The weighted pressure mass is complex symmetric: CG in its complex-symmetric variant.
PRESSURE_MASS = {
    "ksp_type": "cg",
    "ksp_cg_type": "symmetric",
    "pc_type": "jacobi",
    "ksp_rtol": 1e-6,
    "ksp_max_it": 100,
}
# P1 pressure on the vertices: a few % of the dofs, so a sparse LU is cheap and exact.
PRESSURE_HELMHOLTZ = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}


def configured_ksp(
    operator: PETSc.Mat,
    prefix: str,
    options: dict[str, Any],
    preconditioner_matrix: PETSc.Mat | None = None,
    python_pc: BlockTriangular | None = None,
) -> PETSc.KSP:
    """A KSP on ``operator`` set up from ``options`` under a prefix unique to this object, so
    that options never leak between solves; the options are removed once read. ``python_pc``
    replaces the PC (PETSc options cannot hand it Python objects)."""
    ksp = PETSc.KSP().create(operator.getComm())
    ksp.setOperators(operator, preconditioner_matrix or operator)
    prefix = f"{prefix}_{id(ksp)}_"
    ksp.setOptionsPrefix(prefix)
    database = PETSc.Options()
    for key, value in options.items():
        database[f"{prefix}{key}"] = value
    ksp.setFromOptions()
    if python_pc is not None:
        ksp.getPC().setType("python")
        ksp.getPC().setPythonContext(python_pc)
    ksp.setUp()
    for key in options:
        database.delValue(f"{prefix}{key}")
    return ksp


class FieldScatter:
    """Moves one field's values between a mixed-space vector and its collapsed-space vector.

    ``field``: a sub-space of a mixed space (``space.sub(1)``, or ``space.sub(0).sub(2)`` for
    the z displacement)."""

    def __init__(self, field: dolfinx.fem.FunctionSpace) -> None:
        collapsed, (mixed_dofs,) = field.collapse()  # one map per cell type
        index_map, bs = collapsed.dofmap.index_map, collapsed.dofmap.index_map_bs
        mixed_map = field.dofmap.index_map  # the mixed space's, with block size 1
        owned = index_map.size_local * bs
        mixed_global = mixed_map.local_to_global(np.asarray(mixed_dofs[:owned], dtype=np.int32))
        comm = field.mesh.comm
        source = PETSc.IS().createGeneral(mixed_global.astype(PETSc.IntType), comm=comm)
        start = index_map.local_range[0] * bs
        target = PETSc.IS().createStride(owned, first=start, step=1, comm=comm)
        self.space = collapsed
        # laid out as matrices assembled on the collapsed space (owned dofs, no ghosts)
        self.vector = PETSc.Vec().createMPI((owned, PETSc.DECIDE), bsize=bs, comm=comm)
        mixed_vector = PETSc.Vec().createMPI((mixed_map.size_local, PETSc.DECIDE), comm=comm)
        self.scatter = PETSc.Scatter().create(mixed_vector, source, self.vector, target)
        for obj in (source, target, mixed_vector):
            obj.destroy()

    def take(self, mixed_vector: PETSc.Vec, out: PETSc.Vec) -> None:
        self.scatter.scatter(mixed_vector, out, PETSc.InsertMode.INSERT, PETSc.ScatterMode.FORWARD)

    def put(self, values: PETSc.Vec, mixed_vector: PETSc.Vec) -> None:
        self.scatter.scatter(
            values, mixed_vector, PETSc.InsertMode.INSERT, PETSc.ScatterMode.REVERSE
        )

    def destroy(self) -> None:
        self.scatter.destroy()
        self.vector.destroy()


@dataclass
class PressureSchur:
    """Ŝ⁻¹ r = H⁻¹ r − M⁻¹ r."""

    helmholtz: PETSc.KSP
    mass: PETSc.KSP

    def solve(self, residual: PETSc.Vec, out: PETSc.Vec, work: PETSc.Vec) -> None:
        self.helmholtz.solve(residual, out)
        self.mass.solve(residual, work)
        out.axpy(-1.0, work)


class BlockTriangular:
    """petsc4py Python PC: y_a = K_a⁻¹ x_a per component a, y_p = Ŝ⁻¹ (x_p − Σ_a B_a y_a)."""

    def __init__(
        self,
        components: list[FieldScatter],
        pressure: FieldScatter,
        component_solvers: list[PETSc.KSP],
        divergences: list[PETSc.Mat],
        schur: PressureSchur,
    ) -> None:
        self.components, self.pressure, self.schur = components, pressure, schur
        self.component_solvers, self.divergences = component_solvers, divergences
        self.x_u = [field.vector.duplicate() for field in components]
        self.y_u = [field.vector.duplicate() for field in components]
        self.x_p, self.y_p, self.work = (pressure.vector.duplicate() for _ in range(3))

    def setUp(self, pc: PETSc.PC) -> None:
        pass

    def apply(self, pc: PETSc.PC, x: PETSc.Vec, y: PETSc.Vec) -> None:
        self.pressure.take(x, self.x_p)
        parts = (self.components, self.component_solvers, self.divergences, self.x_u, self.y_u)
        for field, solver, divergence, x_a, y_a in zip(*parts, strict=True):
            field.take(x, x_a)
            solver.solve(x_a, y_a)
            divergence.mult(y_a, self.work)
            self.x_p.axpy(-1.0, self.work)
            field.put(y_a, y)
        self.schur.solve(self.x_p, self.y_p, self.work)
        self.pressure.put(self.y_p, y)

    def destroy(self, pc: PETSc.PC) -> None:
        """Called by petsc4py when the PC is destroyed."""
        for obj in (*self.x_u, *self.y_u, self.x_p, self.y_p, self.work):
            obj.destroy()
