"""Direct inversion (DI) of the Helmholtz equation, windowed least squares, slice by slice.

For a locally homogeneous medium G*∇²U + ρω²U = 0. Over a window W (only valid in-mask pixels):

    G*(x) = -ρω² Σ_W U conj(∇²U) / Σ_W |∇²U|²

∇²U is the in-plane Laplacian from a central finite-difference stencil (4th order by default: its
error is about 1 % at 6 px per wavelength, against 9 % for the 3-point stencil). 3D volumes are
inverted slice by slice along the first spatial axis (z); the through-plane term is not available,
as in clinical 2D MRE. The same local fit, summed over several fields, is MMDI's combination step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from dime_pipeline.inversion.result import InversionResult

# Central second-difference weights (unit spacing), by order of accuracy.
STENCILS = {
    2: np.array([1.0, -2.0, 1.0]),
    4: np.array([-1.0, 16.0, -30.0, 16.0, -1.0]) / 12.0,
}
_RELATIVE_FLOOR = 1e-12  # curvature energy below this fraction of the slice maximum: no estimate


@dataclass(frozen=True)
class DIParameters:
    """Plain DI.

    window_px             side of the square least-squares window, odd (5 → 5×5 px)
    laplacian_order       2 (3-point) or 4 (5-point) central-difference Laplacian
    confidence_threshold  fraction of variance explained for the confidence mask
    """

    window_px: int = 5
    laplacian_order: int = 4
    confidence_threshold: float = 0.95

    def __post_init__(self) -> None:
        check_fit_parameters(self.window_px, self.laplacian_order, self.confidence_threshold)


def check_fit_parameters(window_px: int, laplacian_order: int, threshold: float) -> None:
    if window_px < 1 or window_px % 2 == 0:
        raise ValueError(f"window_px must be a positive odd integer, got {window_px}")
    if laplacian_order not in STENCILS:
        raise ValueError(
            f"laplacian_order must be one of {sorted(STENCILS)}, got {laplacian_order}"
        )
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"confidence_threshold must lie in [0, 1], got {threshold}")


def in_plane_spacing(voxel_size_m: float | Sequence[float]) -> tuple[float, float]:
    """(dy, dx) in metres from a scalar or a per-axis sequence in ([z,] y, x) order."""
    sizes = np.atleast_1d(np.asarray(voxel_size_m, dtype=float))
    dy, dx = (sizes[0], sizes[0]) if sizes.size == 1 else (sizes[-2], sizes[-1])
    if not (np.isfinite([dy, dx]).all() and dy > 0 and dx > 0):
        raise ValueError(f"voxel size must be positive and finite, got {voxel_size_m}")
    return float(dy), float(dx)


def laplacian(field: np.ndarray, spacing_m: tuple[float, float], order: int = 4) -> np.ndarray:
    """In-plane Laplacian over the last two axes; values within the stencil radius of the array
    border use zeros beyond it and are invalid (see :func:`stencil_support`)."""
    weights = STENCILS[order]
    radius = weights.size // 2
    ny, nx = field.shape[-2:]
    pad = [(0, 0)] * (field.ndim - 2) + [(radius, radius), (radius, radius)]
    padded = np.pad(field, pad)
    out = np.zeros(field.shape, dtype=np.result_type(field, float))
    for offset, weight in enumerate(weights):
        out += weight / spacing_m[0] ** 2 * padded[..., offset : offset + ny, radius : radius + nx]
        out += weight / spacing_m[1] ** 2 * padded[..., radius : radius + ny, offset : offset + nx]
    return out


def stencil_support(mask: np.ndarray, order: int) -> np.ndarray:
    """Mask pixels whose whole Laplacian stencil lies inside the mask (and the image)."""
    radius = STENCILS[order].size // 2
    footprint = np.zeros((2 * radius + 1, 2 * radius + 1), dtype=bool)
    footprint[radius, :] = footprint[:, radius] = True
    return ndimage.binary_erosion(mask, structure=footprint, border_value=0)


@dataclass
class FitSums:
    """Pointwise products of the local fit, summed over fields (models) before windowing."""

    cross: np.ndarray  # U conj(∇²U)
    curvature: np.ndarray  # |∇²U|²
    power: np.ndarray  # |U|²
    noise_cross: np.ndarray  # the measurement noise's expected share of ``cross``
    noise_curvature: np.ndarray  # and of ``curvature`` (MMDI's noise_debias; else zero)

    @classmethod
    def zeros(cls, shape: tuple[int, ...]) -> FitSums:
        return cls(*(np.zeros(shape, dtype) for dtype in (complex, float, float, float, float)))

    def add_noise(self, cross: float, curvature: float, support: np.ndarray) -> None:
        """Add the noise's expected per-pixel share on ``support`` (``inversion.noise``)."""
        self.noise_cross += cross * support
        self.noise_curvature += curvature * support

    def add(self, field: np.ndarray, lap: np.ndarray, support: np.ndarray) -> None:
        """Accumulate one or a stack of fields (leading axes are summed) on ``support`` pixels."""
        axes = tuple(range(field.ndim - 2))
        self.cross += np.sum(field * np.conj(lap), axis=axes) * support
        self.curvature += np.sum(np.abs(lap) ** 2, axis=axes) * support
        self.power += np.sum(np.abs(field) ** 2, axis=axes) * support


def _box(values: np.ndarray, window_px: int) -> np.ndarray:
    """Window sum (as a mean; only ratios are used) with zeros beyond the image."""
    if np.iscomplexobj(values):
        return _box(values.real, window_px) + 1j * _box(values.imag, window_px)
    return ndimage.uniform_filter(values, size=window_px, mode="constant")


def local_fit(
    sums: FitSums,
    mask: np.ndarray,
    rho_omega2: float,
    window_px: int,
    threshold: float,
    debias_floor: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windowed joint least squares: (G*, R², confidence mask, valid) on one slice.

    Minimising Σ_W |ρω²U + G*∇²U|² over all fields gives G* = -ρω² S/E with S = Σ U conj(∇²U),
    E = Σ |∇²U|², A = Σ |U|²; the fraction of variance explained is R² = |S|²/(A E) ∈ [0, 1]. The
    E-weighted mean of per-field estimates equals this joint estimate. G* uses S and E less the
    noise's expected share (E kept at ``debias_floor`` of itself at least); R² the sums as
    measured, so the confidence still says how well the data fit.
    """
    cross, curvature, power = (_box(x, window_px) for x in (sums.cross, sums.curvature, sums.power))
    floor = _RELATIVE_FLOOR * max(float(curvature.max()), np.finfo(float).tiny)
    valid = mask & (curvature > floor) & (power > 0)
    modulus = np.zeros(mask.shape, complex)
    confidence = np.zeros(mask.shape)
    signal_cross = cross - _box(sums.noise_cross, window_px)
    signal_curvature = np.maximum(
        curvature - _box(sums.noise_curvature, window_px), debias_floor * curvature
    )
    modulus[valid] = -rho_omega2 * signal_cross[valid] / signal_curvature[valid]
    r2 = np.abs(cross[valid]) ** 2 / (power[valid] * curvature[valid])
    confidence[valid] = np.clip(r2, 0.0, 1.0)
    return modulus, confidence, valid & (confidence >= threshold), valid


SliceSums = Callable[[np.ndarray, np.ndarray], FitSums]


def invert_slices(
    displacement: np.ndarray,
    mask: np.ndarray | None,
    frequency_hz: float,
    density_kg_m3: float,
    slice_sums: SliceSums,
    window_px: int,
    threshold: float,
    debias_floor: float = 1.0,
) -> InversionResult:
    """Run ``slice_sums(fields (c, y, x), mask (y, x))`` and the local fit on every z slice."""
    field, mask = _checked(displacement, mask, frequency_hz, density_kg_m3)
    rho_omega2 = density_kg_m3 * (2.0 * np.pi * frequency_hz) ** 2
    maps = [np.zeros(mask.shape, dtype) for dtype in (complex, float, bool, bool)]
    for z in range(mask.shape[0]):
        if not mask[z].any():
            continue
        sums = slice_sums(field[:, z], mask[z])
        fitted = local_fit(sums, mask[z], rho_omega2, window_px, threshold, debias_floor)
        for out, value in zip(maps, fitted, strict=True):
            out[z] = value
    squeeze = displacement.ndim == 3
    modulus, confidence, confident, valid = (m[0] if squeeze else m for m in maps)
    return InversionResult(modulus, confidence, confident, valid, float(density_kg_m3))


def _checked(
    displacement: np.ndarray, mask: np.ndarray | None, frequency_hz: float, density_kg_m3: float
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and return (displacement as (c, z, y, x), mask as (z, y, x))."""
    field = np.asarray(displacement)
    if field.ndim not in (3, 4):
        raise ValueError(f"displacement must have axes (component, [z,] y, x), got {field.shape}")
    if not np.isfinite(field).all():
        raise ValueError("displacement has non-finite values")
    if not (frequency_hz > 0 and density_kg_m3 > 0):
        raise ValueError("frequency and density must be positive")
    spatial = field.shape[1:]
    mask = np.ones(spatial, bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != spatial:
        raise ValueError(f"mask shape {mask.shape} != displacement spatial shape {spatial}")
    if field.ndim == 3:
        field, mask = field[:, None], mask[None]
    return field.astype(complex, copy=False), mask


def direct_inversion(
    displacement: np.ndarray,
    voxel_size_m: float | Sequence[float],
    frequency_hz: float,
    density_kg_m3: float = 1000.0,
    mask: np.ndarray | None = None,
    params: DIParameters | None = None,
) -> InversionResult:
    """Plain DI of ``displacement`` (complex, axes (component, [z,] y, x)); components combine by
    joint least squares. Only pixels whose Laplacian stencil lies in the mask enter the sums."""
    params = params or DIParameters()
    spacing = in_plane_spacing(voxel_size_m)

    def slice_sums(fields: np.ndarray, mask2d: np.ndarray) -> FitSums:
        sums = FitSums.zeros(mask2d.shape)
        support = stencil_support(mask2d, params.laplacian_order)
        sums.add(fields, laplacian(fields, spacing, params.laplacian_order), support)
        return sums

    return invert_slices(
        displacement,
        mask,
        frequency_hz,
        density_kg_m3,
        slice_sums,
        params.window_px,
        params.confidence_threshold,
    )
