"""Reading INPUT (NIfTI, .npy, MATLAB .mat, sample store) and its mask into a :class:`UserVolume`.

The formats are read in :mod:`.nifti` and :mod:`.arrays` (.npy, .mat, store) into a
:class:`~dime_pipeline.userdata.raw.RawInput`; here the mask, the checks, the offsets and the
affine make it a volume to invert. See the package docstring for the formats and axis
conventions; the plausibility checks are in :mod:`dime_pipeline.userdata.checks`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dime_pipeline.errors import UserError
from dime_pipeline.userdata.arrays import load_npy, read_mat, read_npy, read_store
from dime_pipeline.userdata.checks import (
    check_in_plane_size,
    resolve_density,
    resolve_frequency,
    resolve_spacing,
)
from dime_pipeline.userdata.nifti import (
    NIFTI_SUFFIXES,
    affine_with_spacing,
    load_nifti,
    nifti_data,
    read_nifti,
)
from dime_pipeline.userdata.raw import RawInput

log = logging.getLogger("dime_pipeline.userdata")

MAT_SUFFIX = ".mat"
DEFAULT_DENSITY_KG_M3 = 1000.0


@dataclass
class UserVolume:
    """A field ready to invert, plus what is needed to write results in INPUT's geometry."""

    displacement: np.ndarray  # complex, (component, [z,] y, x), zero outside the mask
    mask: np.ndarray  # bool, ([z,] y, x)
    voxel_size_m: tuple[float, float]  # in-plane (dy, dx), the sizes the inversion used
    frequency_hz: float
    density_kg_m3: float
    affine: np.ndarray  # 4×4 voxel → mm for OUT, its in-plane columns as long as voxel_size_m
    header: object | None  # the INPUT NIfTI header, when there is one
    reversed_axes: bool  # True for NIfTI: library ([z,] y, x) = reversed INPUT (i, j[, k])
    spacing_source: str = "given"  # where voxel_size_m came from, for the JSON summary
    store_grid: bool = False  # a sample store's grid: x towards patient left, y anterior


def input_kind(path: Path) -> str:
    """'nifti', 'npy', 'mat' or 'store', from the path; raise UserError for anything else."""
    if path.is_dir():
        return "store"
    if not path.exists():
        raise UserError(f"{path}: no such file or folder")
    if path.name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if path.suffix == ".npy":
        return "npy"
    if path.suffix == MAT_SUFFIX:
        return "mat"
    raise UserError(
        f"{path}: INPUT must be NIfTI (.nii, .nii.gz), .npy, MATLAB .mat or a sample store folder"
    )


def check_output_path(path: str | Path, suffixes: tuple[str, ...]) -> Path:
    """OUT must end with one of ``suffixes`` (the writers pick the format from the name)."""
    path = Path(path)
    if not path.name.endswith(suffixes) or path.name in suffixes:
        raise UserError(f"{path}: output name must end with {' or '.join(suffixes)}")
    return path


def load_user_data(
    path: str | Path,
    *,
    layout: str = "offsets",
    frequency_hz: float | None = None,
    voxel_size_mm: float | None = None,
    mask_path: str | Path | None = None,
    density_kg_m3: float | None = None,
    mat_variable: str | None = None,
) -> UserVolume:
    """Read INPUT and its mask, check them and remove per-channel offsets; see the package
    docstring."""
    path = Path(path)
    kind = input_kind(path)
    if mat_variable is not None and kind != "mat":
        raise UserError("--mat-variable is for a MATLAB .mat INPUT only")
    if kind == "nifti":
        raw = read_nifti(path, layout)
    elif kind == "npy":
        raw = read_npy(path)
    elif kind == "mat":
        raw = read_mat(path, mat_variable)
    else:
        raw = read_store(path)
    check_in_plane_size(path, raw.field.shape[-2:])
    frequency = resolve_frequency(frequency_hz, raw.frequency_hz)
    density = resolve_density(density_kg_m3, raw.density_kg_m3, DEFAULT_DENSITY_KG_M3)
    spacing = resolve_spacing(path, voxel_size_mm, raw.voxel_size_m)
    source = "--voxel-size-mm" if voxel_size_mm is not None else raw.spacing_source
    if voxel_size_mm is None and raw.pixdim_assumed:
        log.warning(
            "%s: the NIfTI pixdim is exactly 1 with no spatial unit, often a default rather "
            "than a measurement; assuming 1 mm voxels (give --voxel-size-mm to be sure)",
            path,
        )
        source = "assumed 1 mm: NIfTI pixdim 1 with no spatial unit"
    if not raw.support.any():
        raise UserError(f"{path}: INPUT is all zeros, there is no wave to invert")
    mask = _resolve_mask(path, mask_path, raw)
    field = _finite_inside(path, raw.field, mask, explicit_mask=mask_path is not None)
    field, offsets = remove_channel_offsets(field, mask)
    if not np.any(field[:, mask]):
        raise UserError(f"{path}: INPUT is constant inside the mask, there is no wave to invert")
    # G* = -ρω² U/∇²U does not depend on the field's unit: bring its peak to 1, so that values
    # near the ends of the float range (1e200, 1e-300) neither overflow nor underflow.
    peak = np.abs(field[:, mask]).max()
    field, offsets = field / peak, offsets / peak
    _log_offsets(field, mask, offsets)
    if raw.affine is None:
        affine = _diagonal_affine(spacing, mask.ndim, raw.slice_m)
    else:
        affine = affine_with_spacing(raw.affine, raw.mm_per_unit, spacing)
    return UserVolume(
        field,
        mask,
        spacing,
        frequency,
        density,
        affine,
        raw.header,
        raw.reversed_axes,
        spacing_source=source,
        store_grid=raw.store_grid,
    )


def remove_channel_offsets(field: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Subtract each component's in-mask mean, zero the field outside the mask; return both.

    Scanner exports rescale every channel (offset image, or real/imaginary part) with its own
    intercept. A constant violates the Helmholtz equation (∇²c = 0, ρω²c ≠ 0), and since the first
    harmonic and the real/imaginary split are linear, removing a constant per channel is the same
    as removing a complex constant per component of U, done here.
    """
    offsets = np.array([component[mask].mean() for component in field])
    return (field - offsets.reshape((-1,) + (1,) * mask.ndim)) * mask, offsets


def _log_offsets(field: np.ndarray, mask: np.ndarray, offsets: np.ndarray) -> None:
    rms = np.sqrt(np.mean(np.abs(field[:, mask]) ** 2))
    log.info(
        "removed a constant offset per channel inside the mask (per component |offset|/RMS: %s)",
        ", ".join(f"{value:.3g}" for value in np.abs(offsets) / rms),
    )


def _finite_inside(
    path: Path, field: np.ndarray, mask: np.ndarray, explicit_mask: bool
) -> np.ndarray:
    """Non-finite values are allowed only outside an explicit --mask (they are zeroed)."""
    bad = ~np.isfinite(field).all(axis=0)
    if not bad.any():
        return field
    if not explicit_mask or (bad & mask).any():
        where = "inside the mask" if explicit_mask else "(give --mask to exclude them)"
        raise UserError(f"{path}: INPUT has {int(bad.sum())} non-finite (NaN/inf) voxels {where}")
    log.info("zeroed %d non-finite voxels outside the mask", int(bad.sum()))
    return np.where(bad, 0, field)


def _resolve_mask(path: Path, mask_path: str | Path | None, raw: RawInput) -> np.ndarray:
    """--mask, else the store's mask, else where INPUT is nonzero."""
    if mask_path is not None:
        mask = _read_mask(Path(mask_path), raw)
    elif raw.mask is not None:
        mask = raw.mask.astype(bool)
    else:
        mask = raw.support
    if not mask.any():
        raise UserError(f"{mask_path or path}: the mask is empty")
    return mask


def _read_mask(path: Path, raw: RawInput) -> np.ndarray:
    """A NIfTI or .npy mask in INPUT's array order (trailing singleton axes allowed)."""
    if not path.is_file():
        raise UserError(f"{path}: mask file not found")
    if path.name.endswith(NIFTI_SUFFIXES):
        data = nifti_data(load_nifti(path), path)
    elif path.suffix == ".npy":
        data = load_npy(path)
    else:
        raise UserError(f"{path}: --mask must be NIfTI (.nii, .nii.gz) or .npy")
    spatial = raw.support.shape[::-1] if raw.reversed_axes else raw.support.shape
    data = np.asarray(data)
    while data.ndim > len(spatial) and data.shape[-1] == 1:
        data = data[..., 0]
    if raw.reversed_axes and len(spatial) == 3 and spatial[-1] == 1 and data.ndim == 2:
        data = data[..., None]  # a 2D mask for a single-slice volume
    if data.shape != spatial:
        raise UserError(f"{path}: mask shape {data.shape} does not match INPUT's {spatial}")
    if data.dtype.kind not in "biuf":
        raise UserError(f"{path}: a mask holds numbers or booleans, not {data.dtype}")
    mask = np.isfinite(data) & (data != 0)
    return mask.T if raw.reversed_axes else mask


def _diagonal_affine(
    spacing_m: tuple[float, float], n_spatial: int, slice_m: float | None
) -> np.ndarray:
    """Voxel-to-mm affine for OUT's axes (y, x, 1) or (z, y, x) when INPUT has no header; an
    unknown slice spacing is taken equal to dy."""
    dy, dx = spacing_m
    dz = slice_m if slice_m and np.isfinite(slice_m) and slice_m > 0 else dy
    sizes = (dy, dx, dz) if n_spatial == 2 else (dz, dy, dx)
    return np.diag([*(1e3 * s for s in sizes), 1.0])
