"""Material fields on the mesh: piecewise-constant (DG0) complex G*, λ, ρ and wave speeds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dime_pipeline.fem.backend import dolfinx
from dime_pipeline.phantoms.spec import Region


@dataclass
class Medium:
    """DG0 fields of an isotropic viscoelastic medium.

    ``lame_lambda`` is λ = K − 2G*/3 (plane strain and 3D use it through p = −λ ∇·U);
    ``shear_speed`` c_s = sqrt(G*/ρ) and ``pressure_speed`` c_p = sqrt((λ + 2G*)/ρ) are complex
    (principal branch, so the absorbing boundary damps outgoing waves).
    """

    mesh: dolfinx.mesh.Mesh
    shear_modulus: dolfinx.fem.Function
    lame_lambda: dolfinx.fem.Function
    density: dolfinx.fem.Function
    shear_speed: dolfinx.fem.Function
    pressure_speed: dolfinx.fem.Function


def medium_from_cell_values(
    mesh: dolfinx.mesh.Mesh, shear: np.ndarray, bulk: np.ndarray, density: np.ndarray
) -> Medium:
    """Build a :class:`Medium` from per-cell arrays (local cells, ghosts included)."""
    space = dolfinx.fem.functionspace(mesh, ("DG", 0))
    shear = np.asarray(shear, dtype=complex)
    lame = np.asarray(bulk, dtype=complex) - 2.0 * shear / 3.0
    values = {
        "shear_modulus": shear,
        "lame_lambda": lame,
        "density": np.asarray(density, dtype=complex),
        "shear_speed": np.sqrt(shear / density),
        "pressure_speed": np.sqrt((lame + 2.0 * shear) / density),
    }
    fields = {}
    for name, cell_values in values.items():
        field = dolfinx.fem.Function(space, name=name)
        field.x.array[:] = cell_values  # DG0: one dof per cell, in local cell order
        fields[name] = field
    return Medium(mesh=mesh, **fields)


def medium_from_regions(
    mesh: dolfinx.mesh.Mesh,
    cell_tags: dolfinx.mesh.MeshTags,
    regions: Sequence[Region],
    shear_multiplier: np.ndarray | None = None,
) -> Medium:
    """A :class:`Medium` with each region's material on the cells tagged with its tag, G*
    optionally multiplied per cell (a smooth random field, 1 where it does not apply)."""
    num_cells = (
        mesh.topology.index_map(mesh.topology.dim).size_local
        + mesh.topology.index_map(mesh.topology.dim).num_ghosts
    )
    tags = cell_region_tags(mesh, cell_tags)
    shear = np.zeros(num_cells, dtype=complex)
    bulk = np.zeros(num_cells)
    density = np.zeros(num_cells)
    for region in regions:
        cells = tags == region.tag
        shear[cells] = region.shear_modulus
        bulk[cells] = region.bulk_modulus_pa
        density[cells] = region.density_kg_m3
    if shear_multiplier is not None:
        shear *= shear_multiplier
    if np.any(density == 0):
        missing = sorted(set(np.unique(tags[density == 0]).tolist()))
        raise ValueError(f"cells tagged {missing} belong to no region of the phantom")
    return medium_from_cell_values(mesh, shear, bulk, density)


def cell_region_tags(mesh: dolfinx.mesh.Mesh, cell_tags: dolfinx.mesh.MeshTags) -> np.ndarray:
    """The region tag of every local cell (ghosts included); 0 for untagged cells."""
    index_map = mesh.topology.index_map(mesh.topology.dim)
    tags = np.zeros(index_map.size_local + index_map.num_ghosts, dtype=np.int32)
    tags[cell_tags.indices] = cell_tags.values
    return tags
