"""MMDI (multi-model direct inversion) as reconstructed in docs/mmdi.md.

Per z slice and encoding component c:
1. extend the field beyond the mask (nearest-pixel values, cos² taper, ``filters.extend_field``)
   so that FFT filtering sees no zeros and no wrap-around jump;
2. band-pass it with a radial Butterworth filter (cutoffs in cycles/m, by default from the
   calibrated rule on the frequency: ``MMDIParameters.resolved``);
3. split it with D one-sided directional filters into models U_{c,d};
4. fit DI on each model in a window: G*_{c,d} and curvature energy E_{c,d} = Σ_W |∇²U_{c,d}|²,
   less the measurement noise's expected share (``inversion.noise``);
5. combine G* = Σ E_{c,d} G*_{c,d} / Σ E_{c,d} (the joint least-squares estimate over models);
6. confidence = fraction of the joint fit's variance explained; confidence mask where ≥ 95 %.
Only in-mask pixels enter the window sums, so zeros outside the mask never bias edge estimates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

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
from dime_pipeline.inversion.noise import laplacian_symbol, noise_terms, noise_variance
from dime_pipeline.inversion.result import InversionResult

MIN_PAD_PX = 8  # keeps the taper smooth on coarse grids


# The calibrated rule (docs/mmdi.md, "Calibrated defaults"; benchmarks/calibrate_mmdi.py, record in
# docs/data/mmdi-calibration.json): filter cut-offs and the window follow the expected shear
# wavenumber, which depends on the frequency and the voxel size only, never on the data.
REFERENCE_SPEED_M_S = 1.5  # a normal liver (|G*| ≈ 2.3 kPa): sizes the window in wavelengths


@dataclass(frozen=True)
class MMDIParameters:
    """Every constant of MMDI. The band-pass cut-offs and the window follow a rule on the driving
    frequency f and the pixel size (:meth:`resolved`), unless given in absolute units.

    window_px              side of the square least-squares window, odd (5 → 5×5 px); None: the
                           odd size nearest ``window_wavelengths`` reference wavelengths
    window_wavelengths     the rule's window, in wavelengths of a wave at ``reference_speed_m_s``
                           (λ_ref = c_ref / f), at least 3 px
    reference_speed_m_s    that reference speed (1.5 m/s: a normal liver)
    laplacian_order        2 or 4: order of the central-difference Laplacian
    highpass_cycles_per_m  Butterworth high-pass cutoff against bulk motion and the long
                           compressional wave; 0 disables it; None: f / ``highpass_speed_m_s``
    highpass_speed_m_s     the rule's high-pass: the wavenumber of a wave at this speed
    highpass_order         its order
    lowpass_cycles_per_m   Butterworth low-pass cutoff against noise; None: f /
                           ``lowpass_speed_m_s``
    lowpass_speed_m_s      the rule's low-pass: the wavenumber of a wave at this speed (slower
                           than the softest tissue expected, so its waves pass)
    lowpass_order          its order
    n_directions           number of one-sided directional filters, evenly spaced over 2π
    angular_hwhm_rad       half width at half maximum of the cos^{2p} angular window (π/4: cos²)
    taper_m                width of the extension beyond the mask and image edge (nearest-pixel
                           values tapered to zero by cos²); 5 cm, about 1.5–2 liver wavelengths,
                           kept edge pixels within a few % on plane waves (shorter tapers bias
                           edges low); at least ``MIN_PAD_PX`` pixels
    confidence_threshold   fraction of variance explained for the confidence mask
    noise_debias           subtract the noise's expected share of the fit sums (σ² estimated
                           from the data, ``inversion.noise``), which otherwise biases |G*| low
    debias_floor           the debiased curvature energy keeps at least this fraction of the
                           measured one (where noise is all there is, no estimate explodes)
    """

    window_px: int | None = None
    window_wavelengths: float = 0.2
    reference_speed_m_s: float = REFERENCE_SPEED_M_S
    laplacian_order: int = 4
    highpass_cycles_per_m: float | None = None
    highpass_speed_m_s: float = 3.0
    highpass_order: int = 2
    lowpass_cycles_per_m: float | None = None
    lowpass_speed_m_s: float = 1.1
    lowpass_order: int = 4
    n_directions: int = 8
    angular_hwhm_rad: float = np.pi / 4
    taper_m: float = 0.05
    confidence_threshold: float = 0.95
    noise_debias: bool = True
    debias_floor: float = 0.2

    def __post_init__(self) -> None:
        check_fit_parameters(
            3 if self.window_px is None else self.window_px,
            self.laplacian_order,
            self.confidence_threshold,
        )
        for name in ("window_wavelengths", "reference_speed_m_s", "lowpass_speed_m_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        if not self.highpass_speed_m_s > self.lowpass_speed_m_s:
            raise ValueError("need highpass_speed_m_s > lowpass_speed_m_s")
        low, high = self.lowpass_cycles_per_m, self.highpass_cycles_per_m
        if (low is not None and not low > 0) or (high is not None and high < 0):
            raise ValueError("need lowpass_cycles_per_m > 0 and highpass_cycles_per_m >= 0")
        if low is not None and high is not None and not high < low:
            raise ValueError("need 0 <= highpass_cycles_per_m < lowpass_cycles_per_m")
        if self.highpass_order < 1 or self.lowpass_order < 1:
            raise ValueError("Butterworth orders must be at least 1")
        if self.n_directions < 1:
            raise ValueError("n_directions must be at least 1")
        if not 0 < self.angular_hwhm_rad < np.pi / 2:
            raise ValueError("angular_hwhm_rad must lie in (0, π/2)")
        if self.taper_m < 0:
            raise ValueError("taper_m must be non-negative")
        if not 0 < self.debias_floor <= 1:
            raise ValueError("debias_floor must lie in (0, 1]")

    def resolved(self, frequency_hz: float, spacing_m: tuple[float, float]) -> MMDIParameters:
        """These parameters with the rule applied at ``frequency_hz`` on a (dy, dx) grid: every
        absolute value (window_px, cut-offs in cycles/m) set. Values given explicitly stay."""
        reference_px = self.reference_speed_m_s / (frequency_hz * float(np.mean(spacing_m)))
        window = self.window_px
        if window is None:
            window = max(3, 2 * int(np.floor(self.window_wavelengths * reference_px / 2)) + 1)
        low = self.lowpass_cycles_per_m
        low = frequency_hz / self.lowpass_speed_m_s if low is None else low
        high = self.highpass_cycles_per_m
        high = frequency_hz / self.highpass_speed_m_s if high is None else high
        if not high < low:
            raise ValueError(
                f"high-pass cutoff {high:g} cycles/m is not below the low-pass {low:g} cycles/m"
            )
        return replace(self, window_px=window, lowpass_cycles_per_m=low, highpass_cycles_per_m=high)

    def pad_px(self, spacing_m: tuple[float, float]) -> int:
        """Extension width in pixels on a grid with (dy, dx) spacing."""
        return max(MIN_PAD_PX, int(np.ceil(self.taper_m / min(spacing_m))))


def filter_bank(
    mask_shape: tuple[int, int], spacing_m: tuple[float, float], params: MMDIParameters
) -> np.ndarray:
    """Band-pass × directional gains (d, ny', nx') on the padded FFT grid of a slice."""
    if params.lowpass_cycles_per_m is None or params.highpass_cycles_per_m is None:
        raise ValueError("MMDI parameters must be resolved first (MMDIParameters.resolved)")
    pad = params.pad_px(spacing_m)
    shape = tuple(fft.next_fast_len(n + 2 * pad) for n in mask_shape)
    gain = butterworth_bandpass(
        shape,
        spacing_m,
        params.highpass_cycles_per_m,
        params.lowpass_cycles_per_m,
        params.highpass_order,
        params.lowpass_order,
    )
    return gain * directional_filters(
        shape, spacing_m, params.n_directions, params.angular_hwhm_rad
    )


def directional_models(
    fields: np.ndarray,
    mask: np.ndarray,
    spacing_m: tuple[float, float],
    params: MMDIParameters,
    bank: np.ndarray | None = None,
) -> np.ndarray:
    """Band-passed, directionally filtered models of each field on one slice.

    ``fields`` (c, y, x) → (c, d, y + 2·pad, x + 2·pad) complex, on the padded grid (the Laplacian
    is taken there so that the stencil at the mask edge sees the extension, not zeros).
    """
    bank = filter_bank(mask.shape, spacing_m, params) if bank is None else bank
    pad = params.pad_px(spacing_m)
    ny, nx = mask.shape
    extended = np.stack([extend_field(f, mask, pad) for f in fields])
    spectra = fft.fft2(extended, s=bank.shape[-2:])
    models = fft.ifft2(spectra[:, None] * bank[None])
    return models[..., : ny + 2 * pad, : nx + 2 * pad]


def model_sums(
    fields: np.ndarray, mask: np.ndarray, spacing_m: tuple[float, float], params: MMDIParameters
) -> FitSums:
    """Steps 1–4 on one slice with resolved ``params``: the fit sums of every (component,
    direction) model, before the window (``local_fit`` windows and combines them; a window
    sweep reuses these sums), with the noise's expected share when ``noise_debias``."""
    pad = params.pad_px(spacing_m)
    bank = filter_bank(mask.shape, spacing_m, params)
    models = directional_models(fields, mask, spacing_m, params, bank)
    lap = laplacian(models, spacing_m, params.laplacian_order)
    crop = (..., slice(pad, pad + mask.shape[0]), slice(pad, pad + mask.shape[1]))
    sums = FitSums.zeros(mask.shape)
    sums.add(models[crop], lap[crop], mask)
    if params.noise_debias:
        symbol = laplacian_symbol(bank.shape[-2:], spacing_m, params.laplacian_order)
        cross, curvature = noise_terms(bank, symbol)
        variance = float(np.sum(noise_variance(fields, mask)))
        sums.add_noise(variance * cross, variance * curvature, mask)
    return sums


def mmdi(
    displacement: np.ndarray,
    voxel_size_m: float | Sequence[float],
    frequency_hz: float,
    density_kg_m3: float = 1000.0,
    mask: np.ndarray | None = None,
    params: MMDIParameters | None = None,
) -> InversionResult:
    """MMDI of ``displacement`` (complex first harmonic, axes (component, [z,] y, x), any unit)."""
    spacing = in_plane_spacing(voxel_size_m)
    params = (params or MMDIParameters()).resolved(frequency_hz, spacing)
    return invert_slices(
        displacement,
        mask,
        frequency_hz,
        density_kg_m3,
        lambda fields, mask2d: model_sums(fields, mask2d, spacing, params),
        params.window_px,  # type: ignore[arg-type]  # resolved() set it
        params.confidence_threshold,
        params.debias_floor,
    )
