"""Steps 3-5 of the acquisition model: phase-offset images, noise at an exact SNR, wrapping."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dime_pipeline.acquisition.averaging import Grid
from dime_pipeline.acquisition.snr import amplitude_snr, rms, strain_snr
from dime_pipeline.errors import UserError
from dime_pipeline.inversion import harmonic

if TYPE_CHECKING:
    from dime_pipeline.acquisition import AcquisitionParams


def phase_images(field: np.ndarray, encoding: float, offsets: int) -> np.ndarray:
    """φ(t_k) = Re{s U e^{2πik/N}}, stacked on a new leading axis k (radians)."""
    return harmonic.wave_images(field, offsets, axis=0, encoding=encoding)


def first_harmonic(images: np.ndarray, encoding: float) -> np.ndarray:
    """U = 2/(N s) Σ_k φ_k e^{-2πik/N}: DFT bin 1 over the leading axis, back in metres
    (:func:`dime_pipeline.inversion.harmonic.first_harmonic`)."""
    return harmonic.first_harmonic(images, axis=0, encoding=encoding)


def wrap_phase(images: np.ndarray, limit: float) -> np.ndarray:
    """Wrap into (−limit, limit]; values already inside are returned bit for bit."""
    inside = (images > -limit) & (images <= limit)
    wrapped = limit - np.mod(limit - images, 2 * limit)
    wrapped = np.where(wrapped <= -limit, wrapped + 2 * limit, wrapped)  # mod round-off at 2·limit
    return np.where(inside, images, wrapped)


def measure(
    grid: Grid,
    params: AcquisitionParams,
    names: tuple[str, ...],
    rng: np.random.Generator,
    contamination: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The scanner's first harmonic of ``grid.displacement`` (plus ``contamination``, when there
    is some) and facts about encoding and noise. The noise is scaled to the SNR of the shear
    field alone: contamination is motion the scanner encodes, not signal of interest."""
    shear, mask = grid.displacement, grid.mask
    field = shear if contamination is None else shear + contamination
    peak = float(np.abs(field[:, mask]).max())
    encoding = _encoding(peak, params)
    facts: dict[str, Any] = {
        "encoding_rad_per_m": encoding,
        "achieved_peak_phase_rad": encoding * peak if params.offsets else None,
        "snr": None,
        "strain_snr": None,
        "noise_sigma_m": None,
        "noise_sigma_rad": None,
        "wrapped_fraction": None,
    }
    images = phase_images(field, encoding, params.offsets) if params.offsets else None
    measured = field.copy()
    if params.snr is not None:
        unit = _unit_noise(rng, field.shape, params.offsets)
        unit_harmonic = first_harmonic(unit, encoding) if params.offsets else unit
        scale = _noise_scale(shear, unit_harmonic, grid, params, names)
        noise = scale * unit_harmonic
        facts |= _noise_facts(shear, noise, grid, names, scale, params.offsets)
        if params.offsets:
            images = images + scale * unit
        else:
            measured = field + noise
    if images is not None:
        if params.wrap_rad is not None:
            wrapped = wrap_phase(images, params.wrap_rad)
            changed = (wrapped != images).any(axis=0)
            facts["wrapped_fraction"] = float(changed[:, mask].mean())
            images = wrapped
        measured = first_harmonic(images, encoding)
    return measured * mask, facts


def _encoding(peak: float, params: AcquisitionParams) -> float | None:
    if params.offsets == 0:
        return None
    if params.encoding_rad_per_m is not None:
        return params.encoding_rad_per_m
    if peak == 0:
        raise UserError("the displacement is zero in the mask: no motion encoding can be set")
    return params.peak_phase_rad / peak


def _unit_noise(rng: np.random.Generator, shape: tuple[int, ...], offsets: int) -> np.ndarray:
    """Unit white noise: real per phase image, or complex with E|n|² = 1 without offsets."""
    if offsets:
        return rng.standard_normal((offsets, *shape))
    draws = rng.standard_normal((2, *shape))
    return (draws[0] + 1j * draws[1]) / np.sqrt(2)


def _noise_scale(
    field: np.ndarray,
    unit_harmonic: np.ndarray,
    grid: Grid,
    params: AcquisitionParams,
    names: tuple[str, ...],
) -> float:
    """The factor that gives the realised noise exactly the requested SNR (SNR ∝ 1/scale)."""
    if params.snr_definition == "amplitude":
        achieved = amplitude_snr(field, unit_harmonic, grid.mask)
    else:
        achieved = strain_snr(field, unit_harmonic, grid.mask, grid.voxel_size_m, names)
        if achieved is None:
            raise UserError("the mask has no interior voxel: the strain SNR is undefined")
    if achieved == 0:
        raise UserError(f"the noise-free field has no {params.snr_definition} signal in the mask")
    return achieved / params.snr


def _noise_facts(
    field: np.ndarray,
    noise: np.ndarray,
    grid: Grid,
    names: tuple[str, ...],
    scale: float,
    offsets: int,
) -> dict[str, Any]:
    return {
        "snr": amplitude_snr(field, noise, grid.mask),
        "strain_snr": strain_snr(field, noise, grid.mask, grid.voxel_size_m, names),
        "noise_sigma_m": rms(noise[:, grid.mask]),
        "noise_sigma_rad": scale if offsets else None,
    }
