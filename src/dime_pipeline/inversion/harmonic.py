"""First harmonic from phase-offset wave images (temporal DFT, bin 1).

An MRE sequence samples φ(t_k) ∝ Re{U e^{iωt_k}} at N offsets t_k = k/(N f). With that convention
Σ_k φ(t_k) e^{-2πik/N} = N U / 2, so U = (2/N) · DFT bin 1. Offsets must be unwrapped phase (or
displacement): this module does no phase unwrapping.
"""

from __future__ import annotations

import numpy as np

MIN_OFFSETS = 3  # with 2 offsets bin 1 is the Nyquist bin and U is not recoverable


def first_harmonic(wave_images: np.ndarray, axis: int = -1) -> np.ndarray:
    """Complex first harmonic U of real wave images sampled at N equally spaced phase offsets.

    ``axis`` holds the offsets t_k = k/(N f), k = 0..N-1. Returns U with that axis removed, in the
    input's units, such that wave_images[k] ≈ Re{U e^{2πik/N}}.
    """
    data = np.asarray(wave_images, dtype=np.float64)
    n_offsets = data.shape[axis]
    if n_offsets < MIN_OFFSETS:
        raise ValueError(f"need at least {MIN_OFFSETS} phase offsets, got {n_offsets}")
    return (2.0 / n_offsets) * np.take(np.fft.fft(data, axis=axis), 1, axis=axis)


def wave_images(first: np.ndarray, n_offsets: int = 4) -> np.ndarray:
    """Inverse of :func:`first_harmonic`: real images Re{U e^{2πik/N}} stacked on a last axis."""
    phases = np.exp(2j * np.pi * np.arange(n_offsets) / n_offsets)
    return np.real(np.asarray(first)[..., None] * phases)
