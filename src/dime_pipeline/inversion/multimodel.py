"""MMDI (multi-model direct inversion) as reconstructed in docs/mmdi.md.

Per z slice and encoding component c:
1. extend the field beyond the mask (nearest-pixel values, cos² taper, ``filters.extend_field``)
   so that FFT filtering sees no zeros and no wrap-around jump;
2. band-pass it with a radial Butterworth filter (cutoffs in cycles/m);
3. split it with D one-sided directional filters into models U_{c,d};
4. fit DI on each model in a window: G*_{c,d} and curvature energy E_{c,d} = Σ_W |∇²U_{c,d}|²;
5. combine G* = Σ E_{c,d} G*_{c,d} / Σ E_{c,d} (the joint least-squares estimate over models);
6. confidence = fraction of the joint fit's variance explained; confidence mask where ≥ 95 %.
Only in-mask pixels enter the window sums, so zeros outside the mask never bias edge estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import fft

from dime_pipeline.inversion.direct import (
    FitSums,
    check_fit_parameters,
    in_plane_spacing,
    invert_slices,
    laplacian,
)
from dime_pipeline.inversion.filters import butterworth_bandpass, directional_filters, extend_field
from dime_pipeline.inversion.result import InversionResult

MIN_PAD_PX = 8  # keeps the taper smooth on coarse grids


@dataclass(frozen=True)
class MMDIParameters:
    """Every constant of MMDI, with defaults for liver at 60 Hz and 1–3.5 mm voxels.

    window_px              side of the square least-squares window, odd (5 → 5×5 px)
    laplacian_order        2 or 4: order of the central-difference Laplacian
    highpass_cycles_per_m  Butterworth high-pass cutoff, removes bulk motion and the long
                           compressional wave (5 cycles/m = 20 cm wavelength); 0 disables it
    highpass_order         its order
    lowpass_cycles_per_m   Butterworth low-pass cutoff against noise (80 cycles/m = 12.5 mm); liver
                           shear waves at 60 Hz lie at about 20–60 cycles/m (10–1 kPa); 100 sat
                           near Nyquist on 5 mm grids and let edge leakage bias |G*| by 2–4 %
    lowpass_order          its order
    n_directions           number of one-sided directional filters, evenly spaced over 2π
    angular_hwhm_rad       half width at half maximum of the cos^{2p} angular window (π/4: cos²)
    taper_m                width of the extension beyond the mask and image edge (nearest-pixel
                           values tapered to zero by cos²); 5 cm, about 1.5–2 liver wavelengths,
                           kept edge pixels within a few % on plane waves (shorter tapers bias
                           edges low); at least ``MIN_PAD_PX`` pixels
    confidence_threshold   fraction of variance explained for the confidence mask
    """

    window_px: int = 5
    laplacian_order: int = 4
    highpass_cycles_per_m: float = 5.0
    highpass_order: int = 2
    lowpass_cycles_per_m: float = 80.0
    lowpass_order: int = 4
    n_directions: int = 8
    angular_hwhm_rad: float = np.pi / 4
    taper_m: float = 0.05
    confidence_threshold: float = 0.95

    def __post_init__(self) -> None:
        check_fit_parameters(self.window_px, self.laplacian_order, self.confidence_threshold)
        if not 0 <= self.highpass_cycles_per_m < self.lowpass_cycles_per_m:
            raise ValueError("need 0 <= highpass_cycles_per_m < lowpass_cycles_per_m")
        if self.highpass_order < 1 or self.lowpass_order < 1:
            raise ValueError("Butterworth orders must be at least 1")
        if self.n_directions < 1:
            raise ValueError("n_directions must be at least 1")
        if not 0 < self.angular_hwhm_rad < np.pi / 2:
            raise ValueError("angular_hwhm_rad must lie in (0, π/2)")
        if self.taper_m < 0:
            raise ValueError("taper_m must be non-negative")

    def pad_px(self, spacing_m: tuple[float, float]) -> int:
        """Extension width in pixels on a grid with (dy, dx) spacing."""
        return max(MIN_PAD_PX, int(np.ceil(self.taper_m / min(spacing_m))))


def directional_models(
    fields: np.ndarray, mask: np.ndarray, spacing_m: tuple[float, float], params: MMDIParameters
) -> np.ndarray:
    """Band-passed, directionally filtered models of each field on one slice.

    ``fields`` (c, y, x) → (c, d, y + 2·pad, x + 2·pad) complex, on the padded grid (the Laplacian
    is taken there so that the stencil at the mask edge sees the extension, not zeros).
    """
    pad = params.pad_px(spacing_m)
    ny, nx = mask.shape
    shape = (fft.next_fast_len(ny + 2 * pad), fft.next_fast_len(nx + 2 * pad))
    gain = butterworth_bandpass(
        shape,
        spacing_m,
        params.highpass_cycles_per_m,
        params.lowpass_cycles_per_m,
        params.highpass_order,
        params.lowpass_order,
    )
    windows = gain * directional_filters(
        shape, spacing_m, params.n_directions, params.angular_hwhm_rad
    )
    extended = np.stack([extend_field(f, mask, pad) for f in fields])
    spectra = fft.fft2(extended, s=shape)
    models = fft.ifft2(spectra[:, None] * windows[None])
    return models[..., : ny + 2 * pad, : nx + 2 * pad]


def mmdi(
    displacement: np.ndarray,
    voxel_size_m: float | Sequence[float],
    frequency_hz: float,
    density_kg_m3: float = 1000.0,
    mask: np.ndarray | None = None,
    params: MMDIParameters | None = None,
) -> InversionResult:
    """MMDI of ``displacement`` (complex first harmonic, axes (component, [z,] y, x), any unit)."""
    params = params or MMDIParameters()
    spacing = in_plane_spacing(voxel_size_m)
    pad = params.pad_px(spacing)

    def slice_sums(fields: np.ndarray, mask2d: np.ndarray) -> FitSums:
        models = directional_models(fields, mask2d, spacing, params)
        lap = laplacian(models, spacing, params.laplacian_order)
        crop = (..., slice(pad, pad + mask2d.shape[0]), slice(pad, pad + mask2d.shape[1]))
        sums = FitSums.zeros(mask2d.shape)
        sums.add(models[crop], lap[crop], mask2d)
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
