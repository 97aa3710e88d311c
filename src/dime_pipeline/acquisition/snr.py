"""The two SNR definitions of MRE: amplitude SNR and octahedral shear strain SNR (OSS-SNR)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

AXIS_NAMES = ("z", "y", "x")


def rms(values: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.abs(values) ** 2)))


def amplitude_snr(signal: np.ndarray, noise: np.ndarray, mask: np.ndarray) -> float:
    """RMS |U_c| over the mask and all components, over the RMS |n_c| of the noise there."""
    return rms(signal[:, mask]) / rms(noise[:, mask])


def strain_snr(
    signal: np.ndarray,
    noise: np.ndarray,
    mask: np.ndarray,
    voxel_size_m: tuple[float, ...],
    names: tuple[str, ...] = ("x", "y", "z"),
) -> float | None:
    """OSS-SNR: RMS γ_oct(U) / RMS γ_oct(n) over the eroded mask (None if that is empty)."""
    region = strain_region(mask)
    if not region.any():
        return None
    signal_strain = octahedral_shear_strain(signal, voxel_size_m, names)[region]
    noise_strain = octahedral_shear_strain(noise, voxel_size_m, names)[region]
    return rms(signal_strain) / rms(noise_strain)


def _differentiated_axes(shape: tuple[int, ...]) -> list[int]:
    """Axes with room for a central difference; thinner axes (single slices) count as flat."""
    return [axis for axis, n in enumerate(shape) if n >= 3]


def strain_region(mask: np.ndarray) -> np.ndarray:
    """Mask voxels whose central-difference neighbours are all in the mask."""
    structure = np.zeros((3,) * mask.ndim, dtype=bool)
    centre = (1,) * mask.ndim
    structure[centre] = True
    for axis in _differentiated_axes(mask.shape):
        for step in (0, 2):
            index = list(centre)
            index[axis] = step
            structure[tuple(index)] = True
    return ndimage.binary_erosion(mask, structure, border_value=0)


def octahedral_shear_strain(
    field: np.ndarray, voxel_size_m: tuple[float, ...], names: tuple[str, ...] = ("x", "y", "z")
) -> np.ndarray:
    """γ_oct = ⅔ √(Σ|ε_ii − ε_jj|² + 6 Σ|ε_ij|²) of complex central-difference strains.

    Components not in ``names`` and derivatives along axes thinner than 3 voxels count as zero
    (2D stores: ∂/∂z = 0).
    """
    spatial = field.shape[1:]
    axes = AXIS_NAMES[-len(spatial) :]
    gradient: dict[tuple[str, str], np.ndarray] = {}
    for component, name in enumerate(names):
        for axis in _differentiated_axes(spatial):
            step = voxel_size_m[axis]
            gradient[name, axes[axis]] = np.gradient(field[component], step, axis=axis)
    zero = np.zeros(spatial)

    def strain(i: str, j: str) -> np.ndarray:
        return 0.5 * (gradient.get((i, j), zero) + gradient.get((j, i), zero))

    normal = sum(abs(strain(i, i) - strain(j, j)) ** 2 for i, j in ("xy", "yz", "zx"))
    shear = sum(abs(strain(i, j)) ** 2 for i, j in ("xy", "yz", "zx"))
    return (2.0 / 3.0) * np.sqrt(normal + 6 * shear)
