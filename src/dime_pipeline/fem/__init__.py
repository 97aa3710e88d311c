"""Harmonic viscoelastic FEM in dolfinx (complex PETSc). Import submodules explicitly: they load
MPI and dolfinx, which the rest of the package never needs."""
