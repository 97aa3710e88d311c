"""Scattering of a plane SH wave by a circular inclusion: anti-plane FEM against the exact series.

Background G_b = 2 + 0.1i kPa, inclusion radius a = 15 mm with G_i = 3 G_b (same density), 60 Hz,
incident wave W_inc = exp(−i k_b x) (u = Re{U e^{iωt}}, so outgoing waves are H_n^(2)(k r)).
With ε_0 = 1, ε_n = 2 and W_inc = Σ ε_n i^{−n} J_n(k_b r) cos nθ (Jacobi–Anger),

    r > a:  W = W_inc + Σ b_n H_n^(2)(k_b r) cos nθ,      r < a:  W = Σ c_n J_n(k_i r) cos nθ,

where (b_n, c_n) follow, order by order, from continuity of W and of G* ∂W/∂r at r = a.

The FEM solves for the scattered field W_s = W − W_inc, driven by the contrast only:
∫ G* ∇W_s·∇V̄ − ρω² W_s V̄ dx = −∫ (G* − G_b) ∇W_inc·∇V̄ dx, on a gmsh mesh that conforms to the
inclusion, inside a Cartesian PML on all four sides.

Choices. 10 P2 elements per background (shortest) wavelength. Second-order (curved) cells: with
straight cells the polygonal interface adds an O(h²) geometric error that dominates (0.67 %
instead of 0.31 %, converging at rate 2.2 instead of 3). PML one wavelength thick, β = 4: a wave
crossing it and back is damped by exp(−2 k β L / 3) ≈ 4e-8. It is backed by the first-order
absorbing condition rather than clamped: in the middle of each side the tangential stretch is 1,
so that condition is the exact one for a normally outgoing wave in stretched coordinates and takes
what the layer leaves, where a clamped side reflects all of it. With β = 4 the two backings differ
by 1e-8 in the error; with a weak layer (β = 1) they give 0.035 % (absorbing) and 0.82 % (clamped)
at 20 elements per wavelength.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import ufl
from scipy.special import h2vp, hankel2, jv, jvp

from dime_pipeline.fem.backend import MPI, dolfinx
from dime_pipeline.fem.forms import Pml
from dime_pipeline.fem.media import cell_region_tags, medium_from_cell_values
from dime_pipeline.fem.sampling import PointSampler
from dime_pipeline.fem.solvers import Boundary, solve_antiplane

FREQUENCY, RHO, BULK = 60.0, 1000.0, 2.2e9
OMEGA = 2 * np.pi * FREQUENCY
G_BACKGROUND = 2000.0 + 100.0j
G_INCLUSION = 3.0 * G_BACKGROUND
RADIUS = 0.015
K_BACKGROUND = OMEGA * np.sqrt(RHO / G_BACKGROUND)  # Im(k) < 0: exp(−ikx) decays along +x
K_INCLUSION = OMEGA * np.sqrt(RHO / G_INCLUSION)
WAVELENGTH = 2 * np.pi / K_BACKGROUND.real  # 23.6 mm, the shortest in the problem
BACKGROUND, INCLUSION = 1, 2  # cell tags
OUTER_SIDES = (1, 2, 3, 4)  # outer sides: x-min, x-max, y-min, y-max (as in meshes.SIDES)


@dataclass(frozen=True)
class Series:
    """Coefficients of the exact solution, orders 0 … len(b) − 1."""

    b: np.ndarray  # scattered, outside
    c: np.ndarray  # transmitted, inside

    def inside(self, r: np.ndarray, theta: np.ndarray, derivative: bool = False) -> np.ndarray:
        """Σ c_n J_n(k_i r) cos nθ, or its r-derivative."""
        n, k = np.arange(len(self.c))[:, None], K_INCLUSION
        radial = k * jvp(n, k * r) if derivative else jv(n, k * r)
        return np.sum(self.c[:, None] * radial * np.cos(n * theta), axis=0)

    def scattered(self, r: np.ndarray, theta: np.ndarray, derivative: bool = False) -> np.ndarray:
        """Σ b_n H_n^(2)(k_b r) cos nθ, or its r-derivative."""
        n, k = np.arange(len(self.b))[:, None], K_BACKGROUND
        radial = k * h2vp(n, k * r) if derivative else hankel2(n, k * r)
        return np.sum(self.b[:, None] * radial * np.cos(n * theta), axis=0)

    def outside(self, r: np.ndarray, theta: np.ndarray, derivative: bool = False) -> np.ndarray:
        """W_inc (in closed form, so the series is checked against it) + the scattered series."""
        incident = np.exp(-1j * K_BACKGROUND * r * np.cos(theta))
        if derivative:
            incident *= -1j * K_BACKGROUND * np.cos(theta)
        return incident + self.scattered(r, theta, derivative)

    def field(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Total field W at points (x, y)."""
        r, theta = np.hypot(x, y), np.arctan2(y, x)
        inside = r < RADIUS
        result = np.empty(r.shape, dtype=complex)
        result[inside] = self.inside(r[inside], theta[inside])
        result[~inside] = self.outside(r[~inside], theta[~inside])
        return result


def exact_series(tolerance: float = 1e-14, max_order: int = 200) -> Series:
    """Solve the 2×2 interface system per order; stop once the scattered and transmitted terms are
    below ``tolerance`` at r = a, where they are largest (|H_n(k r)| falls with r, and J_n(k r)
    grows with r for the tail orders n > k r)."""
    kb, ki, gb, gi = K_BACKGROUND, K_INCLUSION, G_BACKGROUND, G_INCLUSION
    b, c = [], []
    for n in range(max_order):
        incident = (1.0 if n == 0 else 2.0) * (-1j) ** n
        jb, hb, ji = jv(n, kb * RADIUS), hankel2(n, kb * RADIUS), jv(n, ki * RADIUS)
        # Unknowns (b_n, c_n): W and G* ∂W/∂r continuous at r = a.
        matrix = np.array(
            [[hb, -ji], [gb * kb * h2vp(n, kb * RADIUS), -gi * ki * jvp(n, ki * RADIUS)]]
        )
        rhs = -incident * np.array([jb, gb * kb * jvp(n, kb * RADIUS)])
        bn, cn = np.linalg.solve(matrix, rhs)
        b.append(bn)
        c.append(cn)
        if max(abs(bn * hb), abs(cn * ji)) < tolerance:
            return Series(np.array(b), np.array(c))
    raise RuntimeError(f"series did not converge in {max_order} orders")


# --- the series itself ------------------------------------------------------------------------


def test_series_satisfies_interface_conditions():
    """W and G* ∂W/∂r continuous at r = a, with the incident wave in closed form outside (this
    also checks the i^{−n} ε_n expansion of W_inc the coefficients were derived with)."""
    series = exact_series()
    theta = np.linspace(0.0, 2 * np.pi, 73)
    r = np.full_like(theta, RADIUS)
    outer = series.outside(r, theta)
    scale = np.max(np.abs(outer))
    jump = np.abs(series.inside(r, theta) - outer)
    flux_jump = np.abs(
        G_INCLUSION * series.inside(r, theta, derivative=True)
        - G_BACKGROUND * series.outside(r, theta, derivative=True)
    )
    assert np.max(jump) < 1e-10 * scale
    assert np.max(flux_jump) < 1e-10 * abs(G_BACKGROUND * K_BACKGROUND) * scale
    assert 5 < len(series.b) < 40  # k_b a ≈ 4: a couple of dozen orders, not the cap
    # A contrast of 3 is not a small perturbation: the scattered wave is strong.
    assert np.max(np.abs(series.scattered(r, theta))) > 0.3


def test_series_satisfies_helmholtz_equation():
    """∇²W + k²W = 0 on both sides, by a 5-point Laplacian with step kδ = 10⁻³ (truncation error
    ~ (kδ)²/6 ≈ 2e-7, round-off ~ 4ε/(kδ)² ≈ 5e-10, relative to k²|W|)."""
    series = exact_series()
    points = [(0.3, 0.4), (-0.5, 0.2), (1.4, 0.7), (-1.9, -1.2), (0.2, 2.4)]
    for px, py in points:
        x, y = px * RADIUS, py * RADIUS
        k = K_INCLUSION if np.hypot(x, y) < RADIUS else K_BACKGROUND
        step = 1e-3 / abs(k)
        stencil = series.field(
            x + step * np.array([0, 1, -1, 0, 0]), y + step * np.array([0, 0, 0, 1, -1])
        )
        laplacian = (stencil[1:].sum() - 4 * stencil[0]) / step**2
        scale = abs(k) ** 2 * max(abs(stencil[0]), 0.1)
        assert abs(laplacian + k**2 * stencil[0]) < 1e-6 * scale, (px, py)


def test_series_scattered_field_is_outgoing():
    """Far out, W_s ~ H^(2)(k r) ~ exp(−ikr)/√r: ∂_r W_s + ik W_s = O(1/(kr)) of |k W_s|, while
    an incoming wave would give ∂_r W_s − ik W_s ≈ −2ik W_s instead."""
    series = exact_series()
    theta = np.linspace(0.0, np.pi, 7)
    residuals = []
    for kr in (100.0, 200.0):
        r = np.full_like(theta, kr / K_BACKGROUND.real)
        ws = series.scattered(r, theta)
        dws = series.scattered(r, theta, derivative=True)
        scale = np.abs(K_BACKGROUND * ws)
        residuals.append(np.max(np.abs(dws + 1j * K_BACKGROUND * ws) / scale))
        assert np.min(np.abs(dws - 1j * K_BACKGROUND * ws) / scale) > 1.9
    assert residuals[0] < 0.01
    assert residuals[1] < 0.6 * residuals[0]  # decays like 1/(kr)


# --- FEM against the series -------------------------------------------------------------------


def _mesh(
    half_width: float, size: float, order: int, comm: MPI.Comm
) -> tuple[dolfinx.mesh.Mesh, dolfinx.mesh.MeshTags, dolfinx.mesh.MeshTags]:
    """Square [−half_width, half_width]² with the inclusion disk, conforming (OCC fragment)."""
    import gmsh

    gmsh.initialize(interruptible=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.option.setNumber("Mesh.RandomSeed", 1)
        gmsh.option.setNumber("Mesh.MeshSizeMax", size)
        gmsh.option.setNumber("Mesh.MeshSizeMin", 0.5 * size)
        if comm.rank == 0:
            occ = gmsh.model.occ
            square = occ.addRectangle(-half_width, -half_width, 0.0, 2 * half_width, 2 * half_width)
            disk = occ.addDisk(0.0, 0.0, 0.0, RADIUS, RADIUS)
            _, children = occ.fragment([(2, square)], [(2, disk)])
            occ.synchronize()
            inclusion = [tag for _, tag in children[1]]
            background = [tag for _, tag in children[0] if tag not in inclusion]
            gmsh.model.addPhysicalGroup(2, background, tag=BACKGROUND)
            gmsh.model.addPhysicalGroup(2, inclusion, tag=INCLUSION)
            _tag_sides(gmsh, half_width)
            gmsh.model.mesh.generate(2)
            gmsh.model.mesh.setOrder(order)
        data = dolfinx.io.gmsh.model_to_mesh(gmsh.model, comm, 0, gdim=2)
    finally:
        gmsh.finalize()
    return data.mesh, data.cell_tags, data.facet_tags


def _tag_sides(gmsh, half_width: float) -> None:
    """Physical curve groups 1–4 for the sides x = −w, x = w, y = −w, y = w."""
    sides: dict[int, list[int]] = {tag: [] for tag in OUTER_SIDES}
    for _, curve in gmsh.model.getEntities(1):
        x, y, _ = gmsh.model.occ.getCenterOfMass(1, curve)
        for tag, coordinate in zip(OUTER_SIDES, (-x, x, -y, y), strict=True):
            if coordinate > 0.999 * half_width:
                sides[tag].append(curve)
    for tag, curves in sides.items():
        gmsh.model.addPhysicalGroup(1, curves, tag=tag)


@dataclass(frozen=True)
class Setup:
    """The FEM problem: physical square [−physical, physical]², a PML of ``layer`` on each side."""

    elements_per_wavelength: float = 10.0
    physical: float = 0.040
    layer: float = 0.024  # about one background wavelength
    strength: float = 4.0
    backing: Literal["absorbing", "clamped"] = "absorbing"
    geometry_order: int = 2  # curved cells follow the interface to O(h³)


def comparison_points() -> np.ndarray:
    """(N, 3) points on a polar grid filling r ≤ 2.5a, on both sides of the interface."""
    r = np.linspace(0.02, 2.5, 60) * RADIUS
    theta = np.linspace(0.0, 2 * np.pi, 73)[:-1]
    rr, tt = np.meshgrid(r, theta)
    return np.column_stack([(rr * np.cos(tt)).ravel(), (rr * np.sin(tt)).ravel(), 0 * rr.ravel()])


def solve_scattering(setup: Setup, jit_cache: Path) -> tuple[float, int] | None:
    """Max relative error of W_inc + W_s against the series on ``comparison_points`` (rank 0),
    and the number of dofs."""
    comm = MPI.COMM_WORLD
    half_width = setup.physical + setup.layer
    mesh, cell_tags, facet_tags = _mesh(
        half_width, WAVELENGTH / setup.elements_per_wavelength, setup.geometry_order, comm
    )
    tags = cell_region_tags(mesh, cell_tags)
    assert np.all(np.isin(tags, (BACKGROUND, INCLUSION)))
    ones = np.ones(len(tags))
    shear = np.where(tags == INCLUSION, G_INCLUSION, G_BACKGROUND)
    medium = medium_from_cell_values(mesh, shear, BULK * ones, RHO * ones)

    x = ufl.SpatialCoordinate(mesh)
    incident = ufl.exp(-1j * K_BACKGROUND * x[0])
    contrast = medium.shear_modulus - G_BACKGROUND  # zero outside the inclusion
    dx = ufl.Measure("dx", domain=mesh, metadata={"quadrature_degree": 6})

    def load(v: ufl.Argument) -> ufl.Form:
        return -ufl.inner(contrast * ufl.grad(incident), ufl.grad(v)) * dx

    pml = Pml(
        lower=[-setup.physical] * 2,
        upper=[setup.physical] * 2,
        thickness=[setup.layer] * 2,
        strength=setup.strength,
    )
    boundary = (
        Boundary(absorbing=OUTER_SIDES)
        if setup.backing == "absorbing"
        else Boundary(clamped=OUTER_SIDES)
    )
    solution = solve_antiplane(
        medium,
        OMEGA,
        facet_tags,
        boundary,
        pml=pml,
        load=load,
        jit_options={"cache_dir": str(jit_cache)},
    )
    points = comparison_points()
    values = PointSampler(mesh, points).evaluate(solution.field)
    if comm.rank != 0:
        return None
    total = values[:, 0] + np.exp(-1j * K_BACKGROUND * points[:, 0])
    exact = exact_series().field(points[:, 0], points[:, 1])
    return float(np.max(np.abs(total - exact)) / np.max(np.abs(exact))), solution.dofs


@pytest.fixture(scope="module")
def fem_errors(jit_cache: Path) -> dict[float, float]:
    """Relative max error at 10 and 20 P2 elements per background wavelength (rank 0; empty on
    the other ranks)."""
    errors = {}
    for elements in (10.0, 20.0):
        result = solve_scattering(Setup(elements_per_wavelength=elements), jit_cache)
        if result is not None:
            errors[elements] = result[0]
    return errors


def test_fem_total_field_matches_series(fem_errors: dict[float, float]):
    """10 P2 elements per wavelength: the P2 interpolation error alone is ≈ (kh)³/(72√3) ≈ 0.2 %
    on a regular mesh (unstructured cells run larger); measured 0.31 %. 2 % leaves room for mesh
    variation, while a wrong sign of the load (225 %) or a conjugated incident wave (141 %)
    fails."""
    if fem_errors:
        assert fem_errors[10.0] < 0.02


def test_fem_converges_at_the_p2_rate(fem_errors: dict[float, float]):
    """Halving h divides the error by ≈ 2³ (measured 10×) once the curved (second-order) mesh
    follows the interface. Reflections do not converge away: without the PML (first-order
    condition only) the error stays at 0.9 % and this fails; so does a linear-geometry
    interface (O(h²), rate 2.2)."""
    if fem_errors:
        rate = np.log2(fem_errors[10.0] / fem_errors[20.0])
        assert rate > 2.5, fem_errors
        assert fem_errors[20.0] < 1e-3, fem_errors
