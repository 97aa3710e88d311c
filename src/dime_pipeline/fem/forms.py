"""Weak forms of the time-harmonic viscoelastic wave equation (docs/physics.md).

Convention u(x, t) = Re{U(x) e^{iωt}}. dolfinx complex mode: ``inner(a, b) = a conj(b)``, so every
term is written as ``inner(..., test)`` with all coefficients — including the complex PML
stretching, which must not be conjugated — on the trial side.

PML (complex coordinate stretching): ∂/∂x_j → (1/s_j) ∂/∂x_j and dx → J dx with
s_j = 1 − iβ (d_j / L_j)², J = Π s_j, where d_j is the distance into the layer along axis j.
Outgoing waves e^{−ik x̃} then decay like exp(−k β d³ / (3 L²)). Without a PML, s_j = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import ufl

from dime_pipeline.fem.backend import dolfinx
from dime_pipeline.fem.media import Medium


@dataclass(frozen=True)
class Pml:
    """Cartesian PML: cells outside the box [lower, upper] are absorbing layers.

    ``thickness`` is the layer thickness per axis (m); ``strength`` β is dimensionless: a wave of
    wavenumber k crossing a full layer is damped by exp(−k β L / 3).
    """

    lower: Sequence[float]
    upper: Sequence[float]
    thickness: Sequence[float]
    strength: float = 4.0

    def stretch(self, mesh: dolfinx.mesh.Mesh) -> list[ufl.core.expr.Expr]:
        x = ufl.SpatialCoordinate(mesh)
        factors = []
        for axis in range(mesh.geometry.dim):
            depth = ufl.max_value(x[axis] - self.upper[axis], 0.0) + ufl.max_value(
                self.lower[axis] - x[axis], 0.0
            )
            factors.append(1.0 - 1j * self.strength * (depth / self.thickness[axis]) ** 2)
        return factors

    def contains_layers(self, points: np.ndarray) -> np.ndarray:
        """True for (N, 3) points inside a layer (outside the physical box)."""
        dim = len(self.lower)
        below = np.any(points[:, :dim] < np.asarray(self.lower) - 1e-12, axis=1)
        above = np.any(points[:, :dim] > np.asarray(self.upper) + 1e-12, axis=1)
        return below | above


class Stretching:
    """S⁻¹ and J of the PML, or the identity when there is none."""

    def __init__(self, mesh: dolfinx.mesh.Mesh, pml: Pml | None) -> None:
        self.mesh = mesh
        self.active = pml is not None
        if self.active:
            factors = pml.stretch(mesh)
            self.inverse = ufl.diag(ufl.as_vector([1.0 / s for s in factors]))
            self.jacobian = _product(factors)
        else:
            self.inverse = ufl.Identity(mesh.geometry.dim)
            self.jacobian = 1.0

    def grad(self, u: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
        """The stretched gradient ∇u S⁻¹ (a vector for scalar u)."""
        if not self.active:
            return ufl.grad(u)
        if u.ufl_shape:
            return ufl.dot(ufl.grad(u), self.inverse)
        return ufl.dot(self.inverse, ufl.grad(u))


def frequency_constant(mesh: dolfinx.mesh.Mesh, omega: complex) -> dolfinx.fem.Constant:
    """ω as a form constant, not a literal: a literal enters the form's signature, so every
    frequency of a study would JIT-compile (and cache) its own kernels."""
    return dolfinx.fem.Constant(mesh, dolfinx.default_scalar_type(omega))


def _product(factors: list) -> ufl.core.expr.Expr:
    result = factors[0]
    for factor in factors[1:]:
        result = result * factor
    return result


def antiplane_form(
    space: dolfinx.fem.FunctionSpace,
    medium: Medium,
    omega: float,
    ds: ufl.Measure,
    absorbing: Sequence[int],
    pml: Pml | None = None,
) -> ufl.Form:
    """Anti-plane shear: ∫ G* ∇̃W·∇̃V̄ J − ρω² J W V̄ dx + ∫_Γa iωρ c_s W V̄ ds."""
    w, v = ufl.TrialFunction(space), ufl.TestFunction(space)
    m, st = medium, Stretching(space.mesh, pml)
    omega = frequency_constant(space.mesh, omega)
    flux = m.shear_modulus * st.jacobian * st.grad(w)
    if st.active:
        flux = ufl.dot(st.inverse, flux)  # (S⁻¹∇W)·(S⁻¹∇V) with S⁻¹ kept unconjugated
    a = ufl.inner(flux, ufl.grad(v)) * ufl.dx
    a -= omega**2 * ufl.inner(m.density * st.jacobian * w, v) * ufl.dx
    for tag in absorbing:
        a += 1j * omega * ufl.inner(m.density * m.shear_speed * w, v) * ds(tag)
    return a


def mixed_elastic_form(
    space: dolfinx.fem.FunctionSpace,
    medium: Medium,
    omega: float,
    ds: ufl.Measure,
    absorbing: Sequence[int],
    pml: Pml | None = None,
) -> ufl.Form:
    """Displacement–pressure (Taylor–Hood) form, locking-free as K/G → ∞; p = −λ ∇̃·U.

    ∫ 2G* ε̃(U):ε̃(V̄) J − p ∇̃·V̄ J − ρω² J U·V̄ dx − ∫ (∇̃·U + p/λ) q̄ J dx
      + ∫_Γa iωρ (c_p U_n n + c_s U_t)·V̄ ds   (Lysmer–Kuhlemeyer),
    with ε̃(U) = sym(∇U S⁻¹). Plane strain in 2D, full 3D in 3D.
    """
    u, p = ufl.TrialFunctions(space)
    v, q = ufl.TestFunctions(space)
    m, st = medium, Stretching(space.mesh, pml)
    omega = frequency_constant(space.mesh, omega)
    a = _momentum(u, v, m, st, omega, ds, absorbing, pressure=p)
    a -= ufl.inner((ufl.tr(st.grad(u)) + p / m.lame_lambda) * st.jacobian, q) * ufl.dx
    return a


def _momentum(
    u: ufl.core.expr.Expr,
    v: ufl.core.expr.Expr,
    m: Medium,
    st: Stretching,
    omega: dolfinx.fem.Constant,
    ds: ufl.Measure,
    absorbing: Sequence[int],
    pressure: ufl.core.expr.Expr | None = None,
) -> ufl.Form:
    """The displacement rows: ∫ (2G* ε̃(U) − p I):ε̃(V̄) J − ρω² J U·V̄ dx plus the absorbing
    boundary's dashpots (the pressure term only in the mixed form)."""
    stress = 2 * m.shear_modulus * ufl.sym(st.grad(u))
    if pressure is not None:
        stress -= pressure * ufl.Identity(len(u))
    # ε̃(U):ε̃(V) = (ε̃(U) S⁻¹):∇V and p ∇̃·V = (p S⁻¹):∇V, S⁻¹ diagonal and on the trial side.
    stress = stress * st.jacobian
    a = ufl.inner(ufl.dot(stress, st.inverse) if st.active else stress, ufl.grad(v)) * ufl.dx
    a -= omega**2 * ufl.inner(m.density * st.jacobian * u, v) * ufl.dx
    normal = ufl.FacetNormal(st.mesh)
    normal_part = ufl.dot(u, normal)
    traction = m.pressure_speed * normal_part * normal + m.shear_speed * (u - normal_part * normal)
    for tag in absorbing:
        a += 1j * omega * ufl.inner(m.density * traction, v) * ds(tag)
    return a


def damped_displacement_form(
    space: dolfinx.fem.FunctionSpace,
    medium: Medium,
    omega: complex,
    ds: ufl.Measure,
    absorbing: Sequence[int],
    pml: Pml | None = None,
) -> ufl.Form:
    """The displacement block of :func:`mixed_elastic_form` on a vector space, damped through a
    complex ``omega`` (ω² → (1 − i·shift) ω²): what the block preconditioner hands to AMG."""
    u, v = ufl.TrialFunction(space), ufl.TestFunction(space)
    st = Stretching(space.mesh, pml)
    omega = frequency_constant(space.mesh, omega)
    return _momentum(u, v, medium, st, omega, ds, absorbing)


def divergence_form(
    displacement_space: dolfinx.fem.FunctionSpace,
    pressure_space: dolfinx.fem.FunctionSpace,
    pml: Pml | None = None,
) -> ufl.Form:
    """−∫ ∇̃·U q̄ J dx: the pressure-row, displacement-column block of :func:`mixed_elastic_form`."""
    u, q = ufl.TrialFunction(displacement_space), ufl.TestFunction(pressure_space)
    st = Stretching(displacement_space.mesh, pml)
    return -ufl.inner(ufl.tr(st.grad(u)) * st.jacobian, q) * ufl.dx


def schur_forms(
    space: dolfinx.fem.FunctionSpace,
    medium: Medium,
    omega: float,
    ds: ufl.Measure,
    absorbing: Sequence[int],
) -> tuple[ufl.Form, ufl.Form]:
    """The two pressure operators of the Schur-complement approximation Ŝ⁻¹ = H⁻¹ − M⁻¹:

    M = ∫ (1/(2G*) + 1/λ) p q̄ dx (the short-wave limit, as for Stokes) and the compressional
    Helmholtz operator H = ∫ (∇p·∇q̄ − k_p² p q̄) / (ρω²) dx + ∫_Γa i k_p p q̄ / (ρω²) ds,
    k_p = ω/c_p, whose impedance term is the absorbing boundary's normal dashpot seen from the
    pressure (Cahouet–Chabard for the oscillating operator; see ``preconditioners``)."""
    p, q = ufl.TrialFunction(space), ufl.TestFunction(space)
    m = medium
    omega = frequency_constant(space.mesh, omega)
    mass = ufl.inner((1 / (2 * m.shear_modulus) + 1 / m.lame_lambda) * p, q) * ufl.dx
    stiffness = 1 / (m.density * omega**2)
    wavenumber = omega / m.pressure_speed
    helmholtz = ufl.inner(stiffness * ufl.grad(p), ufl.grad(q)) * ufl.dx
    helmholtz -= ufl.inner(stiffness * wavenumber**2 * p, q) * ufl.dx
    for tag in absorbing:
        helmholtz += 1j * ufl.inner(stiffness * wavenumber * p, q) * ds(tag)
    return mass, helmholtz
