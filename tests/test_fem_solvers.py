"""Linear solvers: the iterative option agrees with MUMPS; a failed solve is one clear error."""

from __future__ import annotations

import numpy as np
import pytest

from dime_pipeline.cli import main
from dime_pipeline.config import dump_config, validate_config
from dime_pipeline.fem.forms import Pml
from dime_pipeline.fem.meshes import SIDES, tagged_box, uniform_medium
from dime_pipeline.fem.sampling import PointSampler
from dime_pipeline.fem.solvers import (
    Boundary,
    SolverError,
    SolverOptions,
    solve_antiplane,
    solve_elastic,
)

OMEGA = 2 * np.pi * 60.0
DIRECT = SolverOptions()
ITERATIVE = SolverOptions(kind="iterative", rtol=1e-10)
PML_2D = Pml(lower=[-1.0, -1.0], upper=[0.022, 1.0], thickness=[0.008, 0.008])  # layer at x > 22 mm


def _difference(mesh, first, second, box=(0.03, 0.03, 0.03)) -> float:
    points = np.random.default_rng(0).uniform(0.001, 0.029, size=(50, 3)) * np.asarray(box) / 0.03
    if mesh.geometry.dim == 2:
        points[:, 2] = 0
    a = PointSampler(mesh, points).evaluate(first.field)
    b = PointSampler(mesh, points).evaluate(second.field)
    return 0.0 if a is None else float(np.abs(a - b).max() / np.abs(a).max())


def test_iterative_matches_direct_antiplane(jit_cache):
    mesh, tags = tagged_box([0.0, 0.0], [0.03, 0.03], [20, 20])
    medium = uniform_medium(mesh, 3000 + 600j, 2.2e9, 1000.0)
    boundary = Boundary(prescribed={SIDES["xmin"]: 1.0}, absorbing=[2, 3, 4])
    jit = {"cache_dir": str(jit_cache)}
    direct = solve_antiplane(medium, OMEGA, tags, boundary, options=DIRECT, jit_options=jit)
    iterative = solve_antiplane(medium, OMEGA, tags, boundary, options=ITERATIVE, jit_options=jit)
    assert iterative.iterations > 1
    assert _difference(mesh, direct, iterative) < 1e-6


def test_iterative_matches_direct_3d_nearly_incompressible(jit_cache):
    mesh, tags = tagged_box([0.0] * 3, [0.03] * 3, [5, 5, 5])
    medium = uniform_medium(mesh, 3000 + 600j, 2.2e9, 1000.0)
    boundary = Boundary(prescribed={SIDES["xmin"]: (0.0, 0.0, 1.0)}, absorbing=[2, 3, 4, 5, 6])
    jit = {"cache_dir": str(jit_cache)}
    direct = solve_elastic(medium, OMEGA, tags, boundary, options=DIRECT, jit_options=jit)
    iterative = solve_elastic(medium, OMEGA, tags, boundary, options=ITERATIVE, jit_options=jit)
    assert iterative.iterations > 1
    assert _difference(mesh, direct, iterative) < 1e-5
    assert {"compile", "assemble", "solve"} == set(direct.seconds)


def test_block_preconditioner_converges_on_a_piston_driven_nearly_incompressible_block(jit_cache):
    """The benchmark's block, scaled to 3 × 2.4 × 1.5 cm: a piston face drives a K/G ≈ 10⁶
    medium inside Lysmer–Kuhlemeyer walls, so the pressure carries a global compression that
    only the walls' normal dashpots resist. With a pressure-mass Schur approximation (the Stokes
    choice) FGMRES took 173 (AMG) and 120 (LU) iterations here and stalled on the 41 k-dof
    block; the compressional-Helmholtz approximation takes 55 and 62 (default rtol 10⁻⁸; AMG or
    LU of the per-component scalar operators)."""
    edges, cells = [0.03, 0.024, 0.015], [9, 8, 5]
    mesh, tags = tagged_box([0.0] * 3, edges, cells)
    medium = uniform_medium(mesh, 1500 * (1 + 0.2j), 2.2e9, 1000.0)
    absorbing = [tag for name, tag in SIDES.items() if name != "zmax"]
    boundary = Boundary(prescribed={SIDES["zmax"]: (0.0, 0.0, 2e-5)}, absorbing=absorbing)
    jit = {"cache_dir": str(jit_cache)}
    direct = solve_elastic(medium, OMEGA, tags, boundary, options=DIRECT, jit_options=jit)
    for preconditioner in ("gamg", "lu"):
        options = SolverOptions(kind="iterative", preconditioner=preconditioner)
        iterative = solve_elastic(medium, OMEGA, tags, boundary, options=options, jit_options=jit)
        assert 1 < iterative.iterations <= 80
        assert _difference(mesh, direct, iterative, edges) < 1e-6
        assert {"compile", "assemble", "precondition", "solve"} == set(iterative.seconds)


def test_block_preconditioner_with_a_traction_free_surface(jit_cache):
    """A traction-free side (the skin of every liver phantom), where the Schur approximation
    pins the pressure instead of the Neumann condition of the other sides: still converges and
    agrees with MUMPS."""
    mesh, tags = tagged_box([0.0, 0.0], [0.03, 0.03], [24, 24])
    medium = uniform_medium(mesh, 3000 + 600j, 2.2e9, 1000.0)
    absorbing = [SIDES["xmax"], SIDES["ymin"]]  # ymax stays untagged: traction-free
    boundary = Boundary(prescribed={SIDES["xmin"]: (0.0, 1.0)}, absorbing=absorbing)
    jit = {"cache_dir": str(jit_cache)}
    direct = solve_elastic(medium, OMEGA, tags, boundary, options=DIRECT, jit_options=jit)
    iterative = solve_elastic(
        medium, OMEGA, tags, boundary, options=SolverOptions(kind="iterative"), jit_options=jit
    )
    assert 1 < iterative.iterations <= 80
    assert _difference(mesh, direct, iterative) < 1e-6


@pytest.mark.parametrize(
    "preconditioner, pml, most_iterations",
    [("gamg", None, 80), ("gamg", PML_2D, 250), ("lu", PML_2D, 120)],
)
def test_block_preconditioner_with_rollers_and_a_pml(
    preconditioner, pml, most_iterations, jit_cache
):
    """Each component's scalar operator holds only that component's rollers and carries the
    PML stretching of the mixed form: the solve agrees with MUMPS. Measured: 49 iterations
    with AMG and rollers; with the PML too, 181 with AMG (SOR smoothing there; Jacobi took 460)
    and 91 with LU of the component operators."""
    mesh, tags = tagged_box([0.0, 0.0], [0.03, 0.03], [24, 24])
    medium = uniform_medium(mesh, 3000 + 600j, 2.2e9, 1000.0)
    boundary = Boundary(
        prescribed={SIDES["xmin"]: (0.3, 1.0)},
        absorbing=[SIDES["xmax"]],
        fixed_components={SIDES["ymin"]: 1},  # rollers: u_y = 0, u_x free
    )
    jit = {"cache_dir": str(jit_cache)}
    direct = solve_elastic(medium, OMEGA, tags, boundary, pml=pml, jit_options=jit)
    options = SolverOptions(kind="iterative", preconditioner=preconditioner)
    iterative = solve_elastic(
        medium, OMEGA, tags, boundary, pml=pml, options=options, jit_options=jit
    )
    assert 1 < iterative.iterations <= most_iterations
    assert _difference(mesh, direct, iterative) < 1e-6


@pytest.mark.parametrize("dim", [2, 3])
def test_symmetric_factorisation_matches_lu_with_pml_and_absorbing(dim, jit_cache):
    """LDLᵀ relies on every form being complex symmetric, the PML stretching included: a
    broken symmetry would give a different (wrong) field, not an error."""
    mesh, tags = tagged_box([0.0] * dim, [0.03] * dim, [12, 12] if dim == 2 else [4, 4, 4])
    medium = uniform_medium(mesh, 3000 + 600j, 2.2e9, 1000.0)
    pml = Pml(lower=[-1.0] * dim, upper=[0.02] * dim, thickness=[0.01] * dim)
    driver = (0.0, 1.0) if dim == 2 else (0.0, 0.0, 1.0)
    boundary = Boundary(prescribed={SIDES["xmin"]: driver}, absorbing=[SIDES["ymin"]])
    jit = {"cache_dir": str(jit_cache)}
    solves = [
        solve_elastic(medium, OMEGA, tags, boundary, pml=pml, options=options, jit_options=jit)
        for options in (DIRECT, SolverOptions(symmetric=False))
    ]
    assert DIRECT.symmetric
    assert _difference(mesh, *solves) < 1e-10
    if dim == 2:
        scalar = Boundary(prescribed={SIDES["xmin"]: 1.0}, absorbing=[SIDES["ymin"]])
        solves = [
            solve_antiplane(medium, OMEGA, tags, scalar, pml=pml, options=o, jit_options=jit)
            for o in (DIRECT, SolverOptions(symmetric=False))
        ]
        assert _difference(mesh, *solves) < 1e-10


def test_non_convergence_raises(jit_cache):
    mesh, tags = tagged_box([0.0, 0.0], [0.03, 0.03], [20, 20])
    medium = uniform_medium(mesh, 3000 + 600j, 2.2e9, 1000.0)
    boundary = Boundary(prescribed={SIDES["xmin"]: 1.0}, absorbing=[2])
    with pytest.raises(SolverError, match="antiplane solve failed"):
        solve_antiplane(
            medium,
            OMEGA,
            tags,
            boundary,
            options=SolverOptions(kind="iterative", max_iterations=1),
            jit_options={"cache_dir": str(jit_cache)},
        )


def test_failed_simulation_is_one_line_and_writes_nothing(tmp_path, jit_cache, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(
        dump_config(validate_config({"grid": {"shape": [24, 24], "voxel_size_mm": 3}}))
    )
    phantom = tmp_path / "p"
    assert (
        main(
            [
                "phantom",
                "homogeneous",
                "--seed",
                "1",
                "--config",
                str(config),
                "--out",
                str(phantom),
            ]
        )
        == 0
    )
    capsys.readouterr()
    out = tmp_path / "s.zarr"
    status = main(
        [
            "simulate",
            str(phantom),
            "--out",
            str(out),
            "--jit-cache",
            str(jit_cache),
            "--solver",
            "iterative",
            "--max-iterations",
            "1",
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert err[-1].startswith(f"dime-pipeline simulate: error: simulation of {phantom} failed")
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "p"]  # no temporaries
