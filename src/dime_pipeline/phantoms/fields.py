"""Smooth random modulus fields: exp(σ g) with g a Gaussian random field of correlation length ℓ.

g is white noise filtered in Fourier space by a Gaussian kernel of width ℓ/√2, so its covariance
is exp(−r² / (2ℓ²)); it is standardised on its grid (zero mean, unit variance). The noise grid is
padded by 3ℓ on every side so the FFT's periodic wrap-around leaves no correlation between
opposite edges. Everything derives from the field's own seed, so ``realize`` rebuilds the same
array from the spec alone (``np.save`` of it is byte-deterministic).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from dime_pipeline.phantoms.spec import FIELD_FILE, ModulusField
from dime_pipeline.seeding import generator


def gaussian_random_field(
    rng: np.random.Generator,
    shape: Sequence[int],
    spacing: Sequence[float],
    correlation_m: float,
) -> np.ndarray:
    """Zero-mean, unit-variance field on a grid of ``shape`` with per-axis ``spacing`` (m)."""
    pad = [int(np.ceil(3 * correlation_m / h)) for h in spacing]
    padded = [n + 2 * p for n, p in zip(shape, pad, strict=True)]
    noise = rng.standard_normal(padded)
    spectrum = np.fft.rfftn(noise)
    width = correlation_m / np.sqrt(2.0)  # kernel std: covariance of the result has std ℓ
    for axis, (n, h) in enumerate(zip(padded, spacing, strict=True)):
        last = axis == len(padded) - 1
        k = 2 * np.pi * (np.fft.rfftfreq(n, h) if last else np.fft.fftfreq(n, h))
        profile = np.exp(-0.5 * (k * width) ** 2)
        spectrum *= profile.reshape([-1 if a == axis else 1 for a in range(len(padded))])
    field = np.fft.irfftn(spectrum, s=padded, axes=tuple(range(len(padded))))
    field = field[tuple(slice(p, p + n) for p, n in zip(pad, shape, strict=True))]
    return (field - field.mean()) / field.std()


def draw_modulus_field(
    rng: np.random.Generator,
    lower_m: Sequence[float],
    upper_m: Sequence[float],
    spacing_m: float,
    sigma: float,
    correlation_m: float,
    region_tags: Sequence[int],
) -> ModulusField:
    """A field description covering the box [lower, upper] (x, y[, z]); draws one seed."""
    lower = np.asarray(lower_m, dtype=float)
    counts = np.ceil((np.asarray(upper_m) - lower) / spacing_m).astype(int) + 1
    return ModulusField(
        file=FIELD_FILE,
        origin_m=tuple(float(v) for v in lower),
        spacing_m=(float(spacing_m),) * len(lower),
        region_tags=tuple(int(t) for t in region_tags),
        shape=tuple(int(n) for n in counts[::-1]),  # array axes ([z,] y, x)
        sigma=float(sigma),
        correlation_length_m=float(correlation_m),
        seed=int(rng.integers(0, 2**32)),
    )


def realize(field: ModulusField) -> np.ndarray:
    """The multiplier array exp(σ g) of ``field`` (float64, axes ([z,] y, x))."""
    g = gaussian_random_field(
        generator(field.seed), field.shape, field.spacing_m[::-1], field.correlation_length_m
    )
    return np.exp(field.sigma * g)


def sample_field(field: ModulusField, values: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``values`` at (N, 3) ``points``, clamped to the field's box."""
    dim = len(field.shape)
    axes = [
        field.origin_m[a] + field.spacing_m[a] * np.arange(field.shape[dim - 1 - a])
        for a in range(dim)
    ]
    xyz = np.column_stack([np.clip(points[:, a], axes[a][0], axes[a][-1]) for a in range(dim)])
    interpolator = RegularGridInterpolator(axes[::-1], values, method="linear")
    return interpolator(xyz[:, ::-1])
