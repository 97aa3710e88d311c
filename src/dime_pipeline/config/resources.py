"""What a study costs, estimated before any job runs: a study too big for the memory is
refused at the start."""

from __future__ import annotations

import math
import os

from dime_pipeline.config.base import Range
from dime_pipeline.config.phantoms import MeshConfig
from dime_pipeline.config.study import FAMILIES, PipelineConfig
from dime_pipeline.errors import UserError

# --- what a study costs, estimated before any job runs --------------------------------------
#
# Measured on the 2-core, 23 GiB development machine: peak RSS from `/usr/bin/time -v
# dime-pipeline phantom|simulate` (one rank, homogeneous phantoms of one seed, G' 9.6 kPa, so
# h = 3 mm = 2 voxels of 1.5 mm), cells from the stores' `solver.cells`:
#   2D simulate, direct (MUMPS), P2 plane strain + antiplane:
#     64x64 grid, 1 593 cells: 168 MB, 2.5 s;  256x256, 24 786 cells: 675 MB, 3.8 s;
#     512x512, 98 194 cells: 2 124 MB, 18.6 s  -> 19.1-20.8 kB per cell, linear;
#     512x512 pixels of 0.19 mm over the 64x64 grid's mesh: 321 MB -> 608 B per pixel.
#   3D simulate, P2 elasticity, 32x32x4 grid (8 381 cells) and 48x48x4 (26 187 cells):
#     direct: 1 073 MB and 3 860 MB (2 min 25 s): 108 -> 141 kB per cell, growing as
#     cells^(4/3) (LU fill-in; docs/performance.md extrapolates 2 M dofs to ~150 GB);
#     iterative: 26 187 cells 1 086 MB (1 min 15 s) -> 35 kB per cell, linear (performance.md:
#     42 kB per cell for a 466 887-cell liver, FGMRES(100), 2 ranks).
#   phantom (gmsh) needs far less than the solve (98 194 cells: 231 MB).
#   cells x h^dim / (field of view area [x z extent in 3D]): 1.50-1.56 in 2D, 1.89-2.05 in 3D.
# The solve estimate uses the lower of these numbers and the cheaper (iterative) 3D solver, so a
# refused study cannot run with either solver; an accepted 3D study may still need
# `solver.kind: iterative` to fit.
#   `snakemake -n --quiet` of a 32x32 study with 2 noise levels: 500 samples 168 MB (3 s),
#   2 000 samples 275 MB (8 s), 8 000 samples 706 MB (51 s; without --quiet the same) -> 72 kB
#   per sample, i.e. about 18 kB per job (phantom, simulate, one acquire per noise level).
BASE_BYTES = 150e6  # a Python process with numpy, zarr, dolfinx loaded (per MPI rank)
PIXEL_BYTES = 600.0
CELL_BYTES = {2: 19e3, 3: 35e3}
CELLS_PER_H_CUBE = {2: 1.5, 3: 1.9}
PLAN_BASE_BYTES = 130e6
PLAN_JOB_BYTES = 18e3
RANDOM_FIELD_MIN_SIGMAS = 3.5  # a standardised random field rarely dips below -3.5
MEMORY_ENV = "DIME_MEMORY_GB"  # the memory of the machines that run the jobs, when not this one


def memory_bytes() -> float:
    """The memory a job may use: this machine's physical memory, or ``$DIME_MEMORY_GB`` (the
    compute nodes' memory, when the workflow is planned on a smaller login node)."""
    given = os.environ.get(MEMORY_ENV)
    if given:
        try:
            value = float(given)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise UserError(f"${MEMORY_ENV} must be a number of GB > 0 (got {given!r})")
        return value * 1e9
    return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def _families(config: PipelineConfig) -> list[str]:
    """The families the study draws (all of them for a study of no samples)."""
    return [family for family, count in config.samples.items() if count > 0] or list(FAMILIES)


def _bulk_wave(config: PipelineConfig, family: str) -> tuple[float, float]:
    """(smallest |G*| in Pa at the reference frequency, largest density) of the family's bulk
    tissue: the background's G' range; for the liver, the body wall, fat and the liver over the
    stages drawn. Softer inclusions, vessels and random-field dips make some samples finer still
    (not counted: the estimate is a floor, so that what it refuses cannot run)."""
    if family == "liver":
        liver = config.liver
        stages = [s for s, p in liver.stage_probabilities.items() if p > 0]
        moduli = [liver.stage_modulus_kpa[stage].min for stage in stages]
        tissues = (liver.body.tissue, liver.fat.tissue)
        moduli += [tissue.modulus_kpa.min for tissue in tissues]
        densities = [liver.density_kg_m3, *(tissue.density_kg_m3 for tissue in tissues)]
        return 1e3 * min(moduli), max(densities)
    return 1e3 * config.materials.storage_modulus_kpa.min, config.materials.density_kg_m3


def _domain_depth(config: PipelineConfig, family: str, voxel: float) -> float:
    """3D: the largest z extent of the family's domain (as the phantom modules draw it)."""
    grid = config.grid
    slab = 0.5 * ((grid.slices - 1) * grid.slice_spacing_m + grid.slice_thickness_m)
    edge = min(grid.shape) * voxel
    if family == "liver":  # a slab of the body around the liver (liver.anatomy.draw_body_and_liver)
        body = config.liver.body
        scale = body.fov_fill.max * edge / min(body.width_mm.min, body.depth_mm.min) * 1e3
        margin = max(1e-3 * scale * body.slab_margin_mm, 2 * voxel)
        reach = 0.5e-3 * scale * config.liver.height_mm.max + margin
        return 2 * max(reach, slab + voxel)
    radius = edge * config.domain.radius_fraction.max * (1 + config.domain.roughness)
    return 2 * max(radius, slab + 2 * voxel)  # an ellipsoid (common.draw_ellipsoid)


def mesh_estimate(config: PipelineConfig) -> tuple[float, float, bool]:
    """(cells, mesh size h in m, whether the wavelength sets h) of the finest mesh of the
    study's bulk tissue, set as ``phantoms.common.mesh_size`` sets it: h = min(shortest
    shear wavelength / elements_per_wavelength, max_size_voxels voxels), the wavelength
    sqrt(|G*| / density) / the highest frequency, cells = CELLS_PER_H_CUBE x the field of view's
    area (3D: times the domain's depth) / h^dim. The largest over the families drawn."""
    grid, frequency = config.grid, config.frequency_hz.max
    voxel = 1e-3 * (grid.voxel_size_range_mm or Range(min=0, max=grid.voxel_size_mm)).max
    worst = (0.0, math.inf, False)
    for family in _families(config):
        modulus, density = _bulk_wave(config, family)
        if config.materials.frequency_model != "constant":  # |G*| falls below f_ref, at most ∝ f
            modulus *= min(1.0, frequency / config.materials.reference_frequency_hz)
        wavelength = math.sqrt(modulus / density) / frequency  # <= the true 2π / Re(k)
        by_wave = wavelength / config.mesh.elements_per_wavelength
        size = min(by_wave, config.mesh.max_size_voxels * voxel)
        domain = grid.shape[0] * grid.shape[1] * voxel**2
        if config.dim == 3:
            domain *= _domain_depth(config, family, voxel)
        cells = CELLS_PER_H_CUBE[config.dim] * domain / size**config.dim
        worst = max(worst, (cells, size, by_wave <= size))
    return worst


def _solve_bytes(config: PipelineConfig, pixels: int) -> float:
    """The estimated peak memory of one solve of the study's finest mesh (all ranks)."""
    cells = mesh_estimate(config)[0]
    return config.solver.ranks * BASE_BYTES + pixels * PIXEL_BYTES + cells * CELL_BYTES[config.dim]


def check_resources(config: PipelineConfig, what: str = "config") -> None:
    """Refuse, naming the key, a study whose solve or whose workflow plan cannot fit in memory
    (:func:`memory_bytes`): estimated before the work, so nothing hangs or is half-written."""
    memory = memory_bytes()
    have = f"this machine's {memory / 1e9:.3g} GB of memory"
    if MEMORY_ENV in os.environ:
        have = f"the {memory / 1e9:.3g} GB of ${MEMORY_ENV}"
    pixels = math.prod(config.grid.shape) * (config.grid.slices if config.dim == 3 else 1)
    cells, size, by_wave = mesh_estimate(config)
    need = _solve_bytes(config, pixels)
    if need > memory:
        # The key to blame: the mesh's, when the default mesh settings would fit.
        default_mesh = config.model_copy(update={"mesh": MeshConfig()})
        key = "grid.shape"
        if _solve_bytes(default_mesh, pixels) <= memory:
            key = "mesh.elements_per_wavelength" if by_wave else "mesh.max_size_voxels"
        raise UserError(
            f"{what} key '{key}': one solve needs about {need / 1e9:.3g} GB ({pixels:.3g} "
            f"pixels, about {cells:.3g} mesh cells of {size * 1e3:.3g} mm), more than {have}; "
            "use a smaller grid.shape or mesh.elements_per_wavelength, or a larger "
            "mesh.max_size_voxels"
        )
    samples = sum(config.samples.values())
    per_sample = PLAN_JOB_BYTES * (2 + len(config.acquisition.snr))
    if PLAN_BASE_BYTES + samples * per_sample > memory:
        fit = max(0, int((memory - PLAN_BASE_BYTES) / per_sample))
        raise UserError(
            f"{what} key 'samples': planning {samples} samples needs about "
            f"{(PLAN_BASE_BYTES + samples * per_sample) / 1e9:.3g} GB (Snakemake's job graph), "
            f"more than {have}; at most {fit} samples fit"
        )
