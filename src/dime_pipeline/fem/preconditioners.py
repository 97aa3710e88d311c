"""Block preconditioner for iterative displacement–pressure (Taylor–Hood) solves.

FGMRES runs on the whole mixed system [A Bᵀ; B −C] and is preconditioned by the block
lower-triangular [Â 0; B Ŝ]:

- Â: the displacement block with ω² → (1 − i·shift) ω² (damped, so AMG converges on it), by
  PETSc GAMG with the rigid-body modes as near null space;
- Ŝ⁻¹ = H⁻¹ − M⁻¹ for the Schur complement S = −C − B A⁻¹ Bᵀ (``forms.schur_forms``). On
  compressional (gradient) fields A acts like 2G*k² − ρω², so S⁻¹ ≈ −2G* + ρω²/k²: a pressure
  mass alone (the Stokes choice) is wrong for every pressure mode longer than a shear
  wavelength, and for the global compression that only the absorbing boundary's dashpots
  resist. The compressional Helmholtz operator H, with the P-wave impedance on absorbing
  boundaries, supplies the ρω²/k² part and that boundary response.

The blocks are assembled on the collapsed displacement and pressure spaces, and PETSc scatters
move values between them and the mixed vector: no copy of a block of the mixed matrix is made
(on the 3D block the displacement block alone is most of the memory), and a collapsed space
need not number or own its dofs as the mixed space does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dime_pipeline.fem.backend import PETSc, dolfinx

DISPLACEMENT_AMG = {
    "ksp_type": "preonly",
    "pc_type": "gamg",
    "pc_gamg_threshold": 0.05,
    # Two GMRES steps with SOR per level: the coarse levels of the damped operator are still
    # indefinite; Chebyshev (GAMG's default) and Richardson smoothers let the outer iterations
    # grow with the block (Richardson: 62 → 115 → 172 from 41 k to 281 k dofs; GMRES: 59 → 94).
    "mg_levels_ksp_type": "gmres",
    "mg_levels_pc_type": "sor",
    "mg_levels_ksp_max_it": 2,
}
DISPLACEMENT_LU = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"}
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
    """Moves one field's values between a mixed-space vector and its collapsed-space vector."""

    def __init__(self, mixed: dolfinx.fem.FunctionSpace, field: int) -> None:
        collapsed, (mixed_dofs,) = mixed.sub(field).collapse()  # one map per cell type
        index_map, bs = collapsed.dofmap.index_map, collapsed.dofmap.index_map_bs
        mixed_map = mixed.dofmap.index_map  # mixed spaces have block size 1
        owned = index_map.size_local * bs
        mixed_global = mixed_map.local_to_global(np.asarray(mixed_dofs[:owned], dtype=np.int32))
        comm = mixed.mesh.comm
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


def rigid_body_modes(space: dolfinx.fem.FunctionSpace) -> PETSc.NullSpace:
    """Translations and rotations of a 2D or 3D vector space: AMG's near null space."""
    dim = space.mesh.geometry.dim
    x = space.tabulate_dof_coordinates()[:, :dim]
    rotations = [(0, 1)] if dim == 2 else [(0, 1), (1, 2), (2, 0)]
    vectors = []
    for k in range(dim + len(rotations)):
        mode = dolfinx.fem.Function(space)
        values = mode.x.array.reshape(-1, dim)
        if k < dim:
            values[:, k] = 1.0
        else:
            i, j = rotations[k - dim]
            values[:, i], values[:, j] = -x[:, j], x[:, i]
        vectors.append(mode.x.petsc_vec.copy())
    for i, vector in enumerate(vectors):  # PETSc wants them orthonormal
        for previous in vectors[:i]:
            vector.axpy(-previous.dot(vector), previous)
        vector.normalize()
    return PETSc.NullSpace().create(vectors=vectors, comm=space.mesh.comm)


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
    """petsc4py Python PC: y_u = Â⁻¹ x_u, y_p = Ŝ⁻¹ (x_p − B y_u)."""

    def __init__(
        self,
        displacement: FieldScatter,
        pressure: FieldScatter,
        displacement_solver: PETSc.KSP,
        divergence: PETSc.Mat,
        schur: PressureSchur,
    ) -> None:
        self.displacement, self.pressure = displacement, pressure
        self.displacement_solver, self.divergence, self.schur = (
            displacement_solver,
            divergence,
            schur,
        )
        self.x_u, self.y_u = (displacement.vector.duplicate() for _ in range(2))
        self.x_p, self.y_p, self.work = (pressure.vector.duplicate() for _ in range(3))

    def setUp(self, pc: PETSc.PC) -> None:
        pass

    def apply(self, pc: PETSc.PC, x: PETSc.Vec, y: PETSc.Vec) -> None:
        self.displacement.take(x, self.x_u)
        self.pressure.take(x, self.x_p)
        self.displacement_solver.solve(self.x_u, self.y_u)
        self.divergence.mult(self.y_u, self.work)
        self.x_p.axpy(-1.0, self.work)
        self.schur.solve(self.x_p, self.y_p, self.work)
        self.displacement.put(self.y_u, y)
        self.pressure.put(self.y_p, y)

    def destroy(self, pc: PETSc.PC) -> None:
        """Called by petsc4py when the PC is destroyed."""
        for obj in (self.x_u, self.y_u, self.x_p, self.y_p, self.work):
            obj.destroy()
