"""First harmonic from phase-offset wave images (temporal DFT, bin 1), and its inverse.

The one implementation for simulated acquisitions (:mod:`dime_pipeline.acquisition`) and users'
wave images (:mod:`dime_pipeline.userdata`). An MRE sequence samples φ(t_k) = Re{s U e^{iωt_k}} at
N offsets t_k = k/(N f), s the motion encoding. With that convention
Σ_k φ(t_k) e^{-2πik/N} = N s U / 2, so U = 2/(N s) · DFT bin 1. Offsets must be unwrapped phase (or
displacement): this module does no phase unwrapping.
"""

from __future__ import annotations

import numpy as np

MIN_OFFSETS = 3  # with 2 offsets bin 1 is the Nyquist bin and U is not recoverable


def first_harmonic(
    wave_images: np.ndarray,
    axis: int = -1,
    encoding: float = 1.0,
    remove_background: bool = False,
) -> np.ndarray:
    """Complex first harmonic U of real wave images sampled at N equally spaced phase offsets.

    ``axis`` holds the offsets t_k = k/(N f), k = 0..N-1; ``encoding`` is s, the images' units per
    unit of U (rad/m for phase images; 1 when they are displacements). Returns U with that axis
    removed, such that wave_images[k] ≈ Re{s U e^{2πik/N}}. Bin 1 is summed directly (one complex
    multiply-add per offset), not by an FFT of every bin; the rounded kernel lets a constant
    (bin 0) leak in at ~1e-16 of its size. ``remove_background`` subtracts each pixel's first image
    beforehand, so that a background phase constant over the offsets gives exactly U = 0 (for
    scanner data; simulated acquisitions leave it off).
    """
    data = np.asarray(wave_images, dtype=np.float64)
    n_offsets = data.shape[axis]
    if n_offsets < MIN_OFFSETS:
        raise ValueError(f"need at least {MIN_OFFSETS} phase offsets, got {n_offsets}")
    if remove_background:
        data = data - np.take(data, [0], axis=axis)
    kernel = np.exp(-2j * np.pi * np.arange(n_offsets) / n_offsets)
    return np.tensordot(kernel, data, axes=(0, axis)) * (2.0 / (n_offsets * encoding))


def wave_images(
    first: np.ndarray, n_offsets: int = 4, axis: int = -1, encoding: float | None = None
) -> np.ndarray:
    """Inverse of :func:`first_harmonic`: real images Re{s U e^{2πik/N}} stacked on a new axis
    ``axis`` (-1: last, 0: leading); s = ``encoding`` (None: images in the units of U)."""
    first = np.asarray(first)
    if encoding is not None:
        first = encoding * first
    phases = np.exp(2j * np.pi * np.arange(n_offsets) / n_offsets)
    if axis == -1:
        return np.real(first[..., None] * phases)
    if axis == 0:
        return np.real(first[None] * phases.reshape((-1,) + (1,) * first.ndim))
    raise ValueError(f"axis must be 0 or -1, got {axis}")
