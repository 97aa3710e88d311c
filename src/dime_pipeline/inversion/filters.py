"""k-space filters for MMDI: Butterworth band-pass, one-sided directional filters, field extension.

Spatial frequencies are in cycles/m on the grid of ``numpy.fft.fftfreq``. Directions follow the
project's convention u = Re{U e^{iωt}}: a wave travelling along the unit vector n is
U = exp(-i k n·x), whose numpy FFT peaks at κ = -k n / 2π. The propagation angle of a k-space
sample κ = (κx, κy) is therefore atan2(-κy, -κx), measured in the (x = column, y = row) frame.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def spatial_frequencies(shape: tuple[int, int], spacing_m: tuple[float, float]) -> np.ndarray:
    """(κy, κx) in cycles/m for a (ny, nx) grid with (dy, dx) spacing, as two broadcast arrays."""
    ky = np.fft.fftfreq(shape[0], d=spacing_m[0])[:, None]
    kx = np.fft.fftfreq(shape[1], d=spacing_m[1])[None, :]
    return np.broadcast_arrays(ky, kx)


def butterworth_bandpass(
    shape: tuple[int, int],
    spacing_m: tuple[float, float],
    highpass_cycles_per_m: float,
    lowpass_cycles_per_m: float,
    highpass_order: int = 2,
    lowpass_order: int = 4,
) -> np.ndarray:
    """Radial Butterworth band-pass gain: high-pass × low-pass, each 1/√2 at its cutoff.

    A zero ``highpass_cycles_per_m`` disables the high-pass (the DC term is then kept).
    """
    ky, kx = spatial_frequencies(shape, spacing_m)
    radius = np.hypot(ky, kx)
    gain = 1.0 / np.sqrt(1.0 + (radius / lowpass_cycles_per_m) ** (2 * lowpass_order))
    if highpass_cycles_per_m > 0:
        ratio = (radius / highpass_cycles_per_m) ** highpass_order
        gain = gain * ratio / np.sqrt(1.0 + ratio**2)
    return gain


def directional_filters(
    shape: tuple[int, int],
    spacing_m: tuple[float, float],
    n_directions: int = 8,
    hwhm_rad: float = np.pi / 4,
) -> np.ndarray:
    """One-sided angular windows, shape (n_directions, ny, nx), for directions θ_d = 2πd/D.

    Each window is cos^{2p}(φ - θ_d) for |φ - θ_d| < π/2 and 0 on the other half-plane, with p
    chosen so that the half width at half maximum is ``hwhm_rad`` (p = 1, the classic cos², for
    π/4). φ is the propagation angle (module docstring), so each filtered field keeps only waves
    travelling within ±π/2 of θ_d.
    """
    ky, kx = spatial_frequencies(shape, spacing_m)
    propagation = np.arctan2(-ky, -kx)
    power = np.log(0.5) / (2.0 * np.log(np.cos(hwhm_rad)))
    thetas = 2.0 * np.pi * np.arange(n_directions) / n_directions
    delta = np.angle(np.exp(1j * (propagation[None] - thetas[:, None, None])))
    window = np.cos(np.clip(delta, -np.pi / 2, np.pi / 2)) ** (2.0 * power)
    window[np.abs(delta) >= np.pi / 2] = 0.0
    return window


def extend_field(field: np.ndarray, mask: np.ndarray, pad_px: int) -> np.ndarray:
    """Pad a 2D field by ``pad_px``; fill everything outside ``mask`` from the nearest mask pixel.

    The copied value is tapered by cos² from 1 at the mask edge to 0 at ``pad_px`` pixels away, so
    FFT filtering sees neither the zeros outside the mask nor a wrap-around jump. Nearest-pixel
    extension varies slowly along the normal, so it adds little in the shear-wave band; a mirror
    extension (tried) adds a reflected wave that the opposite directional filter keeps and that
    biased edge pixels by about -25 %, against under 1 % for this extension with the default pad.
    """
    big_mask = np.pad(mask, pad_px, constant_values=False)
    big = np.pad(field, pad_px)
    distance, (near_y, near_x) = ndimage.distance_transform_edt(~big_mask, return_indices=True)
    taper = np.cos(0.5 * np.pi * np.clip(distance / max(pad_px, 1), 0.0, 1.0)) ** 2
    return np.where(big_mask, big, big[near_y, near_x] * taper)
