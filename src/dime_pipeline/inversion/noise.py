"""The measurement noise's share of MMDI's fit sums, so that it can be taken out.

White noise n of variance σ² per pixel, filtered by a k-space gain H and differentiated by the
Laplacian stencil (symbol Λ(k), real), adds on average

    E|∇²Hn|² = σ² ⟨|H|² Λ²⟩    to the curvature energy Σ|∇²U|²,
    E[Hn · conj(∇²Hn)] = σ² ⟨|H|² Λ⟩    to the cross term Σ U conj(∇²U),

per pixel, ⟨·⟩ the mean over the FFT grid (Parseval). The curvature term is why noise biases
every Laplacian inversion low ("noise inflates the Laplacian"); subtracting both (MMDI's
``noise_debias``) removes that bias to first order.

σ² is estimated from the data with a 5 × 5 fourth-difference operator, ∂⁴/∂y⁴ ∂⁴/∂x⁴ in
discrete form (the separable square of Immerkær's 3 × 3 operator, CVIU 64, 1996: it passes
white noise with gain 70 and a wave of 6 px per wavelength with gain 0.07 at most, of 10 px 0.001),
and the median absolute deviation, robust to the few pixels where signal still leaks through.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from dime_pipeline.inversion.direct import STENCILS

_FOURTH = np.array([1.0, -4.0, 6.0, -4.0, 1.0])
_OPERATOR = np.outer(_FOURTH, _FOURTH)
_MAD_TO_SIGMA = 1.4826  # σ of a Gaussian from its median absolute deviation


def noise_variance(fields: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """E|n|² per pixel of complex white noise, per field (c, y, x) → (c,), from mask pixels
    whose 5×5 neighbourhood lies in the mask (0 where there are none)."""
    inner = ndimage.binary_erosion(mask, np.ones(_OPERATOR.shape, bool), border_value=0)
    out = np.zeros(len(fields))
    if not inner.any():
        return out
    gain = float(np.sum(_OPERATOR**2))
    for index, field in enumerate(fields):
        for part in (field.real, field.imag):
            response = ndimage.convolve(part, _OPERATOR, mode="nearest")[inner]
            mad = np.median(np.abs(response - np.median(response)))
            out[index] += (_MAD_TO_SIGMA * mad) ** 2 / gain
    return out


def laplacian_symbol(
    shape: tuple[int, int], spacing_m: tuple[float, float], order: int
) -> np.ndarray:
    """Λ(k) of the central-difference Laplacian of ``order`` on the FFT grid (rad/m)², ≤ 0."""
    weights = STENCILS[order]
    offsets = np.arange(weights.size) - weights.size // 2
    out = np.zeros(shape)
    for axis, (n, step) in enumerate(zip(shape, spacing_m, strict=True)):
        phase = 2 * np.pi * np.fft.fftfreq(n)
        along = np.sum(weights[:, None] * np.cos(offsets[:, None] * phase[None]), axis=0) / step**2
        out += along[:, None] if axis == 0 else along[None, :]
    return out


def noise_terms(gains: np.ndarray, symbol: np.ndarray) -> tuple[float, float]:
    """(⟨|H|² Λ⟩, ⟨|H|² Λ²⟩) summed over a stack of gains (models, ny, nx): the noise's cross
    and curvature terms per unit σ²."""
    cross = curvature = 0.0
    for gain in gains.reshape(-1, *gains.shape[-2:]):  # one model at a time: no stack in memory
        weighted = np.abs(gain) ** 2 * symbol
        cross += float(np.mean(weighted))
        curvature += float(np.mean(weighted * symbol))
    return cross, curvature
