"""Weak forms of the time-harmonic viscoelastic wave equation (docs/physics.md).

Convention u(x, t) = Re{U(x) e^{iωt}}. dolfinx complex mode: ``inner(a, b) = a conj(b)``, so every
term is written as ``inner(..., test)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import ufl

from dime_pipeline.fem.backend import dolfinx
from dime_pipeline.fem.media import Medium


def antiplane_form(
    space: dolfinx.fem.FunctionSpace,
    medium: Medium,
    omega: float,
    ds: ufl.Measure,
    absorbing: Sequence[int],
) -> ufl.Form:
    """Anti-plane shear: ∫ G* ∇W·∇V̄ − ρω² W V̄ dx + ∫_Γa iωρ c_s W V̄ ds (first-order absorbing)."""
    w, v = ufl.TrialFunction(space), ufl.TestFunction(space)
    m = medium
    a = ufl.inner(m.shear_modulus * ufl.grad(w), ufl.grad(v)) * ufl.dx
    a -= omega**2 * ufl.inner(m.density * w, v) * ufl.dx
    for tag in absorbing:
        a += 1j * omega * ufl.inner(m.density * m.shear_speed * w, v) * ds(tag)
    return a


def mixed_elastic_form(
    space: dolfinx.fem.FunctionSpace,
    medium: Medium,
    omega: float,
    ds: ufl.Measure,
    absorbing: Sequence[int],
) -> ufl.Form:
    """Displacement–pressure (Taylor–Hood) form, locking-free as K/G → ∞; p = −λ ∇·U.

    ∫ 2G* ε(U):ε(V̄) − p ∇·V̄ − ρω² U·V̄ dx − ∫ (∇·U + p/λ) q̄ dx
      + ∫_Γa iωρ (c_p U_n n + c_s U_t)·V̄ ds   (Lysmer–Kuhlemeyer).
    """
    u, p = ufl.TrialFunctions(space)
    v, q = ufl.TestFunctions(space)
    m = medium
    a = ufl.inner(2 * m.shear_modulus * _strain(u), _strain(v)) * ufl.dx
    a -= ufl.inner(p, ufl.div(v)) * ufl.dx
    a -= omega**2 * ufl.inner(m.density * u, v) * ufl.dx
    a -= ufl.inner(ufl.div(u) + p / m.lame_lambda, q) * ufl.dx
    normal = ufl.FacetNormal(space.mesh)
    normal_part = ufl.dot(u, normal)
    tangential_part = u - normal_part * normal
    traction = m.pressure_speed * normal_part * normal + m.shear_speed * tangential_part
    for tag in absorbing:
        a += 1j * omega * ufl.inner(m.density * traction, v) * ds(tag)
    return a


def _strain(u: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
    return ufl.sym(ufl.grad(u))
